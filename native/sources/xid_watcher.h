// XID errors: the driver's critical-error events, delivered through a blocking event-set wait. Its
// own thread (so a wait never delays sampling), a bounded wait so stopping is prompt, per-device
// counters the sampler publishes, and a bounded queue of recent events for JS.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/nvml_api.h"

namespace gt {

struct XidEvent {
  int device = -1;
  uint64_t xid = 0;
  int64_t atEpochMs = 0;
  uint32_t gpuInstanceId = 0xFFFFFFFF;
  uint32_t computeInstanceId = 0xFFFFFFFF;
};

class XidWatcher {
 public:
  static constexpr size_t kQueueCapacity = 1024;  // events waiting for JS; beyond: counted as dropped
  static constexpr unsigned int kWaitTimeoutMs = 250;

  XidWatcher(const nvml::Api& api, std::vector<nvml::Device> devices);
  ~XidWatcher();
  XidWatcher(const XidWatcher&) = delete;
  XidWatcher& operator=(const XidWatcher&) = delete;

  // Creates the event set and starts the thread. Per device, `supported(d)` then says whether it
  // watches; `setupCode()` is the vendor code when watching could not start at all.
  void start(std::function<void()> onEvent);
  void stop();

  bool supported(size_t device) const { return device < supported_.size() && supported_[device]; }
  int32_t deviceCode(size_t device) const { return device < codes_.size() ? codes_[device] : 0; }
  uint64_t count(size_t device) const;
  uint64_t lastXid(size_t device) const;
  // Moves up to `max` queued events out; returns how many were dropped since the last drain.
  uint64_t drain(std::vector<XidEvent>& out, size_t max);

 private:
  void run();

  const nvml::Api& api_;
  std::vector<nvml::Device> devices_;
  std::vector<bool> supported_;
  std::vector<int32_t> codes_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::unique_ptr<std::atomic<uint64_t>[]> last_;
  nvml::EventSet set_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::function<void()> onEvent_;
  std::mutex queueMutex_;
  std::deque<XidEvent> queue_;
  uint64_t dropped_ = 0;
};

}  // namespace gt
