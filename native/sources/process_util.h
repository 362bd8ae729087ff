// Per-process utilisation (SM, memory, encoder, decoder) from NVML, on a thread of its own: an
// opt-in extra that must never hold up the device series (a hung call here makes only the
// per-process utilisation stale, with the call named).
//
// What the driver gives (nvml.h, nvmlDeviceGetProcessUtilization / nvmlDeviceGetProcessesUtilizationInfo):
//  - samples newer than a CPU timestamp (µs) the caller keeps (the newest timestamp it was given);
//  - "One utilization sample structure is returned per process running, that had some non-zero
//    utilization during the last sample period" (a sample period is 1/6 s to 1 s): a process with
//    no entry was idle;
//  - NVML_ERROR_NOT_FOUND when there is no sample newer than the timestamp: no new sample, not an
//    error (it is also what an all-idle GPU answers);
//  - "On MIG-enabled GPUs, querying process utilization is not currently supported."
// So a process's utilisation is that of its newest entry while that entry is at most kHoldUs old
// (two of the longest sample periods), and 0 after: an idle process stops being listed, and its
// last busy figure must not stay up forever.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/nvml_session.h"

namespace gt {

class ProcessUtilWatcher : public std::enable_shared_from_this<ProcessUtilWatcher> {
 public:
  static constexpr int64_t kHoldUs = 2'000'000;
  static constexpr int64_t kMinIntervalNs = 250'000'000;  // the driver's periods are at least 1/6 s

  static std::shared_ptr<ProcessUtilWatcher> create(std::shared_ptr<NvmlSession> session, std::vector<nvml::Device> devices,
                                                    int64_t intervalNs, int64_t hungAfterNs);
  ProcessUtilWatcher(const ProcessUtilWatcher&) = delete;
  ProcessUtilWatcher& operator=(const ProcessUtilWatcher&) = delete;

  // Starts the thread (detached: it owns itself and a share of the NVML session, so close() never
  // waits on a hung call and NVML is never shut down under it).
  void start();
  // Asks the thread to end; returns at once.
  void requestStop();
  // Which entry point answers (for reasons): the newest the library has, or null.
  const char* symbol() const;

  // Tells the thread a GPU's MIG mode (the sampler reads it): a NOT_SUPPORTED answer is remembered
  // until it changes.
  void setMigMode(size_t device, int mode);
  // Fills the utilisation columns of the processes in a device's row (their pids already written)
  // and kDevProcessUtilCode / kDevProcessUtilMs. From the sampling thread.
  void apply(size_t device, DeviceRow& row);

 private:
  struct Entry {
    unsigned long long timeStamp = 0;
    unsigned int sm = 0, mem = 0, enc = 0, dec = 0;
  };
  struct Device {
    nvml::Device handle = nullptr;
    std::atomic<int> migMode{-1};
    // Guarded by mutex_:
    std::unordered_map<unsigned int, Entry> newest;  // per pid, its newest entry
    unsigned long long lastSeen = 0;
    int32_t code = kCodeNoReadingYet;  // of the last answer (NOT_FOUND counts as read)
    int64_t answeredAtNs = 0;
    // The thread's own:
    int unsupportedMode = -2;  // the MIG mode a NOT_SUPPORTED answer was cached for (-2: none)
  };

  ProcessUtilWatcher(std::shared_ptr<NvmlSession> session, std::vector<nvml::Device> devices, int64_t intervalNs,
                     int64_t hungAfterNs);
  void run();
  void poll(size_t device);

  std::shared_ptr<NvmlSession> session_;
  const nvml::Api& api_;
  std::vector<std::unique_ptr<Device>> devices_;
  int64_t intervalNs_;
  int64_t hungAfterNs_;
  CallTracker tracker_;
  std::mutex mutex_;
  std::mutex stopMutex_;
  std::condition_variable stopCv_;
  bool stop_ = false;
  // Reused by the thread.
  std::vector<nvml::ProcessUtilizationInfoV1> infos_;
  std::vector<nvml::ProcessUtilizationSample> samples_;
};

}  // namespace gt
