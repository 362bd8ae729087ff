#include "model.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace gtsim {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kIdleLoad = 0.02;       // below this the GPU is idle (clocks drop, reason GpuIdle)
constexpr double kPowerCapLoad = 0.9;    // above this the board sits at its power cap
constexpr unsigned long long kReasonGpuIdle = 0x1;
constexpr unsigned long long kReasonSwPowerCap = 0x4;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A uniform number in [0, 1) that depends only on its inputs.
double unit(uint64_t seed, uint64_t a, uint64_t b) {
  const uint64_t h = splitmix64(seed ^ splitmix64(a * 0x100000001B3ULL ^ splitmix64(b)));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

// Serials start at 1: a cache entry that was never written (serial 0) matches no model.
uint64_t nextSerial() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

// One remembered value of a pure function of (model, device, tick, argument), in a per-thread
// direct-mapped table. Keyed by the model's serial, never by its address, which a later model
// may reuse.
struct TickMemo {
  uint64_t serial = 0;
  size_t d = 0;
  int64_t k = 0;
  int arg = 0;
  double value = 0;

  bool holds(uint64_t s, size_t device, int64_t tick, int a) const {
    return serial == s && d == device && k == tick && arg == a;
  }
  double keep(uint64_t s, size_t device, int64_t tick, int a, double v) {
    *this = TickMemo{s, device, tick, a, v};
    return v;
  }
};

}  // namespace

int64_t monoNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t wallNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Model::Model(Scenario scenario)
    : scenario_(std::move(scenario)), serial_(nextSerial()), startNs_(monoNowNs()), startWallUs_(wallNowUs()) {
  counters_.resize(scenario_.devices.size());
  for (size_t d = 0; d < counters_.size(); ++d) {
    // Devices have been up a while: counters start at plausible, distinct, non-zero values.
    counters_[d].energyMj = 1.0e9 + 1.0e8 * unit(scenario_.seed, d, 1);
    counters_[d].pcieTxBytes = 5.0e12 * unit(scenario_.seed, d, 2);
    counters_[d].pcieRxBytes = 5.0e12 * unit(scenario_.seed, d, 3);
    counters_[d].nvlinkTxKiB = 1.0e10 * unit(scenario_.seed, d, 4);
    counters_[d].nvlinkRxKiB = 1.0e10 * unit(scenario_.seed, d, 5);
  }
  initial_ = counters_;
  restartCounters_.resize(scenario_.devices.size());
}

double Model::nowMs() const { return static_cast<double>(monoNowNs() - startNs_) / 1e6; }

int64_t Model::tickAt(double ms) const { return static_cast<int64_t>(std::floor(ms / scenario_.tickMs)); }

double Model::rawShape(const LoadShape& s, double ms) const {
  const double t = ms + s.phaseMs;
  switch (s.kind) {
    case LoadShape::Kind::Constant: return s.min;
    case LoadShape::Kind::Cycle: return s.min + (s.max - s.min) * (0.5 - 0.5 * std::cos(2 * kPi * t / s.periodMs));
    case LoadShape::Kind::Square: {
      double phase = std::fmod(t, s.periodMs);
      if (phase < 0) phase += s.periodMs;
      return phase < s.duty * s.periodMs ? s.max : s.min;
    }
    case LoadShape::Kind::Sequence: {
      const int64_t step = static_cast<int64_t>(std::floor(t / s.stepMs));
      const int64_t n = static_cast<int64_t>(s.values.size());
      return s.values[static_cast<size_t>(((step % n) + n) % n)];
    }
  }
  return 0;
}

double Model::load(size_t d, int64_t k) const {
  // A pure function of (scenario, d, k) that one sample asks for ~70 times per device (temperature
  // and fan average the last 30 ticks): remembered per thread, so the simulator's cos/pow do not
  // weigh in the sampler's CPU per device (bench/ANALYSIS.md).
  // 32 consecutive ticks of 32 devices: a 30-tick average never evicts its own entries.
  thread_local TickMemo cache[32 * 32];
  TickMemo& e = cache[(static_cast<uint64_t>(k) & 31) + 32 * (d & 31)];
  if (e.holds(serial_, d, k, 0)) return e.value;
  const LoadShape& s = scenario_.devices[d].load;
  double v = rawShape(s, static_cast<double>(k) * scenario_.tickMs);
  if (s.noise > 0) v += s.noise * (2 * unit(scenario_.seed, d, static_cast<uint64_t>(k) + 1000) - 1);
  return e.keep(serial_, d, k, 0, std::clamp(v, 0.0, 1.0));
}

