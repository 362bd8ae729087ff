// One telemetry instance: its own thread opens the vendor libraries, samples every device at a
// fixed interval and publishes the latest complete sample. Readers copy that sample under a short
// lock and never touch the driver. Plain C++: the N-API layer (addon.cc) wraps it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../sources/dcgm_source.h"
#include "../sources/device_info.h"
#include "../sources/gpm_source.h"
#include "../sources/meminfo.h"
#include "../sources/mig_source.h"
#include "../sources/nvml_source.h"
#include "../sources/process_util.h"
#include "../sources/xid_watcher.h"
#include "../vendor/dynlib.h"
#include "../vendor/nvml_api.h"
#include "../vendor/nvml_session.h"
#include "call_tracker.h"
#include "sample.h"

namespace gt {

// Whether a backend may, must or must not be used.
enum class SourceMode { Auto = 0, Required = 1, Disabled = 2 };

struct SamplerOptions {
  std::vector<std::string> nvmlCandidates;  // library paths/sonames to try, in order
  std::string simulatorScenario;            // JSON text: the library is the simulator; configure it
  bool privateLibraryCopy = false;          // load a private copy (one simulator state per instance)
  int64_t intervalNs = 1'000'000'000;
  int64_t lostRetryNs = 5'000'000'000;
  int64_t slowCallMinGapNs = 1'000'000'000;
  std::string meminfoPath = "/proc/meminfo";  // memory figures of unified-memory GPUs
  SourceMode gpm = SourceMode::Auto;
  SourceMode dcgm = SourceMode::Auto;
  std::vector<std::string> dcgmCandidates;  // libdcgm.so.4, libdcgm.so.3 (or the user's path)
  bool dcgmFromNvmlLibrary = false;         // the simulator: DCGM's entry points are in the NVML library
  std::string dcgmAbsentReason;             // why there is nothing to try (simulated machine without DCGM)
  DcgmEngine dcgmEngine = DcgmEngine::Auto;  // running nv-hostengine first, else embedded
  std::string dcgmHost;                     // empty: look for a local nv-hostengine (unless embedded)
  bool dcgmHostIsUnixSocket = false;
  unsigned int dcgmConnectTimeoutMs = 5000;
  bool processUtilization = false;          // per-process SM/memory/encoder/decoder utilisation (own thread)
  int64_t staleAfterNs = 3'000'000'000;     // a per-process utilisation call in flight longer is reported hung
};

// What became of each optional backend at open, for users and logs.
struct BackendReport {
  std::string state;   // "active", "unavailable", "disabled"
  std::string reason;  // why it is not active (empty when active)
  std::string detail;  // when active: how (library, mode)
};

// Why open failed, in words a user can act on. `code` is one of the GpuTelemetryError codes.
struct OpenError {
  std::string code;
  std::string message;
  int vendorCode = 0;
  bool hasVendorCode = false;
  std::string vendorMessage;
  std::string libraryPath;
  std::vector<std::string> tried;
};

enum class SamplerEvent { Opened, OpenFailed, SampleReady, Closed, XidReady };

// Where readSnapshot writes: one caller-owned byte block, laid out by SnapshotLayout.
struct SnapshotLayout {
  size_t devices = 0;
  size_t valuesOffset = 0, codesOffset = 0, linksOffset = 0, processesOffset = 0, deviceMetaOffset = 0,
         statusOffset = 0, sourceOffset = 0, byteLength = 0;
  size_t migValuesOffset = 0, migMetaOffset = 0, migCodesOffset = 0, migStatusOffset = 0, migSourceOffset = 0;
  static SnapshotLayout forDevices(size_t devices);
};

// Header of a snapshot read (written every call, even when the sample did not change).
struct SnapshotHeader {
  double seq = 0;             // 0 until the first sample is published
  double takenAtEpochMs = 0;  // wall clock when the sample was taken
  double ageMs = 0;           // monotonic age of the sample at the time of the read
  double sampleDurationMs = 0;
  double inFlightMs = 0;      // how long the current vendor call has been running (0: none)
  double inFlightDevice = -1;
  const char* inFlightCall = "";
  double running = 0;         // 1 while the sampling thread is alive
};

struct SamplerStats {
  uint64_t migListings = 0;  // MIG device listings attempted (every GPU)
  uint64_t samples = 0;
  uint64_t vendorCalls = 0;
  int64_t threadCpuNs = 0;   // CPU time of the sampling thread spent sampling
  int64_t lastSampleNs = 0;  // wall time of the last sample
};

class Sampler : public std::enable_shared_from_this<Sampler> {
 public:
  using EventSink = std::function<void(SamplerEvent)>;

  static std::shared_ptr<Sampler> create(SamplerOptions options, EventSink sink);
  ~Sampler();

  // Starts the thread; it opens the libraries and reports Opened or OpenFailed through the sink.
  void start();
  // Asks the thread to stop; it shuts the libraries down and reports Closed. Idempotent.
  void requestStop();
  // Waits up to `timeoutNs` for the thread to finish; returns true if it did (then joins it).
  bool waitFinished(int64_t timeoutNs);

