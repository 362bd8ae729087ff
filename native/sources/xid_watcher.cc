#include "xid_watcher.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace gt {

std::shared_ptr<XidWatcher> XidWatcher::create(std::shared_ptr<NvmlSession> session, std::vector<nvml::Device> devices,
                                               int64_t retryLostMs) {
  return std::shared_ptr<XidWatcher>(new XidWatcher(std::move(session), std::move(devices), retryLostMs));
}

XidWatcher::XidWatcher(std::shared_ptr<NvmlSession> session, std::vector<nvml::Device> devices, int64_t retryLostMs)
    : session_(std::move(session)),
      api_(session_->api),
      devices_(std::move(devices)),
      retryLostMs_(retryLostMs),
      supported_(devices_.size(), false),
      codes_(devices_.size(), kCodeSymbolMissing),
      excluded_(new std::atomic<bool>[devices_.size()]),
      counts_(new std::atomic<uint64_t>[devices_.size()]),
      last_(new std::atomic<uint64_t>[devices_.size()]) {
  for (size_t d = 0; d < devices_.size(); ++d) {
    excluded_[d].store(false);
    counts_[d].store(0);
    last_[d].store(0);
  }
}

// Runs on whichever side lets go last: the event thread after its last wait, or the sampler when
// the thread never started. Either way nothing else can be using the set.
XidWatcher::~XidWatcher() { freeSet(); }

void XidWatcher::freeSet() {
  if (set_ != nullptr && api_.eventSetFree != nullptr) api_.eventSetFree(set_);
  set_ = nullptr;
}

bool XidWatcher::buildSet() {
  freeSet();
  if (api_.eventSetCreate(&set_) != nvml::kSuccess) {
    set_ = nullptr;
    return false;
  }
  bool any = false;
  for (size_t d = 0; d < devices_.size(); ++d) {
    if (!supported_[d] || excluded_[d].load()) continue;
    if (api_.deviceRegisterEvents(devices_[d], nvml::kEventTypeXidCriticalError, set_) == nvml::kSuccess) {
      any = true;
    } else {
      excluded_[d].store(true);  // could not be registered now (lost meanwhile?): retried later
    }
  }
  return any;
}

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
    freeSet();
    return;
  }
  // The thread owns a reference to the watcher (and through it to the NVML session) for as long
  // as it runs: detached, it ends on its own after requestStop, when its current wait returns.
  std::thread([self = shared_from_this()] {
    pthread_setname_np(pthread_self(), "gt-xid");
    self->run();
  }).detach();
}

void XidWatcher::requestStop() {
  stop_.store(true);
  std::lock_guard<std::mutex> lock(callbackMutex_);
  onEvent_ = nullptr;
}

bool XidWatcher::excludeLostDevices() {
  bool found = false;
  for (size_t d = 0; d < devices_.size(); ++d) {
    if (!supported_[d] || excluded_[d].load()) continue;
    unsigned long long types = 0;
    const nvml::Return r = api_.deviceGetSupportedEventTypes != nullptr
                               ? api_.deviceGetSupportedEventTypes(devices_[d], &types)
                               : nvml::kErrorGpuIsLost;
    if (r == nvml::kErrorGpuIsLost) {
      excluded_[d].store(true);
      found = true;
    }
  }
  return found;
}

void XidWatcher::retryExcluded(int64_t nowMs) {
  if (nowMs < nextRetryMs_) return;
  nextRetryMs_ = nowMs + retryLostMs_;
  bool back = false;
  for (size_t d = 0; d < devices_.size(); ++d) {
    if (!supported_[d] || !excluded_[d].load()) continue;
    unsigned long long types = 0;
    if (api_.deviceGetSupportedEventTypes == nullptr ||
        api_.deviceGetSupportedEventTypes(devices_[d], &types) == nvml::kSuccess) {
      excluded_[d].store(false);
      back = true;
    }
  }
  if (back) buildSet();
}

void XidWatcher::run() {
  int failures = 0;
  while (!stop_.load()) {
    const int64_t now = wallNowMs();
    bool anyExcluded = false;
    for (size_t d = 0; d < devices_.size(); ++d) anyExcluded = anyExcluded || excluded_[d].load();
    if (anyExcluded) retryExcluded(now);
    if (set_ == nullptr) {
      // Every watched GPU is lost: nothing to wait on until one comes back.
      std::this_thread::sleep_for(std::chrono::milliseconds(kWaitTimeoutMs));
      continue;
    }
    nvml::EventData data{};
    const nvml::Return r = api_.eventSetWait(set_, &data, kWaitTimeoutMs);
    if (stop_.load()) break;
    if (r == nvml::kErrorTimeout) continue;
    if (r == nvml::kErrorGpuIsLost && excludeLostDevices()) {
      // One lost GPU fails every wait on the set: carry on without it so the others keep counting.
      if (!buildSet()) freeSet();
      nextRetryMs_ = now + retryLostMs_;
      failures = 0;
      continue;
    }
    if (r != nvml::kSuccess) {
      // A wait that fails at once (driver trouble) must not spin: back off to one try a second,
      // and keep trying (giving up would freeze xidErrors at "ok" after the driver came back: a
      // series that silently stops counting).
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
    if (notify) {
      std::lock_guard<std::mutex> lock(callbackMutex_);
      if (onEvent_) onEvent_();
    }
  }
  freeSet();
}

bool XidWatcher::excluded(size_t device) const { return device < devices_.size() && excluded_[device].load(); }
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
