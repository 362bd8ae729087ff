// The simulator's NVML: the same C entry points a driver's libnvidia-ml.so.1 exports, answering
// from the scenario model. Built twice: the current driver generation, and GTSIM_LEGACY_DRIVER,
// an old driver that lacks the newer symbols (so callers' fallbacks are exercised for real).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "mig.h"
#include "model.h"
#include "nvml_types.h"
#include "sim_state.h"

#define SIM_EXPORT extern "C" __attribute__((visibility("default")))

using gtsim::FaultAction;
using gtsim::Model;

namespace {

// Runs the fault schedule for one entry point. Returns false with *code set when the call must
// fail; sleeps (outside every lock) when a hang or slowness is scheduled.
bool enter(const char* call, simNvmlDevice_t device, Model** model, size_t* index, simNvmlReturn* code) {
  gtsim::SimState& s = gtsim::state();
  Model* m = s.model.get();
  if (s.initCount.load() <= 0 || m == nullptr) {
    *code = SIM_NVML_ERROR_UNINITIALIZED;
    return false;
  }
  int d = -1;
  if (device != nullptr || index != nullptr) {
    if (!s.validDevice(device)) {
      *code = SIM_NVML_ERROR_INVALID_ARGUMENT;
      return false;
    }
    d = static_cast<int>(s.deviceIndex(device));
  }
  if (!gtsim::runFaults(call, d, m, code)) return false;
  *model = m;
  if (index != nullptr) *index = static_cast<size_t>(d);
  return true;
}

bool linkListed(const std::vector<int>& links, unsigned int link) {
  return std::find(links.begin(), links.end(), static_cast<int>(link)) != links.end();
}

// Writes `value` into a field value in the type the driver answers with. Types this simulator
// does not know (a future NVML's) get a bit pattern no reader can make sense of.
void encodeValue(simNvmlFieldValue& v, int type, double value) {
  v.valueType = type;
  std::memset(&v.value, 0, sizeof v.value);
  switch (type) {
    case 0: v.value.dVal = value; break;
    case 1: v.value.uiVal = static_cast<unsigned int>(value); break;
    case 2: v.value.ulVal = static_cast<unsigned long>(value); break;
    case 3: v.value.ullVal = static_cast<unsigned long long>(value); break;
    case 4: v.value.sllVal = static_cast<long long>(value); break;
    case 5: v.value.siVal = static_cast<int>(value); break;
    case 6: v.value.usVal = static_cast<unsigned short>(value); break;
    default: v.value.ullVal = 0xdeadbeefcafef00dULL; break;
  }
}

// The value a field answered, as a number (the inverse of encodeValue for the known types).
double decodeValue(const simNvmlFieldValue& v) {
  switch (v.valueType) {
    case 0: return v.value.dVal;
    case 1: return v.value.uiVal;
    case 2: return static_cast<double>(v.value.ulVal);
    case 3: return static_cast<double>(v.value.ullVal);
    case 4: return static_cast<double>(v.value.sllVal);
    case 5: return v.value.siVal;
    case 6: return v.value.usVal;
    default: return 0;
  }
}

void copyString(const std::string& s, char* out, unsigned int length) {
  if (length == 0) return;
  const size_t n = std::min<size_t>(s.size(), length - 1);
  std::memcpy(out, s.data(), n);
  out[n] = '\0';
}

#define SIM_DEVICE_ENTER(name)                                     \
  gtsim::CallGuard inFlight_;                                      \
  Model* m = nullptr;                                              \
  size_t d = 0;                                                    \
  {                                                                \
    simNvmlReturn early = 0;                                       \
    if (!enter(name, device, &m, &d, &early)) return early;        \
  }                                                                \
  const gtsim::DeviceSpec& spec = m->spec(d);                      \
  (void)spec;                                                      \
  const int64_t k = m->currentTick();                              \
  (void)k

#define SIM_SYSTEM_ENTER(name)                                     \
  gtsim::CallGuard inFlight_;                                      \
  Model* m = nullptr;                                              \
  {                                                                \
    simNvmlReturn early = 0;                                       \
    if (!enter(name, nullptr, &m, nullptr, &early)) return early;  \
  }

}  // namespace

// ---- simulator control (not part of NVML) -----------------------------------------------------

namespace gtsim {
// The fault schedule for one entry point on device d (-1: not a device call): sleeps (outside
// every lock) for a hang or slowness; false with *code set when the call must fail.
bool runFaults(const char* call, int d, Model* m, simNvmlReturn* code) {
  const FaultAction action = m->faultFor(call, d);
  if (action.sleepForever) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // a call that never returns
  }
  if (action.sleepMs > 0) std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(action.sleepMs * 1000)));
  if (action.returnCode != 0) {
    *code = action.returnCode;
    return false;
  }
  return true;
}

void contractViolation(const char* what) {
  std::fprintf(stderr, "gtsim: contract violation: %s\n", what);
  const char* strict = std::getenv("GTSIM_STRICT");
  if (strict != nullptr && std::strcmp(strict, "1") == 0) std::abort();
}
}  // namespace gtsim

// Loads a scenario (JSON text). Fails while NVML is initialised: the machine cannot change under
// a running client. Returns 0 on success, else writes a message into `error`.
SIM_EXPORT int gtsim_configure(const char* scenarioJson, char* error, unsigned int errorLength) {
  std::string message;
  const int rc = gtsim::state().configure(scenarioJson != nullptr ? scenarioJson : "", message);
  if (rc != 0 && error != nullptr) copyString(message, error, errorLength);
  return rc;
}

// ---- NVML -----------------------------------------------------------------------------------