  // Valid after Opened (written once before the event, never changed after).
  const std::vector<DeviceInfo>& devices() const { return devices_; }
  const SystemInfo& system() const { return system_; }
  const OpenError& openError() const { return openError_; }
  const BackendReport& gpmReport() const { return gpmReport_; }
  const BackendReport& dcgmReport() const { return dcgmReport_; }
  // Why a field that no source covers on a device is not supported (empty: see its code).
  const std::string& fieldNote(size_t device, Field f) const { return notes_[device][idx(f)]; }

  // Copies the latest sample into `dest` (layout from SnapshotLayout::forDevices) unless its
  // sequence number equals `knownSeq`; always fills `header`. Never calls the driver. Of the
  // process and MIG sections only each device's counted entries are copied: the rest of `dest`
  // keeps what an earlier sample left, which readers must not look at.
  void readSnapshot(double knownSeq, uint8_t* dest, size_t destLength, SnapshotHeader& header);

  // The UUIDs and profile names of a GPU's MIG devices, in frame slot order (any thread).
  MigSource::Names migNames(size_t device) const;

  // XID events queued for JS (clears the "notified" flag first, so none is missed).
  uint64_t drainXids(std::vector<XidEvent>& out, size_t max);

  void setSubscribed(bool on) { subscribed_.store(on, std::memory_order_relaxed); }
  void acknowledgeSample() { notifyPending_.store(false, std::memory_order_release); }
  SamplerStats stats() const;

 private:
  Sampler(SamplerOptions options, EventSink sink);
  void run(std::shared_ptr<Sampler> self);
  bool openBackend();
  void sampleOnce();
  void publish(int64_t durationNs);
  void closeBackend();
  void planSources();
  bool openGpm();
  bool openDcgm();
  void openFleet();                                            // MIG devices, per-process utilisation
  void sampleFleet(size_t device, DeviceRow& row, int64_t nowNs);
  void applyFixed(size_t device, DeviceRow& row);
  void sampleMeminfo(DeviceRow& row, const FieldMask& mask, const MeminfoReading& reading);
  void failOpen(std::string code, std::string message);

  SamplerOptions options_;
  EventSink sink_;
  std::thread thread_;

  // Owned by the sampling thread until Opened; read-only afterwards. The session is shared with
  // the XID thread: whichever of the two lets go last shuts NVML down (nvml_session.h).
  std::shared_ptr<NvmlSession> session_ = std::make_shared<NvmlSession>();
  std::unique_ptr<NvmlSource> nvmlSource_;
  std::vector<DeviceInfo> devices_;
  SystemInfo system_;
  OpenError openError_;
  CallTracker tracker_;
  SampleFrame working_;
  // Per device: which fields each source fills, and the fixed answer for fields none of them
  // covers there (re-applied every sample, so a recovered GPU gets them back).
  std::vector<FieldMask> nvmlMask_;
  std::vector<FieldMask> meminfoMask_;
  std::vector<FieldMask> gpmMask_;
  std::unique_ptr<GpmSource> gpm_;
  BackendReport gpmReport_;
  std::vector<FieldMask> dcgmMask_;
  std::unique_ptr<DcgmSource> dcgm_;
  BackendReport dcgmReport_;
  std::vector<std::vector<std::string>> notes_;
  std::vector<std::vector<std::pair<Field, int32_t>>> fixed_;
  std::unique_ptr<MeminfoSource> meminfo_;
  std::shared_ptr<XidWatcher> xid_;
  std::unique_ptr<MigSource> mig_;
  std::shared_ptr<ProcessUtilWatcher> processUtil_;
  std::mutex xidMutex_;  // guards xid_ against drainXids racing the thread's teardown
  std::atomic<bool> xidNotified_{false};
  bool anyUnified_ = false;

  // Published sample, guarded by publishMutex_ (held only for a memcpy).
  mutable std::mutex publishMutex_;
  SampleFrame published_;
  uint64_t seq_ = 0;
  int64_t takenAtWallMs_ = 0;
  int64_t takenAtMonoNs_ = 0;
  int64_t sampleDurationNs_ = 0;

  // Thread control.
  std::mutex stopMutex_;
  std::condition_variable stopCv_;
  bool stopRequested_ = false;
  std::mutex finishedMutex_;
  std::condition_variable finishedCv_;
  bool finished_ = false;
  std::atomic<bool> running_{false};

  std::atomic<bool> subscribed_{false};
  std::atomic<bool> notifyPending_{false};

  std::atomic<uint64_t> samples_{0};
  std::atomic<int64_t> threadCpuNs_{0};
  std::atomic<uint64_t> migListings_{0};
  mutable std::mutex migMutex_;  // guards mig_ against migNames racing the thread's teardown
  std::atomic<int64_t> lastSampleNs_{0};
};

}  // namespace gt
