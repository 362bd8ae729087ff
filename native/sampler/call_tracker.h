// The watchdog's eyes: which vendor call the sampling thread is inside, since when. The sampling
// thread writes it around every driver call; any other thread can read it without a lock, so a
// reader can say "nvmlDeviceGetPowerUsage on GPU 3 has not returned for 5.2 s" while it hangs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace gt {

inline int64_t monoNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The coarse monotonic clock: the kernel's last tick, read from the vDSO without the TSC (a few ns
// against some tens for CLOCK_MONOTONIC, per vendor call: 350 of them per sample at 8 GPUs). It
// lags CLOCK_MONOTONIC by less than one tick (1-4 ms), never leads it, so `monoNowNs() - since`
// is never negative and overstates a call's time by at most a tick: hangs are told in tenths of
// a second.
inline int64_t coarseMonoNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t wallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class CallTracker {
 public:
  struct InFlight {
    const char* name;  // static string: a vendor symbol name
    int device;        // -1 when the call is not about one device
    int64_t sinceNs;   // start (coarse monotonic clock), 0 when nothing is in flight
  };

  void begin(const char* name, int device) {
    name_.store(name, std::memory_order_relaxed);
    device_.store(device, std::memory_order_relaxed);
    since_.store(coarseMonoNowNs(), std::memory_order_release);
  }
  void end() {
    since_.store(0, std::memory_order_release);
    calls_.fetch_add(1, std::memory_order_relaxed);
  }
  InFlight current() const {
    const int64_t since = since_.load(std::memory_order_acquire);
    return {name_.load(std::memory_order_relaxed), device_.load(std::memory_order_relaxed), since};
  }
  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }

 private:
  std::atomic<const char*> name_{""};
  std::atomic<int> device_{-1};
  std::atomic<int64_t> since_{0};
  std::atomic<uint64_t> calls_{0};
};

// Scope guard: begin in the constructor, end in the destructor.
class TrackedCall {
 public:
  TrackedCall(CallTracker& tracker, const char* name, int device) : tracker_(tracker) {
    tracker_.begin(name, device);
  }
  ~TrackedCall() { tracker_.end(); }
  TrackedCall(const TrackedCall&) = delete;
  TrackedCall& operator=(const TrackedCall&) = delete;

 private:
  CallTracker& tracker_;
};

}  // namespace gt
