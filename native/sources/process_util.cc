#include "process_util.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "nvml_source.h"

namespace gt {

namespace {

constexpr size_t kBufferMax = 4096;  // entries accepted per call

int64_t wallNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::shared_ptr<ProcessUtilWatcher> ProcessUtilWatcher::create(std::shared_ptr<NvmlSession> session,
                                                               std::vector<nvml::Device> devices, int64_t intervalNs,
                                                               int64_t hungAfterNs) {
  return std::shared_ptr<ProcessUtilWatcher>(new ProcessUtilWatcher(std::move(session), std::move(devices), intervalNs, hungAfterNs));
}

ProcessUtilWatcher::ProcessUtilWatcher(std::shared_ptr<NvmlSession> session, std::vector<nvml::Device> devices,
                                       int64_t intervalNs, int64_t hungAfterNs)
    : session_(std::move(session)),
      api_(session_->api),
      intervalNs_(std::max(intervalNs, kMinIntervalNs)),
      hungAfterNs_(hungAfterNs) {
  for (nvml::Device h : devices) {
    auto d = std::make_unique<Device>();
    d->handle = h;
    devices_.push_back(std::move(d));
  }
}

const char* ProcessUtilWatcher::symbol() const {
  if (api_.deviceGetProcessesUtilizationInfo != nullptr) return "nvmlDeviceGetProcessesUtilizationInfo";
  if (api_.deviceGetProcessUtilization != nullptr) return "nvmlDeviceGetProcessUtilization";
  return nullptr;
}

void ProcessUtilWatcher::start() {
  if (symbol() == nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& d : devices_) d->code = kCodeSymbolMissing;
    return;
  }
  std::thread([self = shared_from_this()] {
    pthread_setname_np(pthread_self(), "gt-procutil");
    self->run();
  }).detach();
}

void ProcessUtilWatcher::requestStop() {
  {
    std::lock_guard<std::mutex> lock(stopMutex_);
    stop_ = true;
  }
  stopCv_.notify_all();
}

void ProcessUtilWatcher::setMigMode(size_t device, int mode) {
  if (device < devices_.size()) devices_[device]->migMode.store(mode, std::memory_order_relaxed);
}

void ProcessUtilWatcher::run() {
  int64_t next = monoNowNs();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(stopMutex_);
      stopCv_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next)), [&] { return stop_; });
      if (stop_) return;
    }
    for (size_t d = 0; d < devices_.size(); ++d) {
      {
        std::lock_guard<std::mutex> lock(stopMutex_);
        if (stop_) return;
      }
      poll(d);
    }
    next += intervalNs_;
    const int64_t now = monoNowNs();
    if (next <= now) next = now + intervalNs_;
  }
}

