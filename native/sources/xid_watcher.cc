#include "xid_watcher.h"

#include <algorithm>
#include <chrono>

namespace gt {

XidWatcher::XidWatcher(const nvml::Api& api, std::vector<nvml::Device> devices)
    : api_(api),
      devices_(std::move(devices)),
      supported_(devices_.size(), false),
      codes_(devices_.size(), kCodeSymbolMissing),
      counts_(new std::atomic<uint64_t>[devices_.size()]),
      last_(new std::atomic<uint64_t>[devices_.size()]) {
  for (size_t d = 0; d < devices_.size(); ++d) {
    counts_[d].store(0);
    last_[d].store(0);
  }
}

XidWatcher::~XidWatcher() { stop(); }

void XidWatcher::start(std::function<void()> onEvent) {
  onEvent_ = std::move(onEvent);
  if (!api_.eventSetCreate || !api_.eventSetWait || !api_.deviceRegisterEvents || !api_.eventSetFree) return;
  if (api_.eventSetCreate(&set_) != nvml::kSuccess) {
    set_ = nullptr;
    return;
  }
  bool any = false;
  for (size_t d = 0; d < devices_.size(); ++d) {
    if (devices_[d] == nullptr) continue;
    unsigned long long supportedTypes = 0;
    nvml::Return r = nvml::kSuccess;
    if (api_.deviceGetSupportedEventTypes) r = api_.deviceGetSupportedEventTypes(devices_[d], &supportedTypes);
    if (r == nvml::kSuccess && api_.deviceGetSupportedEventTypes &&
        (supportedTypes & nvml::kEventTypeXidCriticalError) == 0) {
      r = nvml::kErrorNotSupported;
    }
    if (r == nvml::kSuccess) r = api_.deviceRegisterEvents(devices_[d], nvml::kEventTypeXidCriticalError, set_);
    codes_[d] = r;
    supported_[d] = r == nvml::kSuccess;
    any = any || supported_[d];
  }
  if (!any) {
    api_.eventSetFree(set_);
    set_ = nullptr;
    return;
  }
  thread_ = std::thread([this] { run(); });
}

void XidWatcher::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (set_ != nullptr) {
    api_.eventSetFree(set_);
    set_ = nullptr;
  }
}

void XidWatcher::run() {
  int failures = 0;
  while (!stop_.load()) {
    nvml::EventData data{};
    const nvml::Return r = api_.eventSetWait(set_, &data, kWaitTimeoutMs);
    if (r == nvml::kErrorTimeout) continue;
    if (r != nvml::kSuccess) {
      // A wait that fails at once (GPU lost, driver trouble) must not spin: back off to one try a
      // second, and keep trying (giving up would freeze xidErrors at "ok" after the driver came
      // back: a series that silently stops counting).
      if (failures < 100) ++failures;
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * failures));
      continue;
    }
    failures = 0;
    if ((data.eventType & nvml::kEventTypeXidCriticalError) == 0) continue;
    int device = -1;
    for (size_t d = 0; d < devices_.size(); ++d) {
      if (devices_[d] == data.device) device = static_cast<int>(d);
    }
    if (device < 0) continue;
    counts_[device].fetch_add(1, std::memory_order_relaxed);
    last_[device].store(data.eventData, std::memory_order_relaxed);
    bool notify = false;
    {
      std::lock_guard<std::mutex> lock(queueMutex_);
      if (queue_.size() >= kQueueCapacity) {
        ++dropped_;
      } else {
        XidEvent e;
        e.device = device;
        e.xid = data.eventData;
        e.atEpochMs = wallNowMs();
        e.gpuInstanceId = data.gpuInstanceId;
        e.computeInstanceId = data.computeInstanceId;
        queue_.push_back(e);
        notify = true;
      }
    }
    if (notify && onEvent_) onEvent_();
  }
}

uint64_t XidWatcher::count(size_t device) const { return counts_[device].load(std::memory_order_relaxed); }
uint64_t XidWatcher::lastXid(size_t device) const { return last_[device].load(std::memory_order_relaxed); }

uint64_t XidWatcher::drain(std::vector<XidEvent>& out, size_t max) {
  std::lock_guard<std::mutex> lock(queueMutex_);
  while (!queue_.empty() && out.size() < max) {
    out.push_back(queue_.front());
    queue_.pop_front();
  }
  const uint64_t dropped = dropped_;
  dropped_ = 0;
  return dropped;
}

}  // namespace gt