double Model::loadAverage(size_t d, int64_t k, int window) const {
  // Temperature and fan ask for the average of the last `window` ticks, and each sample asks one
  // tick or so later than the one before: a running sum per thread and device, moved on by the
  // ticks that entered and left the window, not 30 loads read again (cold memory, per sample).
  // The loads are summed in fixed point (steps of 2^-32; sums stay far below 2^53, exact in a
  // double), so a running sum is exactly the sum from scratch, whichever thread or path made it.
  constexpr double kOne = 4294967296.0;
  const auto fixed = [&](int64_t tick) { return std::round(load(d, tick) * kOne); };
  thread_local TickMemo cache[64];
  TickMemo& e = cache[d & 63];
  if (!e.holds(serial_, d, k, window)) {
    double sum = 0;
    if (e.holds(serial_, d, e.k, window) && e.k < k && k - e.k < window) {
      sum = e.value;
      for (int64_t t = e.k + 1; t <= k; ++t) sum += fixed(t) - fixed(t - window);
    } else {
      for (int i = 0; i < window; ++i) sum += fixed(k - i);
    }
    e.keep(serial_, d, k, window, sum);
  }
  return e.value / (window * kOne);
}

double Model::activity(size_t d, Activity a, int64_t k) const {
  const DeviceSpec& s = scenario_.devices[d];
  const int i = static_cast<int>(a);
  if (s.hasProfileShape[i]) {
    const LoadShape& shape = s.profile[i];
    double v = rawShape(shape, static_cast<double>(k) * scenario_.tickMs);
    if (shape.noise > 0) v += shape.noise * (2 * unit(scenario_.seed, d * 16 + i, static_cast<uint64_t>(k) + 7000) - 1);
    return std::clamp(v, 0.0, 1.0);
  }
  // Typical LLM-serving proportions of the device load.
  static constexpr double kShare[] = {1.0, 0.9, 0.45, 0.7, 0.55, 0.0, 0.12, 0.06};
  return std::clamp(load(d, k) * kShare[i], 0.0, 1.0);
}

bool Model::gpmSupported(size_t d) const {
  const DeviceSpec& s = scenario_.devices[d];
  return s.gpm == -1 ? s.ccMajor >= 9 : s.gpm == 1;
}

unsigned int Model::gpuUtilPercent(size_t d, int64_t k) const {
  return static_cast<unsigned int>(std::lround(100 * load(d, k)));
}

unsigned int Model::memoryUtilPercent(size_t d, int64_t k) const {
  return static_cast<unsigned int>(std::lround(60 * load(d, k)));
}

double Model::powerWatts(size_t d, int64_t k) const {
  // Asked by the power reading and by the energy counter (the tick it completes and the current
  // one): remembered per thread for two ticks, so std::pow runs once per tick, not per call.
  thread_local TickMemo cache[2 * 32];
  TickMemo& e = cache[(static_cast<uint64_t>(k) & 1) + 2 * (d & 31)];
  if (e.holds(serial_, d, k, 0)) return e.value;
  const DeviceSpec& s = scenario_.devices[d];
  return e.keep(serial_, d, k, 0, s.idleWatts + (s.limitWatts - s.idleWatts) * 0.97 * std::pow(load(d, k), 1.3));
}

unsigned int Model::powerMilliwatts(size_t d, int64_t k) const {
  return static_cast<unsigned int>(std::lround(powerWatts(d, k) * 1000));
}

unsigned int Model::smClockMHz(size_t d, int64_t k) const {
  const DeviceSpec& s = scenario_.devices[d];
  const double l = load(d, k);
  if (l < kIdleLoad) return static_cast<unsigned int>(std::lround(s.smIdleMHz));
  if (l > kPowerCapLoad) return static_cast<unsigned int>(std::lround(s.smMaxMHz * 0.92));
  return static_cast<unsigned int>(std::lround(s.smMaxMHz));
}

unsigned int Model::memoryClockMHz(size_t d, int64_t k) const {
  const DeviceSpec& s = scenario_.devices[d];
  return static_cast<unsigned int>(std::lround(load(d, k) < kIdleLoad ? s.memoryIdleMHz : s.memoryMaxMHz));
}

unsigned long long Model::clockEventReasons(size_t d, int64_t k) const {
  const double l = load(d, k);
  if (l < kIdleLoad) return kReasonGpuIdle;
  if (l > kPowerCapLoad) return kReasonSwPowerCap;
  return 0;
}

int Model::temperatureCelsius(size_t d, int64_t k) const {
  const DeviceSpec& s = scenario_.devices[d];
  // Heat lags load: the last 3 s (or 30 ticks) of load set the temperature.
  return static_cast<int>(std::lround(s.ambientCelsius + (s.maxCelsius - s.ambientCelsius) * loadAverage(d, k, 30)));
}

unsigned int Model::fanPercent(size_t d, int64_t k) const {
  return static_cast<unsigned int>(std::lround(30 + 60 * loadAverage(d, k, 30)));
}