SIM_EXPORT simNvmlReturn nvmlInit_v2() {
  gtsim::SimState& s = gtsim::state();
  if (!s.model) {
    // Any NVML client can use the simulator: point GTSIM_SCENARIO at a scenario file.
    const char* path = std::getenv("GTSIM_SCENARIO");
    if (path == nullptr) return SIM_NVML_ERROR_DRIVER_NOT_LOADED;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::string message;
    if (!in || s.configure(text.str(), message) != 0) return SIM_NVML_ERROR_DRIVER_NOT_LOADED;
  }
  const FaultAction a = s.model->faultFor("nvmlInit_v2", -1);
  if (a.returnCode != 0) return a.returnCode;
  s.initCount.fetch_add(1);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlInit() { return nvmlInit_v2(); }

SIM_EXPORT simNvmlReturn nvmlShutdown() {
  gtsim::SimState& s = gtsim::state();
  int n = s.initCount.load();
  while (n > 0 && !s.initCount.compare_exchange_weak(n, n - 1)) {
  }
  // The last shutdown tears the (real) library's state down: no other thread may be inside it.
  if (n == 1 && s.callsInFlight.load() > 0) {
    gtsim::contractViolation("nvmlShutdown() released the last NVML reference while another thread was inside an NVML call");
  }
  return n > 0 ? SIM_NVML_SUCCESS : SIM_NVML_ERROR_UNINITIALIZED;
}

SIM_EXPORT const char* nvmlErrorString(simNvmlReturn r) {
  switch (r) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 5: return "Already Initialized";
    case 6: return "Not Found";
    case 7: return "Insufficient Size";
    case 8: return "Insufficient External Power";
    case 9: return "Driver Not Loaded";
    case 10: return "Timeout";
    case 11: return "Interrupt Request Issue";
    case 12: return "NVML Shared Library Not Found";
    case 13: return "Function Not Found";
    case 14: return "Corrupted infoROM";
    case 15: return "GPU is lost";
    case 16: return "GPU requires reset";
    case 17: return "GPU access blocked by the operating system";
    case 18: return "Driver/library version mismatch";
    case 19: return "In use by another client";
    case 20: return "Insufficient Memory";
    case 21: return "No data";
    case 22: return "vGPU ECC not supported";
    case 23: return "Insufficient Resources";
    case 24: return "Invalid Frequency";
    case 25: return "Argument version mismatch";
    case 26: return "Requested functionality has been deprecated";
    case 27: return "System is not in ready state";
    default: return "Unknown Error";
  }
}

