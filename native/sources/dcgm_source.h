// DCGM (libdcgm.so.4, then .so.3): the profiling signals (tensor, SM, DRAM, FP pipes; PCIe and
// NVLink bytes/s) from NVIDIA's Data Center GPU Manager. Through a running nv-hostengine when
// there is one (DGX OS and GPU-operator nodes run one; a second, embedded engine beside it would
// contend for the profiling counters, and NVIDIA warns that several host engines on one node may
// deadlock in the driver: NVIDIA/DCGM#108), else an embedded host engine (DcgmEngine). One GPU
// group per device (so a GPU whose profiling cannot be watched loses DCGM alone, not the others),
// one field group, watched at the sampling interval. DCGM numbers GPUs its own way: devices are
// matched to NVML's by UUID.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/dcgm_api.h"
#include "../vendor/dynlib.h"

namespace gt {

// Which host engine to use.
enum class DcgmEngine {
  Auto = 0,        // a running nv-hostengine (`host`, else a local one that answers), else embedded
  HostEngine = 1,  // a running nv-hostengine only (`host`, else a local one); never embedded
  Embedded = 2,    // an embedded host engine only
};

// Where a local nv-hostengine listens when nobody says: TCP port 5555 (DCGM_HE_PORT_NUMBER,
// dcgm_structs.h line 289; nv-hostengine binds 127.0.0.1 by default, HostEngineCommandLine.cpp)
// or, started with --domain-socket, the unix socket DCGM_DEFAULT_SOCKET_PATH (line 294).
struct HostEngineAddress {
  std::string address;
  bool unixSocket = false;
};
inline std::vector<HostEngineAddress> defaultLocalHostEngines() {
  return {{"localhost:5555", false}, {"/tmp/nv-hostengine", true}};
}

// Whether something listens at a host-engine address: 1 yes, 0 no, -1 cannot tell.
using ListenerCheck = int (*)(const char* address, int isUnixSocket);

struct DcgmOptions {
  std::vector<std::string> candidates;  // library paths/sonames, in order
  const DynLib* sharedLibrary = nullptr;  // the simulator: DCGM lives in the NVML library already loaded
  std::string absentReason;             // why there is no library to try (when candidates is empty)
  DcgmEngine engine = DcgmEngine::Auto;
  std::string host;                     // a given nv-hostengine (Auto, HostEngine); empty: look locally
  bool hostIsUnixSocket = false;
  unsigned int connectTimeoutMs = 5000;
  std::vector<HostEngineAddress> localHostEngines = defaultLocalHostEngines();
  // Before asking DCGM to connect to a local address: is anything listening there? nullptr: the
  // socket-level check (hostengine_probe.h); the simulator supplies its own.
  ListenerCheck listening = nullptr;
  int64_t updateIntervalUs = 1'000'000;
  int64_t reconnectNs = 5'000'000'000;  // a lost host-engine connection is retried this often
};

class DcgmSource {
 public:
  DcgmSource(CallTracker& tracker, DcgmOptions options);
  ~DcgmSource();
  DcgmSource(const DcgmSource&) = delete;
  DcgmSource& operator=(const DcgmSource&) = delete;

  // Loads DCGM, starts or connects to a host engine, maps GPUs by UUID and watches the fields.
  // False when DCGM cannot be used at all; `reason()` / `vendorCode()` then say why.
  bool open(const std::vector<std::string>& nvmlUuids);
  const std::string& reason() const { return reason_; }
  int vendorCode() const { return vendorCode_; }
  const std::string& libraryPath() const { return libraryPath_; }
  // "nv-hostengine at <address>[ (unix socket, found running)]" or "embedded host engine[ (why)]".
  std::string describeMode() const;
  bool usesHostEngine() const { return hostEngine_; }

  // Local nv-hostengine lookups in Auto mode: the socket check is bounded by this, and a
  // connection to an address where something listens by min(connectTimeoutMs, this).
  static constexpr int kListenCheckTimeoutMs = 200;
  static constexpr unsigned int kAutoConnectTimeoutMs = 1000;

  // Fields DCGM gives for NVML device `d` (empty when DCGM does not see that GPU or cannot
  // watch its profiling fields); why not, for the field notes.
  FieldMask provides(size_t d) const;
  const std::string& deviceReason(size_t d) const { return devices_[d].reason; }
  static FieldMask allFields();

  // Once per sampling cycle, before sample(): retries a lost host-engine connection when due.
  void beginSample(int64_t nowNs);
  void sample(size_t d, DeviceRow& row, const FieldMask& want, int64_t nowNs);
  bool connectionLost() const { return broken_; }

 private:
  struct Device {
    int gpuId = -1;  // DCGM's id for this NVML device; -1: DCGM does not list it
    dcgm::GroupId group = 0;
    bool groupCreated = false;
    bool watched = false;
    FieldMask fields;
    std::string reason;
    int code = 0;  // DCGM's answer when its profiling fields cannot be watched
  };
  bool load();
  bool connect();
  bool chooseEngine();
  int listening(const HostEngineAddress& a) const;
  bool setUp(const std::vector<std::string>& nvmlUuids);
  bool watchDevice(Device& dev);
  void tearDown();
  bool fail(const std::string& what, dcgm::Return r);
  void tryReconnect(int64_t nowNs);

  CallTracker& tracker_;
  DcgmOptions options_;
  DynLib ownLibrary_;
  const DynLib* library_ = nullptr;
  dcgm::Api api_;
  bool initialized_ = false;
  dcgm::Handle handle_ = 0;
  bool connected_ = false;
  bool fieldGroupCreated_ = false;
  dcgm::FieldGroupId fieldGroup_ = 0;
  std::vector<Device> devices_;
  std::vector<std::string> uuids_;
  std::string reason_;
  std::string libraryPath_;
  int vendorCode_ = 0;
  // The engine chosen at the first connect (reconnects go back to the same one: a host engine
  // that restarts is waited for, never replaced by an embedded engine beside it).
  bool engineChosen_ = false;
  bool hostEngine_ = false;
  HostEngineAddress address_;
  std::string modeNote_;  // how this engine was chosen (for describeMode)
  bool broken_ = false;  // the host engine connection is gone; retried every reconnectNs
  int64_t lastReconnectNs_ = 0;
  std::vector<dcgm::FieldValueV1> values_;  // reused buffer (~4 KiB per field)
};

}  // namespace gt
