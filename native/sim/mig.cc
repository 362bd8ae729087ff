// The simulator's MIG (Multi-Instance GPU), as NVIDIA's driver behaves per nvml.h:
//  - nvmlDeviceGetMaxMigDeviceCount answers 0 "if MIG is not supported or enabled", else the
//    number of MIG device slots; nvmlDeviceGetMigDeviceHandleByIndex answers NOT_FOUND "if no valid
//    MIG device was found at index" (slots can be empty: a client must not stop at the first hole),
//    INVALID_ARGUMENT past the slots;
//  - a MIG device handle is a compute instance: nvmlDeviceGetGpuInstanceId / ComputeInstanceId,
//    nvmlDeviceGetAttributes_v2 (slices, memory size; "currently only supports MIG device
//    handles"), nvmlDeviceGetUUID ("MIG-…"), per-instance memory ("Per-instance information can be
//    queried by using specific MIG device handles") and the instance's processes answer for it;
//  - a handle of an instance that was destroyed stays invalid ("must be requested again"): here
//    every call on it answers INVALID_ARGUMENT.
#include "mig.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "sim_state.h"

#define SIM_EXPORT extern "C" __attribute__((visibility("default")))

namespace gtsim {

namespace {

uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

void copyOut(const std::string& s, char* out, unsigned int length) {
  const size_t n = std::min<size_t>(s.size(), length - 1);
  std::memcpy(out, s.data(), n);
  out[n] = '\0';
}

}  // namespace

bool enterMig(const char* call, simNvmlDevice_t handle, MigTarget& out, simNvmlReturn* code) {
  SimState& s = state();
  Model* m = s.model.get();
  if (s.initCount.load() <= 0 || m == nullptr) {
    *code = 1;  // NVML_ERROR_UNINITIALIZED
    return false;
  }
  if (!s.isMigHandle(handle) || handle->parent < 0 || static_cast<size_t>(handle->parent) >= m->deviceCount()) {
    *code = SIM_NVML_ERROR_INVALID_ARGUMENT;
    return false;
  }
  const size_t parent = static_cast<size_t>(handle->parent);
  if (!runFaults(call, static_cast<int>(parent), m, code)) return false;
  int layout = 0;
  const std::vector<MigInstanceSpec>& instances = m->migLayout(parent, &layout);
  if (layout != handle->layout || handle->entry < 0 || static_cast<size_t>(handle->entry) >= instances.size()) {
    *code = SIM_NVML_ERROR_INVALID_ARGUMENT;  // the instance behind this handle is gone
    return false;
  }
  out.model = m;
  out.parent = parent;
  out.instance = &instances[static_cast<size_t>(handle->entry)];
  return true;
}

std::string migUuid(const Model& m, size_t parent, const MigInstanceSpec& inst) {
  char buf[64];
  const uint64_t h = mix(m.scenario().seed ^ mix(parent * 131 + inst.gpuInstanceId * 17 + inst.computeInstanceId + 0x4d4947));
  // "5349" ("SI") in the third group, as the simulator's GPU UUIDs: simulated wherever it is seen.
  std::snprintf(buf, sizeof buf, "MIG-%08x-%04x-5349-%04x-%012llx", static_cast<unsigned>(h >> 32),
                static_cast<unsigned>(parent & 0xffff), (inst.gpuInstanceId << 8 | inst.computeInstanceId) & 0xffff,
                static_cast<unsigned long long>(h & 0xffffffffffffULL));
  return buf;
}

const MigInstanceSpec* migInstanceByGpuInstanceId(const Model& m, size_t parent, unsigned int gpuInstanceId) {
  for (const MigInstanceSpec& inst : m.migLayout(parent)) {
    if (inst.gpuInstanceId == gpuInstanceId) return &inst;
  }
  return nullptr;
}

void migProcesses(const Model& m, size_t parent, const MigInstanceSpec* only, int64_t k, std::vector<SimProcess>& out) {
  out.clear();
  for (const MigInstanceSpec& inst : m.migLayout(parent)) {
    if (only != nullptr && &inst != only) continue;
    const double load = m.migLoad(parent, inst, k);
    for (const ProcessSpec& p : inst.processes) {
      out.push_back({p.pid, Model::processBytes(p, load), inst.gpuInstanceId, inst.computeInstanceId});
    }
  }
}

simNvmlReturn migGetUuid(simNvmlDevice_t handle, char* uuid, unsigned int length) {
  MigTarget t;
  simNvmlReturn code = 0;
  if (!enterMig("nvmlDeviceGetUUID", handle, t, &code)) return code;
  if (uuid == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  const std::string u = migUuid(*t.model, t.parent, *t.instance);
  if (u.size() + 1 > length) return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  copyOut(u, uuid, length);
  return SIM_NVML_SUCCESS;
}

simNvmlReturn migGetName(simNvmlDevice_t handle, char* name, unsigned int length) {
  MigTarget t;
  simNvmlReturn code = 0;
  if (!enterMig("nvmlDeviceGetName", handle, t, &code)) return code;
  if (name == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  const std::string n = t.model->spec(t.parent).name + " MIG " + t.instance->profile;
  if (n.size() + 1 > length) return SIM_NVML_ERROR_INSUFFICIENT_SIZE;
  copyOut(n, name, length);
  return SIM_NVML_SUCCESS;
}

simNvmlReturn migMemoryFigures(const char* call, simNvmlDevice_t handle, double& total, double& used) {
  MigTarget t;
  simNvmlReturn code = 0;
  if (!enterMig(call, handle, t, &code)) return code;
  const int64_t k = t.model->currentTick();
  total = t.instance->memoryMiB * 1048576.0;
  const double load = t.model->migLoad(t.parent, *t.instance, k);
  used = t.instance->overheadBytes;
  for (const ProcessSpec& p : t.instance->processes) {
    const double b = Model::processBytes(p, load);
    if (b > 0) used += b;
  }
  used = std::min(used, total);
  return SIM_NVML_SUCCESS;
}

}  // namespace gtsim

using gtsim::MigTarget;

// ---- entry points that exist only for MIG ---------------------------------------------------

#define SIM_PARENT_ENTER(name)                                                        \
  gtsim::CallGuard inFlight_;                                                         \
  gtsim::SimState& st_ = gtsim::state();                                              \
  gtsim::Model* m = st_.model.get();                                                  \
  if (st_.initCount.load() <= 0 || m == nullptr) return 1;                            \
  if (!st_.validDevice(device)) return SIM_NVML_ERROR_INVALID_ARGUMENT;               \
  const size_t d = st_.deviceIndex(device);                                           \
  {                                                                                   \
    simNvmlReturn early = 0;                                                          \
    if (!gtsim::runFaults(name, static_cast<int>(d), m, &early)) return early;        \
  }                                                                                   \
  const gtsim::DeviceSpec& spec = m->spec(d)

SIM_EXPORT simNvmlReturn nvmlDeviceGetMaxMigDeviceCount(simNvmlDevice_t device, unsigned int* count) {
  SIM_PARENT_ENTER("nvmlDeviceGetMaxMigDeviceCount");
  if (count == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  // nvml.h: "Returns zero if MIG is not supported or enabled."
  *count = spec.migCapable && m->migOn(d) ? spec.migMaxDevices : 0;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetMigDeviceHandleByIndex(simNvmlDevice_t device, unsigned int index,
                                                             simNvmlDevice_t* migDevice) {
  SIM_PARENT_ENTER("nvmlDeviceGetMigDeviceHandleByIndex");
  if (migDevice == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  if (!spec.migCapable) return SIM_NVML_ERROR_NOT_SUPPORTED;
  const unsigned int slots = m->migOn(d) ? spec.migMaxDevices : 0;
  if (index >= slots) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  int layout = 0;
  const std::vector<gtsim::MigInstanceSpec>& instances = m->migLayout(d, &layout);
  for (size_t e = 0; e < instances.size(); ++e) {
    if (instances[e].index == index) {
      *migDevice = st_.migHandle(d, layout, e);
      return SIM_NVML_SUCCESS;
    }
  }
  return SIM_NVML_ERROR_NOT_FOUND;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetGpuInstanceId(simNvmlDevice_t device, unsigned int* id) {
  gtsim::CallGuard inFlight_;
  MigTarget t;
  simNvmlReturn code = 0;
  if (!gtsim::enterMig("nvmlDeviceGetGpuInstanceId", device, t, &code)) return code;
  if (id == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *id = t.instance->gpuInstanceId;
  return SIM_NVML_SUCCESS;
}

SIM_EXPORT simNvmlReturn nvmlDeviceGetComputeInstanceId(simNvmlDevice_t device, unsigned int* id) {
  gtsim::CallGuard inFlight_;
  MigTarget t;
  simNvmlReturn code = 0;
  if (!gtsim::enterMig("nvmlDeviceGetComputeInstanceId", device, t, &code)) return code;
  if (id == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  *id = t.instance->computeInstanceId;
  return SIM_NVML_SUCCESS;
}

#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simNvmlReturn nvmlDeviceGetAttributes_v2(simNvmlDevice_t device, simNvmlDeviceAttributes* attributes) {
  gtsim::CallGuard inFlight_;
  if (!gtsim::state().isMigHandle(device)) {
    // nvml.h: "This API currently only supports MIG device handles."
    gtsim::SimState& st = gtsim::state();
    if (st.initCount.load() <= 0 || st.model == nullptr) return 1;
    return st.validDevice(device) ? SIM_NVML_ERROR_NOT_SUPPORTED : SIM_NVML_ERROR_INVALID_ARGUMENT;
  }
  MigTarget t;
  simNvmlReturn code = 0;
  if (!gtsim::enterMig("nvmlDeviceGetAttributes_v2", device, t, &code)) return code;
  if (attributes == nullptr) return SIM_NVML_ERROR_INVALID_ARGUMENT;
  std::memset(attributes, 0, sizeof *attributes);
  const unsigned int slices = t.instance->sliceCount;
  attributes->multiprocessorCount = 16 * slices;  // H100: 132 SMs over 7 slices, 16 per 1g
  attributes->sharedCopyEngineCount = slices;
  attributes->sharedDecoderCount = slices >= 2 ? slices / 2 : 1;
  attributes->sharedJpegCount = 1;
  attributes->sharedOfaCount = slices >= 7 ? 1 : 0;
  attributes->gpuInstanceSliceCount = slices;
  attributes->computeInstanceSliceCount = slices;
  attributes->memorySizeMB = static_cast<unsigned long long>(t.instance->memoryMiB);
  return SIM_NVML_SUCCESS;
}
#endif
