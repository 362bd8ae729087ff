// The simulator's per-process utilisation, as nvml.h describes NVIDIA's driver:
//  - the driver samples utilisation every sample period (nvml.h, nvmlDeviceGetUtilizationRates:
//    "between 1 second and 1/6 second, depending on the product"; here 1/6 s) and keeps the last
//    samples in a buffer (here 16 periods);
//  - "One utilization sample structure is returned per process running, that had some non-zero
//    utilization during the last sample period", each with "the CPU timestamp at which the samples
//    were recorded" (µs): a process with zero utilisation in a period has no entry for it;
//  - only samples newer than lastSeenTimeStamp are returned (0: every sample kept); "If no valid
//    sample entries are found since the lastSeenTimeStamp, NVML_ERROR_NOT_FOUND is returned";
//  - a NULL or too small buffer answers NVML_ERROR_INSUFFICIENT_SIZE with the count needed;
//  - "On MIG-enabled GPUs, querying process utilization is not currently supported."
// nvmlDeviceGetProcessesUtilizationInfo (NVML 12+) is the same with a versioned struct (a wrong
// version answers NVML_ERROR_ARGUMENT_VERSION_MISMATCH); the legacy driver has only the old call.
#include <cmath>
#include <cstring>
#include <vector>

#include "mig.h"
#include "sim_state.h"

#define SIM_EXPORT extern "C" __attribute__((visibility("default")))

namespace gtsim {
namespace {

constexpr int64_t kPeriodUs = 166667;  // 1/6 s
constexpr int64_t kKeptPeriods = 16;

struct UtilEntry {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int sm, mem;
};

// Entries newer than lastSeen, oldest first.
void utilEntries(const Model& m, size_t d, unsigned long long lastSeen, std::vector<UtilEntry>& out) {
  out.clear();
  const DeviceSpec& spec = m.spec(d);
  const std::vector<double> shares = Model::utilShares(spec.processes);
  const int64_t nowUs = wallNowUs();
  const int64_t done = (nowUs - m.startWallUs()) / kPeriodUs;  // periods completed since the start
  for (int64_t p = std::max<int64_t>(0, done - kKeptPeriods); p < done; ++p) {
    const int64_t endUs = m.startWallUs() + (p + 1) * kPeriodUs;
    if (static_cast<unsigned long long>(endUs) <= lastSeen) continue;
    const double ms = static_cast<double>((p + 1) * kPeriodUs) / 1000.0;
    const double load = m.load(d, m.tickAt(ms - 1e-3));
    for (size_t i = 0; i < spec.processes.size(); ++i) {
      const unsigned int sm = static_cast<unsigned int>(std::lround(100 * load * shares[i]));
      const unsigned int mem = static_cast<unsigned int>(std::lround(60 * load * shares[i]));
      if (sm == 0 && mem == 0) continue;  // zero utilisation in this period: not listed
      out.push_back({spec.processes[i].pid, static_cast<unsigned long long>(endUs), sm, mem});
    }
  }
}

// Common checks; false with *code when the call must fail before listing.
bool enterUtil(const char* call, simNvmlDevice_t device, Model** model, size_t* index, simNvmlReturn* code) {
  SimState& s = state();
  Model* m = s.model.get();
  if (s.initCount.load() <= 0 || m == nullptr) {
    *code = 1;
    return false;
  }
  if (s.isMigHandle(device)) {
    MigTarget t;
    if (!enterMig(call, device, t, code)) return false;
    *code = SIM_NVML_ERROR_NOT_SUPPORTED;
    return false;
  }
  if (!s.validDevice(device)) {
    *code = SIM_NVML_ERROR_INVALID_ARGUMENT;
    return false;
  }
  const size_t d = s.deviceIndex(device);
  if (!runFaults(call, static_cast<int>(d), m, code)) return false;
  if (m->migOn(d)) {
    *code = SIM_NVML_ERROR_NOT_SUPPORTED;
    return false;
  }
  *model = m;
  *index = d;
  return true;
}

}  // namespace
}  // namespace gtsim

SIM_EXPORT simNvmlReturn nvmlDeviceGetProcessUtilization(simNvmlDevice_t device, simNvmlProcessUtilizationSample* utilization,
                                                         unsigned int* processSamplesCount,
                                                         unsigned long long lastSeenTimeStamp) {
  gtsim::CallGuard inFlight;
  gtsim::Model* m = nullptr;
  size_t d = 0;
  simNvmlReturn code = 0;
  if (!gtsim::enterUtil("nvmlDeviceGetProcessUtilization", device, &m, &d, &code)) return code;
  if (processSamplesCount == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  thread_local std::vector<gtsim::UtilEntry> entries;
  gtsim::utilEntries(*m, d, lastSeenTimeStamp, entries);
  if (entries.empty()) return SIM_NVML_ERROR_NOT_FOUND;
  const unsigned int n = static_cast<unsigned int>(entries.size());
  if (utilization == nullptr || *processSamplesCount < n) {
    *processSamplesCount = n;
    return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (unsigned int i = 0; i < n; ++i) {
    std::memset(&utilization[i], 0, sizeof utilization[i]);
    utilization[i].pid = entries[i].pid;
    utilization[i].timeStamp = entries[i].timeStamp;
    utilization[i].smUtil = entries[i].sm;
    utilization[i].memUtil = entries[i].mem;
  }
  *processSamplesCount = n;
  return SIM_NVML_SUCCESS;
}

#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simNvmlReturn nvmlDeviceGetProcessesUtilizationInfo(simNvmlDevice_t device, simNvmlProcessesUtilizationInfoV1* info) {
  gtsim::CallGuard inFlight;
  gtsim::Model* m = nullptr;
  size_t d = 0;
  simNvmlReturn code = 0;
  if (!gtsim::enterUtil("nvmlDeviceGetProcessesUtilizationInfo", device, &m, &d, &code)) return code;
  if (info == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (info->version != kSimProcessesUtilizationInfoV1Version) return SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  thread_local std::vector<gtsim::UtilEntry> entries;
  gtsim::utilEntries(*m, d, info->lastSeenTimeStamp, entries);
  if (entries.empty()) return SIM_NVML_ERROR_NOT_FOUND;
  const unsigned int n = static_cast<unsigned int>(entries.size());
  if (info->procUtilArray == nullptr || info->processSamplesCount < n) {
    info->processSamplesCount = n;
    return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (unsigned int i = 0; i < n; ++i) {
    simNvmlProcessUtilizationInfoV1& e = info->procUtilArray[i];
    std::memset(&e, 0, sizeof e);
    e.pid = entries[i].pid;
    e.timeStamp = entries[i].timeStamp;
    e.smUtil = entries[i].sm;
    e.memUtil = entries[i].mem;
  }
  info->processSamplesCount = n;
  return SIM_NVML_SUCCESS;
}
#endif
