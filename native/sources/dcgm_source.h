// DCGM (libdcgm.so.4, then .so.3): the profiling signals (tensor, SM, DRAM, FP pipes; PCIe and
// NVLink bytes/s) from NVIDIA's Data Center GPU Manager. An embedded host engine by default, or a
// running nv-hostengine (TCP address or unix socket). One GPU group per device (so a GPU whose
// profiling cannot be watched loses DCGM alone, not the others), one field group, watched at the
// sampling interval. DCGM numbers GPUs its own way: devices are matched to NVML's by UUID.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/dcgm_api.h"
#include "../vendor/dynlib.h"

namespace gt {

struct DcgmOptions {
  std::vector<std::string> candidates;  // library paths/sonames, in order
  const DynLib* sharedLibrary = nullptr;  // the simulator: DCGM lives in the NVML library already loaded
  std::string absentReason;             // why there is no library to try (when candidates is empty)
  std::string host;                     // empty: embedded host engine
  bool hostIsUnixSocket = false;
  unsigned int connectTimeoutMs = 5000;
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
  // "embedded" or "nv-hostengine at <address>".
  std::string describeMode() const;

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
  };
  bool load();
  bool connect();
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
  bool broken_ = false;  // the host engine connection is gone; retried every reconnectNs
  int64_t lastReconnectNs_ = 0;
  std::vector<dcgm::FieldValueV1> values_;  // reused buffer (~4 KiB per field)
};

}  // namespace gt