SIM_EXPORT simNvmlReturn nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  SIM_SYSTEM_ENTER("nvmlSystemGetDriverVersion");
  if (version == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (m->scenario().driverVersion.size() + 1 > length) return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  copyString(m->scenario().driverVersion, version, length);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  // Answers without initialisation, like NVIDIA's.
  Model* m = gtsim::state().model.get();
  if (version == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  const std::string v = m != nullptr ? m->scenario().nvmlVersion : "12.550.90.07";
  if (v.size() + 1 > length) return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  copyString(v, version, length);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlSystemGetCudaDriverVersion(int* cudaDriverVersion) {
  SIM_SYSTEM_ENTER("nvmlSystemGetCudaDriverVersion");
  if (cudaDriverVersion == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *cudaDriverVersion = m->scenario().cudaDriverVersion;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlSystemGetCudaDriverVersion_v2(int* cudaDriverVersion) {
  return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetCount_v2(unsigned int* count) {
  SIM_SYSTEM_ENTER("nvmlDeviceGetCount_v2");
  if (count == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *count = static_cast<unsigned int>(m->deviceCount());
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetCount(unsigned int* count) { return nvmlDeviceGetCount_v2(count); }

SIM_EXPORT simNvmlReturn nvmlDeviceGetHandleByIndex_v2(unsigned int index, simNvmlDevice_t* device) {
  SIM_SYSTEM_ENTER("nvmlDeviceGetHandleByIndex_v2");
  if (device == nullptr || index >= m->deviceCount()) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *device = gtsim::state().handle(index);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetHandleByIndex(unsigned int index, simNvmlDevice_t* device) {
  return nvmlDeviceGetHandleByIndex_v2(index, device);
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetName(simNvmlDevice_t device, char* name, unsigned int length) {
  if (gtsim::state().isMigHandle(device)) {
    gtsim::CallGuard inFlight;
    return gtsim::migGetName(device, name, length);
  }
  SIM_DEVICE_ENTER("nvmlDeviceGetName");
  if (name == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (spec.name.size() + 1 > length) return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  copyString(spec.name, name, length);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetUUID(simNvmlDevice_t device, char* uuid, unsigned int length) {
  if (gtsim::state().isMigHandle(device)) {
    gtsim::CallGuard inFlight;
    return gtsim::migGetUuid(device, uuid, length);
  }
  SIM_DEVICE_ENTER("nvmlDeviceGetUUID");
  const std::string u = m->uuid(d);
  if (uuid == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (u.size() + 1 > length) return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  copyString(u, uuid, length);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetPciInfo_v3(simNvmlDevice_t device, simNvmlPciInfo* pci) {
  SIM_DEVICE_ENTER("nvmlDeviceGetPciInfo_v3");
  if (pci == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  std::memset(pci, 0, sizeof *pci);
  const std::string busId = m->pciBusId(d);
  copyString(busId, pci->busId, sizeof pci->busId);
  copyString(busId.substr(4), pci->busIdLegacy, sizeof pci->busIdLegacy);
  pci->domain = static_cast<unsigned int>(d / 16);
  pci->bus = static_cast<unsigned int>(std::strtoul(busId.substr(9, 2).c_str(), nullptr, 16));
  pci->pciDeviceId = spec.pciDeviceId;
  pci->pciSubSystemId = 0x16c110de;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetPciInfo_v2(simNvmlDevice_t device, simNvmlPciInfo* pci) {
  return nvmlDeviceGetPciInfo_v3(device, pci);
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetCudaComputeCapability(simNvmlDevice_t device, int* major, int* minor) {
  SIM_DEVICE_ENTER("nvmlDeviceGetCudaComputeCapability");
  if (major == nullptr || minor == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *major = spec.ccMajor;
  *minor = spec.ccMinor;
  return SIM_NVML_SUCCESS;
}

#ifndef GTSIM_LEGACY_DRIVER
// NVML 12.6+: whether system memory is addressable from the GPU, by HMM (software mirroring, also
// on discrete cards) or ATS (one set of page tables: Grace Hopper, GB10).
SIM_EXPORT simNvmlReturn nvmlDeviceGetAddressingMode(simNvmlDevice_t device, simNvmlAddressingMode* mode) {
  SIM_DEVICE_ENTER("nvmlDeviceGetAddressingMode");
  if (mode == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (mode->version != kSimAddressingModeV1Version) return SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  mode->value = spec.addressingMode;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetMigMode(simNvmlDevice_t device, unsigned int* currentMode, unsigned int* pendingMode) {
  SIM_DEVICE_ENTER("nvmlDeviceGetMigMode");
  if (currentMode == nullptr || pendingMode == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.migCapable) return SIM_NVML_ERROR_NOT_SUPPORTED;
  *currentMode = *pendingMode = m->migOn(d) ? 1U : 0U;
  return SIM_NVML_SUCCESS;
}
#endif

SIM_EXPORT simNvmlReturn nvmlDeviceGetClockInfo(simNvmlDevice_t device, int type, unsigned int* clock) {
  SIM_DEVICE_ENTER("nvmlDeviceGetClockInfo");
  if (clock == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  switch (type) {
    case 0:  // graphics follows SM
    case 1: *clock = m->smClockMHz(d, k); return SIM_NVML_SUCCESS;
    case 2: *clock = m->memoryClockMHz(d, k); return SIM_NVML_SUCCESS;
    default: return SIM_NVML_ERROR_INVALID_ARGUMENT;
  }
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetMaxClockInfo(simNvmlDevice_t device, int type, unsigned int* clock) {
  SIM_DEVICE_ENTER("nvmlDeviceGetMaxClockInfo");
  if (clock == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  switch (type) {
    case 0: *clock = static_cast<unsigned int>(std::lround(spec.graphicsMaxMHz)); return SIM_NVML_SUCCESS;
    case 1: *clock = static_cast<unsigned int>(std::lround(spec.smMaxMHz)); return SIM_NVML_SUCCESS;
    case 2: *clock = static_cast<unsigned int>(std::lround(spec.memoryMaxMHz)); return SIM_NVML_SUCCESS;
    default: return SIM_NVML_ERROR_INVALID_ARGUMENT;
  }
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetCurrentClocksThrottleReasons(simNvmlDevice_t device, unsigned long long* reasons) {
  SIM_DEVICE_ENTER("nvmlDeviceGetCurrentClocksThrottleReasons");
  if (reasons == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *reasons = m->clockEventReasons(d, k);
  return SIM_NVML_SUCCESS;
}

#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simNvmlReturn nvmlDeviceGetCurrentClocksEventReasons(simNvmlDevice_t device, unsigned long long* reasons) {
  SIM_DEVICE_ENTER("nvmlDeviceGetCurrentClocksEventReasons");
  if (reasons == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *reasons = m->clockEventReasons(d, k);
  return SIM_NVML_SUCCESS;
}
#endif

SIM_EXPORT simNvmlReturn nvmlDeviceGetPowerUsage(simNvmlDevice_t device, unsigned int* milliwatts) {
  SIM_DEVICE_ENTER("nvmlDeviceGetPowerUsage");
  if (milliwatts == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *milliwatts = m->powerMilliwatts(d, k);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetEnforcedPowerLimit(simNvmlDevice_t device, unsigned int* milliwatts) {
  SIM_DEVICE_ENTER("nvmlDeviceGetEnforcedPowerLimit");
  if (milliwatts == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *milliwatts = static_cast<unsigned int>(std::lround(spec.limitWatts * 1000));
  return SIM_NVML_SUCCESS;
}

#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simNvmlReturn nvmlDeviceGetTotalEnergyConsumption(simNvmlDevice_t device, unsigned long long* millijoules) {
  SIM_DEVICE_ENTER("nvmlDeviceGetTotalEnergyConsumption");
  if (millijoules == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  std::lock_guard<std::mutex> lock(m->mutex());
  *millijoules = static_cast<unsigned long long>(m->countersAt(d, m->nowMs()).energyMj);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetTemperatureV(simNvmlDevice_t device, simNvmlTemperatureV1* temperature) {
  SIM_DEVICE_ENTER("nvmlDeviceGetTemperatureV");
  if (temperature == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (temperature->version != kSimTemperatureV1Version) return SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  if (temperature->sensorType != 0) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  temperature->temperature = m->temperatureCelsius(d, k);
  return SIM_NVML_SUCCESS;
}
#endif

SIM_EXPORT simNvmlReturn nvmlDeviceGetTemperature(simNvmlDevice_t device, int sensor, unsigned int* celsius) {
  SIM_DEVICE_ENTER("nvmlDeviceGetTemperature");
  if (celsius == nullptr || sensor != 0) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *celsius = static_cast<unsigned int>(std::max(0, m->temperatureCelsius(d, k)));
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetFanSpeed(simNvmlDevice_t device, unsigned int* percent) {
  SIM_DEVICE_ENTER("nvmlDeviceGetFanSpeed");
  if (percent == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.hasFan) return SIM_NVML_ERROR_NOT_SUPPORTED;
  *percent = m->fanPercent(d, k);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetPerformanceState(simNvmlDevice_t device, int* pstate) {
  SIM_DEVICE_ENTER("nvmlDeviceGetPerformanceState");
  if (pstate == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *pstate = m->performanceState(d, k);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetUtilizationRates(simNvmlDevice_t device, simNvmlUtilization* utilization) {
  if (gtsim::state().isMigHandle(device)) {
    gtsim::CallGuard inFlight;
    gtsim::MigTarget t;
    simNvmlReturn code = 0;
    if (!gtsim::enterMig("nvmlDeviceGetUtilizationRates", device, t, &code)) return code;
    return SIM_NVML_ERROR_NOT_SUPPORTED;  // no utilisation rates per MIG device either
  }
  SIM_DEVICE_ENTER("nvmlDeviceGetUtilizationRates");
  if (utilization == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  // nvml.h: "On MIG-enabled GPUs, querying device utilization rates is not currently supported."
  if (m->migOn(d)) return SIM_NVML_ERROR_NOT_SUPPORTED;
  utilization->gpu = m->gpuUtilPercent(d, k);
  utilization->memory = m->memoryUtilPercent(d, k);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetEncoderUtilization(simNvmlDevice_t device, unsigned int* utilization,
                                                         unsigned int* samplingPeriodUs) {
  SIM_DEVICE_ENTER("nvmlDeviceGetEncoderUtilization");
  if (utilization == nullptr || samplingPeriodUs == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.hasEncoder) return SIM_NVML_ERROR_NOT_SUPPORTED;
  *utilization = 0;
  *samplingPeriodUs = 167000;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetDecoderUtilization(simNvmlDevice_t device, unsigned int* utilization,
                                                         unsigned int* samplingPeriodUs) {
  SIM_DEVICE_ENTER("nvmlDeviceGetDecoderUtilization");
  if (utilization == nullptr || samplingPeriodUs == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.hasDecoder) return SIM_NVML_ERROR_NOT_SUPPORTED;
  *utilization = 0;
  *samplingPeriodUs = 167000;
  return SIM_NVML_SUCCESS;
}

namespace {

// The memory figures a device reports, in the shape its scenario asks for.
simNvmlReturn memoryFigures(Model* m, size_t d, double& total, double& reserved, double& used) {
  const gtsim::DeviceSpec& spec = m->spec(d);
  if (spec.memoryInfo == gtsim::DeviceSpec::MemoryInfo::NotSupported) return SIM_NVML_ERROR_NOT_SUPPORTED;
  // nvml.h: in MIG mode the device handle gives aggregate figures "only if the caller has
  // appropriate privileges".
  if (m->migOn(d) && !spec.migPrivileged) return SIM_NVML_ERROR_NO_PERMISSION;
  total = spec.memoryTotalBytes;
  reserved = spec.memoryReservedBytes;
  used = m->allocatedBytes(d);
  if (m->migOn(d)) {
    // Privileged aggregate in MIG mode: what the instances use.
    double instances = 0;
    for (const gtsim::MigInstanceSpec& inst : m->migLayout(d)) {
      const double load = m->migLoad(d, inst, m->currentTick());
      double u = inst.overheadBytes;
      for (const gtsim::ProcessSpec& p : inst.processes) u += std::max(0.0, gtsim::Model::processBytes(p, load));
      instances += std::min(u, inst.memoryMiB * 1048576.0);
    }
    used = std::min(instances, total - reserved);
  }
  return SIM_NVML_SUCCESS;
}

}  // namespace

#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simNvmlReturn nvmlDeviceGetMemoryInfo_v2(simNvmlDevice_t device, simNvmlMemoryV2* memory) {
  if (gtsim::state().isMigHandle(device)) {
    gtsim::CallGuard inFlight;
    double total = 0, used = 0;
    const simNvmlReturn r = gtsim::migMemoryFigures("nvmlDeviceGetMemoryInfo_v2", device, total, used);
    if (r != SIM_NVML_SUCCESS) return r;
    if (memory == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != kSimMemoryV2Version) return SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory->total = static_cast<unsigned long long>(total);
    memory->reserved = 0;
    memory->used = static_cast<unsigned long long>(used);
    memory->free = memory->total - memory->used;
    return SIM_NVML_SUCCESS;
  }
  SIM_DEVICE_ENTER("nvmlDeviceGetMemoryInfo_v2");
  if (memory == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (memory->version != kSimMemoryV2Version) return SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  double total = 0, reserved = 0, used = 0;
  const simNvmlReturn r = memoryFigures(m, d, total, reserved, used);
  if (r != SIM_NVML_SUCCESS) return r;
  memory->total = static_cast<unsigned long long>(total);
  memory->reserved = static_cast<unsigned long long>(reserved);
  memory->used = static_cast<unsigned long long>(used);
  memory->free = memory->total - memory->reserved - memory->used;
  return SIM_NVML_SUCCESS;
}
#endif

SIM_EXPORT simNvmlReturn nvmlDeviceGetMemoryInfo(simNvmlDevice_t device, simNvmlMemory* memory) {
  if (gtsim::state().isMigHandle(device)) {
    gtsim::CallGuard inFlight;
    double total = 0, used = 0;
    const simNvmlReturn r = gtsim::migMemoryFigures("nvmlDeviceGetMemoryInfo", device, total, used);
    if (r != SIM_NVML_SUCCESS) return r;
    if (memory == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
    memory->total = static_cast<unsigned long long>(total);
    memory->used = static_cast<unsigned long long>(used);
    memory->free = memory->total - memory->used;
    return SIM_NVML_SUCCESS;
  }
  SIM_DEVICE_ENTER("nvmlDeviceGetMemoryInfo");
  if (memory == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  double total = 0, reserved = 0, used = 0;
  const simNvmlReturn r = memoryFigures(m, d, total, reserved, used);
  if (r != SIM_NVML_SUCCESS) return r;
  // v1 counts the driver's reservation as used.
  memory->total = static_cast<unsigned long long>(total);
  memory->used = static_cast<unsigned long long>(reserved + used);
  memory->free = memory->total - memory->used;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetPcieThroughput(simNvmlDevice_t device, int counter, unsigned int* kilobytesPerSecond) {
  SIM_DEVICE_ENTER("nvmlDeviceGetPcieThroughput");
  if (kilobytesPerSecond == nullptr || (counter != 0 && counter != 1)) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.hasPcie) return SIM_NVML_ERROR_NOT_SUPPORTED;
  // The real call samples for ~20 ms inside the driver; so does this one.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double l = m->load(d, k);
  const double bytesPerSecond = spec.pcieMaxBytesPerSecond * (counter == 0 ? 0.02 + 0.25 * l : 0.01 + 0.20 * l);
  *kilobytesPerSecond = static_cast<unsigned int>(std::lround(bytesPerSecond / 1024));
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetCurrPcieLinkGeneration(simNvmlDevice_t device, unsigned int* generation) {
  SIM_DEVICE_ENTER("nvmlDeviceGetCurrPcieLinkGeneration");
  if (generation == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.hasPcie) return SIM_NVML_ERROR_NOT_SUPPORTED;
  *generation = spec.pcieGeneration;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetCurrPcieLinkWidth(simNvmlDevice_t device, unsigned int* width) {
  SIM_DEVICE_ENTER("nvmlDeviceGetCurrPcieLinkWidth");
  if (width == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.hasPcie) return SIM_NVML_ERROR_NOT_SUPPORTED;
  *width = spec.pcieWidth;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetTotalEccErrors(simNvmlDevice_t device, int errorType, int counterType,
                                                     unsigned long long* count) {
  SIM_DEVICE_ENTER("nvmlDeviceGetTotalEccErrors");
  if (count == nullptr || errorType < 0 || errorType > 1 || counterType < 0 || counterType > 1) {
    return SIM_NVML_ERROR_INVALID_ARGUMENT;
  }
  if (!spec.hasEcc) return SIM_NVML_ERROR_NOT_SUPPORTED;
  const double v = counterType == 0 ? (errorType == 0 ? spec.eccVolatileCorrected : spec.eccVolatileUncorrected)
                                    : (errorType == 0 ? spec.eccAggregateCorrected : spec.eccAggregateUncorrected);
  *count = static_cast<unsigned long long>(v);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetNvLinkState(simNvmlDevice_t device, unsigned int link, int* isActive) {
  SIM_DEVICE_ENTER("nvmlDeviceGetNvLinkState");
  if (isActive == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (spec.nvlinks == 0) return SIM_NVML_ERROR_NOT_SUPPORTED;
  if (link >= spec.nvlinks) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *isActive = linkListed(spec.nvlinkDown, link) ? 0 : 1;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetFieldValues(simNvmlDevice_t device, int valuesCount, simNvmlFieldValue* values) {
  SIM_DEVICE_ENTER("nvmlDeviceGetFieldValues");
  if (values == nullptr || valuesCount < 0) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  std::lock_guard<std::mutex> lock(m->mutex());
  const gtsim::Counters c = m->countersAt(d, m->nowMs());
  const long long now = gtsim::wallNowUs();
  for (int i = 0; i < valuesCount; ++i) {
    simNvmlFieldValue& v = values[i];
    v.timestamp = now;
    v.latencyUsec = 3;
    v.nvmlReturn = SIM_NVML_SUCCESS;
    v.valueType = 3;  // unsigned long long unless said otherwise
    switch (v.fieldId) {
      case 82:  // memory temperature
        if (!spec.hasMemoryTemperature) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
          break;
        }
        v.valueType = 1;
        v.value.uiVal = static_cast<unsigned int>(std::max(0.0, m->temperatureCelsius(d, k) + spec.memoryTemperatureOffset));
        break;
      case 83:  // total energy, mJ
        v.value.ullVal = static_cast<unsigned long long>(c.energyMj);
        break;
      case 91:  // NVLink count
        v.valueType = 1;
        v.value.uiVal = spec.nvlinks;
        break;
      case 94:  // PCIe replay counter
        v.valueType = 1;
        v.value.uiVal = 0;
        break;
      case 92:  // pages pending retirement (SBE / DBE): Volta-era ECC only; Ampere+ remaps rows
      case 93:
        if (!spec.hasEcc || spec.ccMajor >= 8) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
        } else {
          v.valueType = 1;
          v.value.uiVal = 0;
        }
        break;
      case 142:  // remapped rows (correctable / uncorrectable), pending, failure: Ampere+ with ECC
      case 143:
      case 144:
      case 145:
        if (!spec.hasEcc || spec.ccMajor < 8) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
        } else {
          v.valueType = 1;
          v.value.uiVal = v.fieldId == 142   ? static_cast<unsigned int>(spec.remappedCorrectable)
                          : v.fieldId == 143 ? static_cast<unsigned int>(spec.remappedUncorrectable)
                          : v.fieldId == 144 ? (spec.remapPending ? 1U : 0U)
                                             : (spec.remapFailure ? 1U : 0U);
        }
        break;
      case 138:  // NVLink data TX, KiB, per link
      case 139:
        if (spec.nvlinks == 0) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
        } else if (v.scopeId >= spec.nvlinks) {
          v.nvmlReturn = SIM_NVML_ERROR_INVALID_ARGUMENT;
        } else if (linkListed(spec.nvlinkDown, v.scopeId)) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;  // an inactive link has no throughput counters
        } else if (linkListed(spec.nvlinkFailing, v.scopeId)) {
          v.nvmlReturn = SIM_NVML_ERROR_UNKNOWN;
        } else {
          v.value.ullVal = static_cast<unsigned long long>(v.fieldId == 138 ? c.nvlinkTxKiB : c.nvlinkRxKiB);
        }
        break;
      case 165:  // NVLink state, per link
        if (spec.nvlinks == 0 || v.scopeId >= spec.nvlinks || spec.nvlinkStateField == gtsim::DeviceSpec::LinkStateField::NotSupported) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
        } else {
          // "zero": a stand-in's 0 for every link, up or down.
          const bool down = spec.nvlinkStateField == gtsim::DeviceSpec::LinkStateField::Zero || linkListed(spec.nvlinkDown, v.scopeId);
          v.valueType = 1;
          v.value.uiVal = down ? 0 : 1;
        }
        break;
#ifndef GTSIM_LEGACY_DRIVER
      case 196:  // NVML_FI_DEV_TEMPERATURE_GPU_MAX_TLIMIT: a fixed threshold in Celsius (Ada and later)
        if (spec.ccMajor * 10 + spec.ccMinor < 89) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
        } else {
          v.valueType = 5;
          v.value.siVal = static_cast<int>(spec.maxCelsius) + 7;
        }
        break;
      case 197:  // NVML_FI_DEV_PCIE_COUNT_TX_BYTES (NVML 12.5+): bytes, cumulative, "can be wrapped"
      case 198:  // NVML_FI_DEV_PCIE_COUNT_RX_BYTES
        if (!spec.hasPcie || !spec.pcieCounters) {
          v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
        } else {
          // Counted in whole bytes from the scenario's start value, wrapping at the counter's width.
          const unsigned long long start = static_cast<unsigned long long>(spec.pcieCounterStartBytes);
          const unsigned long long bytes =
              start + static_cast<unsigned long long>(v.fieldId == 197 ? c.pcieTxBytes : c.pcieRxBytes);
          if (spec.pcieCounterBits == 32) {
            v.valueType = 1;
            v.value.uiVal = static_cast<unsigned int>(bytes & 0xffffffffULL);
          } else {
            v.value.ullVal = bytes;
          }
        }
        break;
#endif
      default:
        v.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
        break;
    }
    if (v.nvmlReturn == SIM_NVML_SUCCESS) {
      for (const auto& [fieldId, type] : spec.fieldValueTypes) {
        if (fieldId == v.fieldId) encodeValue(v, type, decodeValue(v));
      }
    }
  }
  return SIM_NVML_SUCCESS;
}

namespace {

// The processes as a list call reports them: a MIG device handle lists its instance's; a GPU in
// MIG mode (privileged) lists every instance's, with their ids; otherwise the GPU's own.
template <typename Info>
simNvmlReturn writeProcesses(const std::vector<gtsim::SimProcess>& procs, unsigned int* count, Info* infos,
                             bool withInstances) {
  if (count == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  const unsigned int n = static_cast<unsigned int>(procs.size());
  if (*count < n) {
    *count = n;
    return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  }
  if (n > 0 && infos == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  for (unsigned int i = 0; i < n; ++i) {
    std::memset(&infos[i], 0, sizeof(Info));
    infos[i].pid = procs[i].pid;
    infos[i].usedGpuMemory = procs[i].usedBytes < 0 ? ~0ULL : static_cast<unsigned long long>(procs[i].usedBytes);
    if constexpr (sizeof(Info) == sizeof(simNvmlProcessInfoV2)) {
      if (withInstances) {
        infos[i].gpuInstanceId = procs[i].gpuInstanceId;
        infos[i].computeInstanceId = procs[i].computeInstanceId;
      }
    }
  }
  *count = n;
  return SIM_NVML_SUCCESS;
}

template <typename Info>
simNvmlReturn listProcesses(Model* m, size_t d, unsigned int* count, Info* infos, bool withInstances) {
  if (count == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (m->migOn(d) && !m->spec(d).migPrivileged) return SIM_NVML_ERROR_NO_PERMISSION;  // as memory info
  thread_local std::vector<gtsim::SimProcess> procs;
  if (m->migOn(d)) {
    gtsim::migProcesses(*m, d, nullptr, m->currentTick(), procs);
  } else {
    procs.clear();
    const double load = m->load(d, m->currentTick());
    for (const gtsim::ProcessSpec& p : m->spec(d).processes) {
      procs.push_back({p.pid, gtsim::Model::processBytes(p, load), 0xFFFFFFFFU, 0xFFFFFFFFU});
    }
  }
  return writeProcesses(procs, count, infos, withInstances);
}

template <typename Info>
simNvmlReturn listMigProcesses(const char* call, simNvmlDevice_t device, unsigned int* count, Info* infos,
                               bool withInstances) {
  gtsim::CallGuard inFlight;
  gtsim::MigTarget t;
  simNvmlReturn code = 0;
  if (!gtsim::enterMig(call, device, t, &code)) return code;
  thread_local std::vector<gtsim::SimProcess> procs;
  gtsim::migProcesses(*t.model, t.parent, t.instance, t.model->currentTick(), procs);
  return writeProcesses(procs, count, infos, withInstances);
}

}  // namespace

SIM_EXPORT simNvmlReturn nvmlDeviceGetComputeRunningProcesses(simNvmlDevice_t device, unsigned int* count,
                                                              simNvmlProcessInfoV1* infos) {
  if (gtsim::state().isMigHandle(device)) {
    return listMigProcesses("nvmlDeviceGetComputeRunningProcesses", device, count, infos, false);
  }
  SIM_DEVICE_ENTER("nvmlDeviceGetComputeRunningProcesses");
  return listProcesses(m, d, count, infos, false);
}

#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simNvmlReturn nvmlDeviceGetComputeRunningProcesses_v3(simNvmlDevice_t device, unsigned int* count,
                                                                 simNvmlProcessInfoV2* infos) {
  if (gtsim::state().isMigHandle(device)) {
    return listMigProcesses("nvmlDeviceGetComputeRunningProcesses_v3", device, count, infos, true);
  }
  SIM_DEVICE_ENTER("nvmlDeviceGetComputeRunningProcesses_v3");
  return listProcesses(m, d, count, infos, true);
}
#endif

// ---- events (XID) -----------------------------------------------------------------------------

struct simNvmlEventSet {
  std::mutex mutex;
  std::vector<size_t> devices;         // registered for XID events
  std::vector<double> delivered;       // per scenario XID spec: events handed out so far
  std::vector<double> armedAtMs;       // per XID spec with whenFileExists: when the file was first seen (-1: not yet)
  double lostSeenAtMs = -1;            // when a wait first found a registered GPU lost
};

namespace {

constexpr unsigned long long kXidEvent = 0x8;

bool validSet(simNvmlEventSet_t set) {
  gtsim::SimState& s = gtsim::state();
  std::lock_guard<std::mutex> lock(s.eventSetsMutex);
  return set != nullptr && s.eventSets.count(set) > 0;
}

}  // namespace

SIM_EXPORT simNvmlReturn nvmlEventSetCreate(simNvmlEventSet_t* set) {
  SIM_SYSTEM_ENTER("nvmlEventSetCreate");
  if (set == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  auto* created = new simNvmlEventSet();
  created->delivered.assign(m->scenario().xids.size(), 0);
  created->armedAtMs.assign(m->scenario().xids.size(), -1);
  gtsim::SimState& s = gtsim::state();
  std::lock_guard<std::mutex> lock(s.eventSetsMutex);
  s.eventSets.insert(created);
  *set = created;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlEventSetFree(simNvmlEventSet_t set) {
  gtsim::SimState& s = gtsim::state();
  std::lock_guard<std::mutex> lock(s.eventSetsMutex);
  if (set == nullptr || s.eventSets.erase(set) == 0) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  delete set;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetSupportedEventTypes(simNvmlDevice_t device, unsigned long long* eventTypes) {
  SIM_DEVICE_ENTER("nvmlDeviceGetSupportedEventTypes");
  if (eventTypes == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *eventTypes = kXidEvent | (spec.hasEcc ? 0x3ULL : 0ULL);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceRegisterEvents(simNvmlDevice_t device, unsigned long long eventTypes,
                                                  simNvmlEventSet_t set) {
  SIM_DEVICE_ENTER("nvmlDeviceRegisterEvents");
  if (!validSet(set)) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if ((eventTypes & ~(kXidEvent | 0x3ULL)) != 0) return SIM_NVML_ERROR_NOT_SUPPORTED;
  std::lock_guard<std::mutex> lock(set->mutex);
  if (eventTypes & kXidEvent) set->devices.push_back(d);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlEventSetWait_v2(simNvmlEventSet_t set, simNvmlEventData* data, unsigned int timeoutMs) {
  SIM_SYSTEM_ENTER("nvmlEventSetWait_v2");
  if (data == nullptr || !validSet(set)) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  const auto& xids = m->scenario().xids;
  const double deadline = m->nowMs() + timeoutMs;
  for (;;) {
    const double now = m->nowMs();
    double nextDue = -1;
    {
      std::lock_guard<std::mutex> lock(set->mutex);
      // nvml.h: the wait answers NVML_ERROR_GPU_IS_LOST "if a GPU has fallen off the bus": one lost
      // GPU in the set fails every wait on it, whatever the other GPUs have to report. Events the
      // driver had queued before the loss (the XID 79 announcing it) are still handed out first.
      if (set->lostSeenAtMs < 0) {
        for (size_t dev : set->devices) {
          if (m->deviceLost(static_cast<int>(dev))) set->lostSeenAtMs = now;
        }
      }
      for (size_t i = 0; i < xids.size(); ++i) {
        const gtsim::XidSpec& x = xids[i];
        if (!x.whenFileExists.empty() && set->armedAtMs[i] < 0 && ::access(x.whenFileExists.c_str(), F_OK) == 0) {
          set->armedAtMs[i] = now;
        }
      }
      const double deliverUpTo = set->lostSeenAtMs >= 0 ? set->lostSeenAtMs : now;
      for (size_t i = 0; i < xids.size(); ++i) {
        const gtsim::XidSpec& x = xids[i];
        if (std::find(set->devices.begin(), set->devices.end(), static_cast<size_t>(x.device)) == set->devices.end()) continue;
        if (set->delivered[i] >= x.count) continue;
        if (!x.whenFileExists.empty() && set->armedAtMs[i] < 0) continue;  // not triggered yet
        const double start = x.whenFileExists.empty() ? x.atMs : set->armedAtMs[i] + x.atMs;
        const double due = start + set->delivered[i] * 1000.0 / x.ratePerSecond;
        if (due <= deliverUpTo) {
          set->delivered[i] += 1;
          std::memset(data, 0, sizeof *data);
          data->device = gtsim::state().handle(static_cast<size_t>(x.device));
          data->eventType = kXidEvent;
          data->eventData = x.code;
          data->gpuInstanceId = 0xFFFFFFFF;
          data->computeInstanceId = 0xFFFFFFFF;
          return SIM_NVML_SUCCESS;
        }
        if (nextDue < 0 || due < nextDue) nextDue = due;
      }
      if (set->lostSeenAtMs >= 0) return SIM_NVML_ERROR_GPU_IS_LOST;
    }
    if (now >= deadline) return SIM_NVML_ERROR_TIMEOUT;
    const double until = nextDue < 0 ? deadline : std::min(deadline, nextDue);
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(std::max(0.05, until - now) * 1000)));
  }
}

SIM_EXPORT simNvmlReturn nvmlEventSetWait(simNvmlEventSet_t set, simNvmlEventData* data, unsigned int timeoutMs) {
  return nvmlEventSetWait_v2(set, data, timeoutMs);
}

// ---- GPM (Hopper and later) -------------------------------------------------------------------
#ifndef GTSIM_LEGACY_DRIVER

// What a real GPM sample holds is opaque; the simulated one holds the device's own counters and
// clock (which restart when the GPU comes back from a reset) and when it was read.
struct simNvmlGpmSample {
  bool filled = false;
  size_t device = 0;
  int gpuInstanceId = -1;  // nvmlGpmMigSampleGet: the MIG GPU instance it was read for
  double atMs = 0;       // simulator time of the read
  double restartMs = 0;  // the device life it was read in (see Model::deviceCounters)
  double deviceMs = 0;   // the device's own clock at the read
  int64_t tick = 0;
  gtsim::Counters counters;  // since the device last (re)started
};

namespace {

bool validSample(simNvmlGpmSample_t s) {
  gtsim::SimState& st = gtsim::state();
  std::lock_guard<std::mutex> lock(st.eventSetsMutex);
  return s != nullptr && st.gpmSamples.count(s) > 0;
}

}  // namespace

SIM_EXPORT simNvmlReturn nvmlGpmQueryDeviceSupport(simNvmlDevice_t device, simNvmlGpmSupport* support) {
  SIM_DEVICE_ENTER("nvmlGpmQueryDeviceSupport");
  if (support == nullptr || support->version != 1) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  support->isSupportedDevice = m->gpmSupported(d) ? 1 : 0;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlGpmSampleAlloc(simNvmlGpmSample_t* sample) {
  if (sample == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  gtsim::SimState& st = gtsim::state();
  std::lock_guard<std::mutex> lock(st.eventSetsMutex);
  *sample = new simNvmlGpmSample();
  st.gpmSamples.insert(*sample);
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlGpmSampleFree(simNvmlGpmSample_t sample) {
  gtsim::SimState& st = gtsim::state();
  std::lock_guard<std::mutex> lock(st.eventSetsMutex);
  if (sample == nullptr || st.gpmSamples.erase(sample) == 0) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  delete sample;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlGpmSampleGet(simNvmlDevice_t device, simNvmlGpmSample_t sample) {
  SIM_DEVICE_ENTER("nvmlGpmSampleGet");
  if (!validSample(sample)) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!m->gpmSupported(d)) return SIM_NVML_ERROR_NOT_SUPPORTED;
  std::lock_guard<std::mutex> lock(m->mutex());
  sample->filled = true;
  sample->device = d;
  sample->gpuInstanceId = -1;
  sample->atMs = m->nowMs();
  sample->tick = m->tickAt(sample->atMs);
  sample->counters = m->deviceCounters(d, sample->atMs, &sample->restartMs, &sample->deviceMs);
  return SIM_NVML_SUCCESS;
}

// A GPU instance's GPM sample (Hopper and later, MIG mode).
SIM_EXPORT simNvmlReturn nvmlGpmMigSampleGet(simNvmlDevice_t device, unsigned int gpuInstanceId, simNvmlGpmSample_t sample) {
  SIM_DEVICE_ENTER("nvmlGpmMigSampleGet");
  if (!validSample(sample)) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!m->gpmSupported(d) || !m->migOn(d)) return SIM_NVML_ERROR_NOT_SUPPORTED;
  if (gtsim::migInstanceByGpuInstanceId(*m, d, gpuInstanceId) == nullptr) return SIM_NVML_ERROR_NOT_FOUND;
  std::lock_guard<std::mutex> lock(m->mutex());
  sample->filled = true;
  sample->device = d;
  sample->gpuInstanceId = static_cast<int>(gpuInstanceId);
  sample->atMs = m->nowMs();
  sample->tick = m->tickAt(sample->atMs);
  return SIM_NVML_SUCCESS;
}

namespace {

// Metrics between two samples of one GPU instance: its activities; no PCIe or NVLink per instance.
// Samples less than 100 ms apart read the same internal refresh twice (nvml.h: "The interval
// between two nvmlGpmMigSampleGet() calls should be greater than 100ms due to the internal sample
// refresh rate"): every activity is 0 then.
simNvmlReturn migGpmMetrics(Model* m, simNvmlGpmMetricsGet* request, const simNvmlGpmSample& a, const simNvmlGpmSample& b) {
  const gtsim::MigInstanceSpec* inst = gtsim::migInstanceByGpuInstanceId(*m, b.device, static_cast<unsigned int>(b.gpuInstanceId));
  const bool sameRefresh = b.atMs - a.atMs < 100;
  for (unsigned int i = 0; i < request->numMetrics; ++i) {
    simNvmlGpmMetric& metric = request->metrics[i];
    metric.nvmlReturn = SIM_NVML_SUCCESS;
    metric.metricInfo = {nullptr, nullptr, nullptr};
    metric.value = 0;
    if (inst == nullptr) {
      metric.nvmlReturn = SIM_NVML_ERROR_NOT_FOUND;  // the instance was destroyed between the samples
      continue;
    }
    gtsim::Activity act;
    switch (metric.metricId) {
      case 1: act = gtsim::Activity::GrEngine; break;
      case 2: act = gtsim::Activity::SmActive; break;
      case 3: act = gtsim::Activity::SmOccupancy; break;
      case 5: act = gtsim::Activity::Tensor; break;
      case 10: act = gtsim::Activity::Dram; break;
      case 11: act = gtsim::Activity::Fp64; break;
      case 12: act = gtsim::Activity::Fp32; break;
      case 13: act = gtsim::Activity::Fp16; break;
      default: metric.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED; continue;
    }
    metric.value = sameRefresh ? 0 : 100.0 * m->migActivity(b.device, *inst, act, b.tick);
  }
  return SIM_NVML_SUCCESS;
}

}  // namespace

SIM_EXPORT simNvmlReturn nvmlGpmMetricsGet(simNvmlGpmMetricsGet* request) {
  SIM_SYSTEM_ENTER("nvmlGpmMetricsGet");
  if (request == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (request->version != 1) return SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  if (request->numMetrics > 333 || !validSample(request->sample1) || !validSample(request->sample2)) {
    return SIM_NVML_ERROR_INVALID_ARGUMENT;
  }
  const simNvmlGpmSample& a = *request->sample1;
  const simNvmlGpmSample& b = *request->sample2;
  if (!a.filled || !b.filled || a.device != b.device || b.atMs <= a.atMs) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (a.gpuInstanceId != b.gpuInstanceId) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (b.gpuInstanceId >= 0) return migGpmMetrics(m, request, a, b);
  const size_t d = b.device;
  // NVML: "The interval between two nvmlGpmSampleGet() calls should be greater than 100ms due to
  // the internal sample refresh rate" (NVIDIA/go-nvml gen/nvml/nvml.h, lines 13861-13862 and
  // 13911-13912). Two reads inside one internal refresh see the same counters: every metric comes
  // back SUCCESS and 0. The simulator applies that to every pair closer than 100 ms (the real
  // driver to those that fall inside one refresh period, most of them).
  constexpr double kGpmRefreshMs = 100;
  const bool oneRefresh = b.atMs - a.atMs < kGpmRefreshMs;
  // A pair from two lives of the device (read before and after a reset) subtracts counters and
  // clocks that restarted in between: SUCCESS with values that mean nothing (negative rates,
  // activities beyond [0, 100] %), which is what a client that keeps its old sample would publish.
  const bool sameLife = a.restartMs == b.restartMs;
  const double seconds = sameLife ? (b.atMs - a.atMs) / 1000.0 : (b.deviceMs - a.deviceMs) / 1000.0;
  const double lifeScale = sameLife ? 1.0 : (b.deviceMs - a.deviceMs) / (b.atMs - a.atMs);
  const double mib = 1048576.0;
  for (unsigned int i = 0; i < request->numMetrics; ++i) {
    simNvmlGpmMetric& metric = request->metrics[i];
    metric.nvmlReturn = SIM_NVML_SUCCESS;
    metric.metricInfo = {nullptr, nullptr, nullptr};
    // Activities are the shape's value at the later sample (deterministic; the real counters
    // average over the interval); rates come from the integrated counters.
    auto pct = [&](gtsim::Activity act) { return 100.0 * m->activity(d, act, b.tick) * lifeScale; };
    switch (metric.metricId) {
      case 1: metric.value = pct(gtsim::Activity::GrEngine); break;
      case 2: metric.value = pct(gtsim::Activity::SmActive); break;
      case 3: metric.value = pct(gtsim::Activity::SmOccupancy); break;
      case 5: metric.value = pct(gtsim::Activity::Tensor); break;
      case 10: metric.value = pct(gtsim::Activity::Dram); break;
      case 11: metric.value = pct(gtsim::Activity::Fp64); break;
      case 12: metric.value = pct(gtsim::Activity::Fp32); break;
      case 13: metric.value = pct(gtsim::Activity::Fp16); break;
      case 20: metric.value = (b.counters.pcieTxBytes - a.counters.pcieTxBytes) / seconds / mib; break;
      case 21: metric.value = (b.counters.pcieRxBytes - a.counters.pcieRxBytes) / seconds / mib; break;
      case 60:
        metric.value = (b.counters.nvlinkRxKiB - a.counters.nvlinkRxKiB) * 1024 * m->spec(d).nvlinks / seconds / mib;
        break;
      case 61:
        metric.value = (b.counters.nvlinkTxKiB - a.counters.nvlinkTxKiB) * 1024 * m->spec(d).nvlinks / seconds / mib;
        break;
      default: metric.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED; break;
    }
    if ((metric.metricId == 20 || metric.metricId == 21) && !m->spec(d).hasPcie) metric.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
    if ((metric.metricId == 60 || metric.metricId == 61) && m->spec(d).nvlinks == 0) metric.nvmlReturn = SIM_NVML_ERROR_NOT_SUPPORTED;
    if (oneRefresh && metric.nvmlReturn == SIM_NVML_SUCCESS) metric.value = 0;
  }
  return SIM_NVML_SUCCESS;
}
#endif

// ---- simulator teardown (not part of NVML) ---------------------------------------------------

// Frees the simulator's state before the host unloads a private copy of this library. The host
// calls it only after its last call into the library has returned and NVML is shut down (no
// thread can be inside). Refuses (returns 1) while NVML is initialised.
SIM_EXPORT int gtsim_release() {
  if (!gtsim::releaseDcgmState()) return 1;  // a DCGM client is still connected
  gtsim::SimState*& s = gtsim::statePointer();
  if (s == nullptr) return 0;
  if (s->initCount.load() > 0) return 1;
  if (s->callsInFlight.load() > 0) {
    gtsim::contractViolation("gtsim_release() (the host unloading its private copy) while a thread was inside an NVML call");
    return 1;
  }
  {
    std::lock_guard<std::mutex> lock(s->eventSetsMutex);
    for (simNvmlEventSet* set : s->eventSets) delete set;
    s->eventSets.clear();
#ifndef GTSIM_LEGACY_DRIVER
    for (simNvmlGpmSample* sample : s->gpmSamples) delete sample;
#endif
    s->gpmSamples.clear();
  }
  delete s;
  s = nullptr;
  return 0;
}