void ProcessUtilWatcher::poll(size_t index) {
  Device& d = *devices_[index];
  if (d.handle == nullptr) return;
  const int mode = d.migMode.load(std::memory_order_relaxed);
  if (d.unsupportedMode != -2 && d.unsupportedMode == mode) return;  // remembered NOT_SUPPORTED
  d.unsupportedMode = -2;

  unsigned long long lastSeen;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    lastSeen = d.lastSeen;
  }
  // (pid, timestamp, sm, mem, enc, dec) of every entry the driver answered, oldest first or not.
  std::vector<std::pair<unsigned int, Entry>> got;
  nvml::Return r;
  if (api_.deviceGetProcessesUtilizationInfo != nullptr) {
    if (infos_.size() < 64) infos_.resize(64);
    for (int attempt = 0; attempt < 3; ++attempt) {
      nvml::ProcessesUtilizationInfoV1 info{};
      info.version = nvml::kProcessesUtilizationInfoV1Version;
      info.processSamplesCount = static_cast<unsigned int>(infos_.size());
      info.lastSeenTimeStamp = lastSeen;
      info.procUtilArray = infos_.data();
      {
        TrackedCall tracked(tracker_, "nvmlDeviceGetProcessesUtilizationInfo", static_cast<int>(index));
        r = api_.deviceGetProcessesUtilizationInfo(d.handle, &info);
      }
      if (r == nvml::kErrorInsufficientSize && info.processSamplesCount > infos_.size() && infos_.size() < kBufferMax) {
        infos_.resize(std::min<size_t>(info.processSamplesCount + 16, kBufferMax));
        continue;
      }
      if (r == nvml::kSuccess) {
        const size_t n = std::min<size_t>(info.processSamplesCount, infos_.size());
        for (size_t i = 0; i < n; ++i) {
          const nvml::ProcessUtilizationInfoV1& e = infos_[i];
          got.push_back({e.pid, Entry{e.timeStamp, e.smUtil, e.memUtil, e.encUtil, e.decUtil}});
        }
      }
      break;
    }
  } else {
    if (samples_.size() < 64) samples_.resize(64);
    for (int attempt = 0; attempt < 3; ++attempt) {
      unsigned int count = static_cast<unsigned int>(samples_.size());
      {
        TrackedCall tracked(tracker_, "nvmlDeviceGetProcessUtilization", static_cast<int>(index));
        r = api_.deviceGetProcessUtilization(d.handle, samples_.data(), &count, lastSeen);
      }
      if (r == nvml::kErrorInsufficientSize && count > samples_.size() && samples_.size() < kBufferMax) {
        samples_.resize(std::min<size_t>(count + 16, kBufferMax));
        continue;
      }
      if (r == nvml::kSuccess) {
        const size_t n = std::min<size_t>(count, samples_.size());
        for (size_t i = 0; i < n; ++i) {
          const nvml::ProcessUtilizationSample& e = samples_[i];
          got.push_back({e.pid, Entry{e.timeStamp, e.smUtil, e.memUtil, e.encUtil, e.decUtil}});
        }
      }
      break;
    }
  }
  if (r == nvml::kErrorNotSupported) d.unsupportedMode = mode;
  std::lock_guard<std::mutex> lock(mutex_);
  d.answeredAtNs = monoNowNs();
  if (r == nvml::kSuccess) {
    for (const auto& [pid, e] : got) {
      Entry& cur = d.newest[pid];
      if (e.timeStamp >= cur.timeStamp) cur = e;
      d.lastSeen = std::max(d.lastSeen, e.timeStamp);
    }
    d.code = 0;
  } else if (r == nvml::kErrorNotFound) {
    d.code = 0;  // no sample newer than lastSeen: nothing new, not an error
  } else {
    d.code = r;
    d.newest.clear();
  }
  // Entries older than the hold window say nothing any more: bounded by the processes running.
  const int64_t now = wallNowUs();
  for (auto it = d.newest.begin(); it != d.newest.end();) {
    if (now - static_cast<int64_t>(it->second.timeStamp) > kHoldUs) {
      it = d.newest.erase(it);
    } else {
      ++it;
    }
  }
}

void ProcessUtilWatcher::apply(size_t index, DeviceRow& row) {
  const size_t count = static_cast<size_t>(row.meta(kDevProcessCount));
  auto fillAll = [&](double v) {
    for (size_t i = 0; i < count && i < kMaxProcesses; ++i) {
      double* p = row.process(i);
      p[kProcSmUtil] = p[kProcMemUtil] = p[kProcEncUtil] = p[kProcDecUtil] = v;
    }
  };
  if (index >= devices_.size()) return;
  const CallTracker::InFlight inFlight = tracker_.current();
  const int64_t nowNs = monoNowNs();
  if (inFlight.sinceNs != 0 && nowNs - inFlight.sinceNs > hungAfterNs_) {
    // The thread is stuck in a call (on this GPU or another): nothing it has is current.
    row.meta(kDevProcessUtilCode) = kCodeHung;
    row.meta(kDevProcessUtilMs) = static_cast<double>(nowNs - inFlight.sinceNs) / 1e6;
    fillAll(kNaN);
    return;
  }
  Device& d = *devices_[index];
  std::lock_guard<std::mutex> lock(mutex_);
  row.meta(kDevProcessUtilCode) = d.code;
  row.meta(kDevProcessUtilMs) = d.answeredAtNs != 0 ? static_cast<double>(nowNs - d.answeredAtNs) / 1e6 : 0;
  if (d.code != 0) {
    fillAll(kNaN);
    return;
  }
  const int64_t now = wallNowUs();
  for (size_t i = 0; i < count && i < kMaxProcesses; ++i) {
    double* p = row.process(i);
    const auto it = d.newest.find(static_cast<unsigned int>(p[kProcPid]));
    if (it == d.newest.end() || now - static_cast<int64_t>(it->second.timeStamp) > kHoldUs) {
      // Not listed in the newest samples: the driver lists only processes with non-zero utilisation.
      p[kProcSmUtil] = p[kProcMemUtil] = p[kProcEncUtil] = p[kProcDecUtil] = 0;
      continue;
    }
    const Entry& e = it->second;
    p[kProcSmUtil] = std::min(e.sm, 100U) / 100.0;
    p[kProcMemUtil] = std::min(e.mem, 100U) / 100.0;
    p[kProcEncUtil] = std::min(e.enc, 100U) / 100.0;
    p[kProcDecUtil] = std::min(e.dec, 100U) / 100.0;
  }
}

}  // namespace gt