int Model::performanceState(size_t d, int64_t k) const { return load(d, k) < kIdleLoad ? 8 : 0; }

double Model::allocatedBytes(size_t d) const {
  double sum = 0;
  for (const ProcessSpec& p : scenario_.devices[d].processes) {
    if (p.usedMemoryBytes > 0) sum += p.usedMemoryBytes;
  }
  const DeviceSpec& s = scenario_.devices[d];
  return std::min(sum, s.memoryTotalBytes - s.memoryReservedBytes);
}

std::string Model::uuid(size_t d) const {
  // "SIM" in the third group (0x53494d) marks a simulated device even where only the UUID is seen.
  char buf[64];
  const uint64_t h = splitmix64(scenario_.seed ^ (d * 0x9E3779B97F4A7C15ULL));
  std::snprintf(buf, sizeof buf, "GPU-%08x-%04x-5349-4d00-%012llx", static_cast<unsigned>(h >> 32),
                static_cast<unsigned>(d & 0xffff), static_cast<unsigned long long>(h & 0xffffffffffffULL));
  return buf;
}

std::string Model::pciBusId(size_t d) const {
  char buf[32];
  const unsigned bus = scenario_.devices[d].pciBus != 0 ? scenario_.devices[d].pciBus
                                                          : static_cast<unsigned>(0x18 + 0x10 * d) & 0xff;
  std::snprintf(buf, sizeof buf, "%08X:%02X:00.0", static_cast<unsigned>(d / 16), bus);
  return buf;
}

void Model::addTick(size_t d, int64_t k, double seconds, Counters& c) const {
  const DeviceSpec& s = scenario_.devices[d];
  const double l = load(d, k);
  c.energyMj += powerWatts(d, k) * seconds * 1000;
  if (s.hasPcie) {
    c.pcieTxBytes += s.pcieMaxBytesPerSecond * (0.02 + 0.25 * l) * seconds;
    c.pcieRxBytes += s.pcieMaxBytesPerSecond * (0.01 + 0.20 * l) * seconds;
  }
  if (s.nvlinks > 0) {
    c.nvlinkTxKiB += s.nvlinkMaxBytesPerSecondPerLink * 0.6 * l * seconds / 1024;
    c.nvlinkRxKiB += s.nvlinkMaxBytesPerSecondPerLink * 0.55 * l * seconds / 1024;
  }
}

Counters Model::countersFromStart(size_t d, double ms) const {
  Counters c = initial_[d];
  const double tickSeconds = scenario_.tickMs / 1000.0;
  const int64_t k = tickAt(ms);
  for (int64_t t = 0; t < k; ++t) addTick(d, t, tickSeconds, c);
  addTick(d, k, (ms - static_cast<double>(k) * scenario_.tickMs) / 1000.0, c);
  return c;
}

double Model::lastRestartMs(size_t d, double ms) const {
  double last = 0;
  for (const FaultSpec& f : scenario_.faults) {
    if (f.kind != FaultSpec::Kind::GpuLost || f.durationMs < 0 || !f.whenFileExists.empty()) continue;
    if (f.device != -1 && f.device != static_cast<int>(d)) continue;
    const double end = f.atMs + f.durationMs;
    if (end <= ms && end > last) last = end;
  }
  return last;
}

Counters Model::deviceCounters(size_t d, double ms, double* restartMs, double* deviceMs) {
  // A device that never restarted has been up an hour before the scenario began (its counters
  // start at plausible non-zero values too).
  constexpr double kUptimeBeforeStartMs = 3'600'000;
  Counters now = countersAt(d, ms);
  const double restart = lastRestartMs(d, ms);
  *restartMs = restart;
  if (restart <= 0) {
    *deviceMs = kUptimeBeforeStartMs + ms;
    return now;
  }
  *deviceMs = ms - restart;
  const Counters* base = nullptr;
  for (const auto& [at, c] : restartCounters_[d]) {
    if (at == restart) base = &c;
  }
  if (base == nullptr) {
    restartCounters_[d].emplace_back(restart, countersFromStart(d, restart));
    base = &restartCounters_[d].back().second;
  }
  now.energyMj -= base->energyMj;
  now.pcieTxBytes -= base->pcieTxBytes;
  now.pcieRxBytes -= base->pcieRxBytes;
  now.nvlinkTxKiB -= base->nvlinkTxKiB;
  now.nvlinkRxKiB -= base->nvlinkRxKiB;
  return now;
}

Counters Model::countersAt(size_t d, double ms) {
  Counters& c = counters_[d];
  const double tickSeconds = scenario_.tickMs / 1000.0;
  const int64_t k = tickAt(ms);
  // Catch up tick by tick: each tick adds what its load produced. Bounded per call so a long
  // pause cannot stall a caller (the remainder is picked up by later calls).
  int64_t budget = 1'000'000;
  while (c.tick < k && budget-- > 0) {
    addTick(d, c.tick, tickSeconds, c);
    ++c.tick;
  }
  Counters now = c;
  if (c.tick == k) addTick(d, k, (ms - static_cast<double>(k) * scenario_.tickMs) / 1000.0, now);
  return now;
}

