// The simulated machine: device values as deterministic functions of (seed, device, tick), plus
// cumulative counters (energy, PCIe and NVLink bytes) and the fault schedule. Time starts when the
// scenario is configured; all state is guarded by one mutex, never held across an injected hang.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "scenario.h"

namespace gtsim {

int64_t monoNowNs();
int64_t wallNowUs();

// What an injected fault asks the calling entry point to do.
struct FaultAction {
  int returnCode = 0;       // non-zero: return this instead of answering
  double sleepMs = 0;       // sleep this long first (outside the model lock)
  bool sleepForever = false;
};

struct Counters {
  int64_t tick = 0;  // ticks accounted so far
  double energyMj = 0;
  double pcieTxBytes = 0, pcieRxBytes = 0;
  double nvlinkTxKiB = 0, nvlinkRxKiB = 0;  // per link (every link carries the same share)
};

class Model {
 public:
  explicit Model(Scenario scenario);

  const Scenario& scenario() const { return scenario_; }
  size_t deviceCount() const { return scenario_.devices.size(); }
  const DeviceSpec& spec(size_t d) const { return scenario_.devices[d]; }

  double nowMs() const;
  int64_t tickAt(double ms) const;
  int64_t currentTick() const { return tickAt(nowMs()); }

  // Load in [0, 1] for device d at tick k: the scenario's shape plus deterministic jitter.
  double load(size_t d, int64_t k) const;
  double loadAverage(size_t d, int64_t k, int window) const;

  // Derived readings at tick k (units as NVML reports them).
  // Profiling activity (0-1) of device d at tick k: the scenario's shape, else a share of load.
  double activity(size_t d, Activity a, int64_t k) const;
  bool gpmSupported(size_t d) const;
  unsigned int gpuUtilPercent(size_t d, int64_t k) const;
  unsigned int memoryUtilPercent(size_t d, int64_t k) const;
  unsigned int powerMilliwatts(size_t d, int64_t k) const;
  unsigned int smClockMHz(size_t d, int64_t k) const;
  unsigned int memoryClockMHz(size_t d, int64_t k) const;
  unsigned long long clockEventReasons(size_t d, int64_t k) const;
  int temperatureCelsius(size_t d, int64_t k) const;
  unsigned int fanPercent(size_t d, int64_t k) const;
  int performanceState(size_t d, int64_t k) const;
  double allocatedBytes(size_t d) const;  // sum of the processes' memory
  std::string uuid(size_t d) const;
  std::string pciBusId(size_t d) const;

  // Cumulative counters at sim time `ms` (call with the lock held). Whole ticks are accumulated;
  // the running tick contributes pro rata, so a counter grows smoothly and rates read from it
  // between any two instants are exact for a constant load.
  Counters countersAt(size_t d, double ms);

  // The device's own view for GPM (call with the lock held): its counters and its clock restart
  // when it comes back from a reset, which the simulator takes to be the end of a gpu_lost fault
  // with a duration (a file-armed one has no known end). Returns the counters since the device
  // last (re)started; *restartMs is that instant (0: up since before the scenario started) and
  // *deviceMs the device's own clock (ms since that instant).
  Counters deviceCounters(size_t d, double ms, double* restartMs, double* deviceMs);
  // End of the latest timed gpu_lost fault on d at or before `ms` (0 when none).
  double lastRestartMs(size_t d, double ms) const;

  // Whether a fault applies to `call` on device `d` (-1: not a device call) right now.
  FaultAction faultFor(const char* call, int d) const;
  bool deviceLost(int d) const;
  // Whether device d is in MIG mode right now (its scenario's "mig", possibly switched by a file).
  bool migOn(size_t d) const;
  // The MIG devices of device d right now (empty when MIG mode is off), and which layout that is
  // (0: mig.instances; 1: mig.reconfigure.instances while its file exists).
  const std::vector<MigInstanceSpec>& migLayout(size_t d, int* layout = nullptr) const;
  double migLoad(size_t d, const MigInstanceSpec& m, int64_t k) const;
  double migActivity(size_t d, const MigInstanceSpec& m, Activity a, int64_t k) const;
  // A process's memory at load `load` (growthBytes follows the load); < 0: the driver cannot tell.
  static double processBytes(const ProcessSpec& p, double load);
  // The processes' share of the utilisation (utilShare, else by memory), same order as `procs`.
  static std::vector<double> utilShares(const std::vector<ProcessSpec>& procs);
  // Wall clock (µs since the epoch) when the scenario started: NVML's CPU timestamps.
  int64_t startWallUs() const { return startWallUs_; }

  std::mutex& mutex() { return mutex_; }

 private:
  double rawShape(const LoadShape& s, double ms) const;
  double powerWatts(size_t d, int64_t k) const;
  void addTick(size_t d, int64_t k, double seconds, Counters& c) const;
  Counters countersFromStart(size_t d, double ms) const;

  Scenario scenario_;
  uint64_t serial_;  // unique per model in this process (load()'s per-thread memo)
  int64_t startNs_;
  int64_t startWallUs_;
  std::vector<Counters> counters_;
  std::vector<Counters> initial_;  // counters_ at scenario start
  // Counters at each restart instant, by device (computed once from the start: restarts are few).
  std::vector<std::vector<std::pair<double, Counters>>> restartCounters_;
  std::mutex mutex_;
};

}  // namespace gtsim
