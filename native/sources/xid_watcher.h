// XID errors: the driver's critical-error events, delivered through a blocking event-set wait. Its
// own thread (so a wait never delays sampling), a bounded wait, per-device counters the sampler
// publishes, and a bounded queue of recent events for JS.
//
// Two things a real driver does shape it:
//  - The wait answers NVML_ERROR_GPU_IS_LOST while any GPU in the set has fallen off the bus, so
//    one lost GPU would silence every other GPU's XIDs. The thread then rebuilds the set without
//    the lost GPUs (found by asking each one), and tries to take them back every `retryLostMs`.
//  - A wait cannot be interrupted. Stopping does not wait for it: the thread owns itself (and a
//    share of the NVML session) and lets go when its current wait returns, so close() is prompt
//    and NVML is still never shut down under it (see nvml_session.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/nvml_session.h"

namespace gt {

struct XidEvent {
  int device = -1;
  uint64_t xid = 0;
  int64_t atEpochMs = 0;
  uint32_t gpuInstanceId = 0xFFFFFFFF;
  uint32_t computeInstanceId = 0xFFFFFFFF;
};

class XidWatcher : public std::enable_shared_from_this<XidWatcher> {
 public:
  static constexpr size_t kQueueCapacity = 1024;  // events waiting for JS; beyond: counted as dropped
  static constexpr unsigned int kWaitTimeoutMs = 250;

  static std::shared_ptr<XidWatcher> create(std::shared_ptr<NvmlSession> session, std::vector<nvml::Device> devices,
                                            int64_t retryLostMs = 5000);
  ~XidWatcher();
  XidWatcher(const XidWatcher&) = delete;
  XidWatcher& operator=(const XidWatcher&) = delete;

  // Creates the event set and starts the thread. Per device, `supported(d)` then says whether it
  // is watched; `deviceCode(d)` is the vendor code when it is not.
  void start(std::function<void()> onEvent);
  // Asks the thread to end and returns at once: no event is delivered after this returns. The
  // thread finishes its current wait (at most kWaitTimeoutMs), frees the set and lets go of NVML.
  void requestStop();

  bool supported(size_t device) const { return device < supported_.size() && supported_[device]; }
  int32_t deviceCode(size_t device) const { return device < codes_.size() ? codes_[device] : 0; }
  // Whether the device is left out of the event set for now (lost); its count is kept.
  bool excluded(size_t device) const;
  uint64_t count(size_t device) const;
  uint64_t lastXid(size_t device) const;
  // Moves up to `max` queued events out; returns how many were dropped since the last drain.
  uint64_t drain(std::vector<XidEvent>& out, size_t max);

 private:
  XidWatcher(std::shared_ptr<NvmlSession> session, std::vector<nvml::Device> devices, int64_t retryLostMs);
  void run();
  // (Re)creates the event set with every supported device that is not excluded.
  bool buildSet();
  void freeSet();
  // After the wait answered GPU_IS_LOST: which registered devices are lost; true if any was found.
  bool excludeLostDevices();
  // Every retryLostMs: takes excluded devices back once they answer again.
  void retryExcluded(int64_t nowMs);

  std::shared_ptr<NvmlSession> session_;
  const nvml::Api& api_;
  std::vector<nvml::Device> devices_;
  int64_t retryLostMs_;
  std::vector<bool> supported_;
  std::vector<int32_t> codes_;
  std::unique_ptr<std::atomic<bool>[]> excluded_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::unique_ptr<std::atomic<uint64_t>[]> last_;
  nvml::EventSet set_ = nullptr;  // owned by the thread once it runs
  int64_t nextRetryMs_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex callbackMutex_;  // guards onEvent_ against requestStop clearing it mid-call
  std::function<void()> onEvent_;
  std::mutex queueMutex_;
  std::deque<XidEvent> queue_;
  uint64_t dropped_ = 0;
};

}  // namespace gt