FaultAction Model::faultFor(const char* call, int d) const {
  FaultAction action;
  if (scenario_.faults.empty()) return action;
  const double ms = nowMs();
  for (const FaultSpec& f : scenario_.faults) {
    if (ms < f.atMs) continue;
    if (f.durationMs >= 0 && ms >= f.atMs + f.durationMs) continue;
    if (f.call != "*" && f.call != call) continue;
    if (!f.whenFileExists.empty() && ::access(f.whenFileExists.c_str(), F_OK) != 0) continue;
    const bool dcgmCall = std::strncmp(call, "dcgm", 4) == 0;
    if (f.kind == FaultSpec::Kind::DcgmDown) {
      // The host engine is gone: every DCGM call fails, nothing else notices.
      if (!dcgmCall) continue;
      action.returnCode = -21;  // DCGM_ST_CONNECTION_NOT_VALID
      return action;
    }
    switch (f.kind) {
      case FaultSpec::Kind::DriverGone:
        action.returnCode = f.code;
        return action;
      case FaultSpec::Kind::GpuLost:
        if (d >= 0 && (f.device == -1 || f.device == d)) {
          action.returnCode = 15;  // NVML_ERROR_GPU_IS_LOST
          return action;
        }
        break;
      case FaultSpec::Kind::Error:
        if (f.device == -1 || f.device == d) {
          action.returnCode = f.code;
          return action;
        }
        break;
      case FaultSpec::Kind::Hang:
        if (f.device == -1 || f.device == d) {
          if (f.durationMs < 0) {
            action.sleepForever = true;
          } else {
            action.sleepMs = std::max(action.sleepMs, f.atMs + f.durationMs - ms);
          }
        }
        break;
      case FaultSpec::Kind::Slow:
        if (f.device == -1 || f.device == d) action.sleepMs += f.delayMs;
        break;
      case FaultSpec::Kind::DcgmDown:
        break;
    }
  }
  return action;
}

bool Model::migOn(size_t d) const {
  const DeviceSpec& s = spec(d);
  if (!s.migEnabled) return false;
  return s.migWhenFileExists.empty() || ::access(s.migWhenFileExists.c_str(), F_OK) == 0;
}

const std::vector<MigInstanceSpec>& Model::migLayout(size_t d, int* layout) const {
  static const std::vector<MigInstanceSpec> kNone;
  const DeviceSpec& s = spec(d);
  if (layout != nullptr) *layout = 0;
  if (!migOn(d)) return kNone;
  if (!s.migReconfigureWhenFileExists.empty() && ::access(s.migReconfigureWhenFileExists.c_str(), F_OK) == 0) {
    if (layout != nullptr) *layout = 1;
    return s.migReconfigured;
  }
  return s.migInstances;
}

double Model::migLoad(size_t d, const MigInstanceSpec& m, int64_t k) const {
  if (!m.hasLoad) return load(d, k);
  double v = rawShape(m.load, static_cast<double>(k) * scenario_.tickMs);
  if (m.load.noise > 0) v += m.load.noise * (2 * unit(scenario_.seed, d * 64 + m.index, static_cast<uint64_t>(k) + 9000) - 1);
  return std::clamp(v, 0.0, 1.0);
}

double Model::migActivity(size_t d, const MigInstanceSpec& m, Activity a, int64_t k) const {
  static constexpr double kShare[] = {1.0, 0.9, 0.45, 0.7, 0.55, 0.0, 0.12, 0.06};
  return std::clamp(migLoad(d, m, k) * kShare[static_cast<int>(a)], 0.0, 1.0);
}

double Model::processBytes(const ProcessSpec& p, double load) {
  if (p.usedMemoryBytes < 0) return -1;
  return p.usedMemoryBytes + p.growthBytes * load;
}

std::vector<double> Model::utilShares(const std::vector<ProcessSpec>& procs) {
  std::vector<double> out(procs.size(), 0);
  double memory = 0;
  for (const ProcessSpec& p : procs) {
    if (p.utilShare < 0 && p.usedMemoryBytes > 0) memory += p.usedMemoryBytes;
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    if (procs[i].utilShare >= 0) out[i] = procs[i].utilShare;
    else if (memory > 0 && procs[i].usedMemoryBytes > 0) out[i] = procs[i].usedMemoryBytes / memory;
  }
  return out;
}

bool Model::deviceLost(int d) const {
  FaultAction a = faultFor("*", d);
  return a.returnCode == 15;
}

}  // namespace gtsim
