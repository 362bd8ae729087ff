// The simulator's MIG devices and per-process utilisation (mig.cc, process_util.cc): the parts of
// nvml_exports.cc's entry points that answer for a MIG device handle, and what they share.
#pragma once

#include <string>
#include <vector>

#include "model.h"
#include "nvml_types.h"

namespace gtsim {

// The fault schedule of one entry point on device d (nvml_exports.cc).
bool runFaults(const char* call, int d, Model* m, simNvmlReturn* code);

// A MIG device handle resolved: its parent GPU and its instance. Fails with INVALID_ARGUMENT for a
// handle of instances that no longer exist (MIG mode switched off, or the GPU reconfigured: NVML
// says such a handle "would remain invalid and must be requested again").
struct MigTarget {
  Model* model = nullptr;
  size_t parent = 0;
  const MigInstanceSpec* instance = nullptr;
};
bool enterMig(const char* call, simNvmlDevice_t handle, MigTarget& out, simNvmlReturn* code);

std::string migUuid(const Model& m, size_t parent, const MigInstanceSpec& inst);

// Entry points given a MIG device handle (the caller holds a CallGuard).
simNvmlReturn migGetUuid(simNvmlDevice_t handle, char* uuid, unsigned int length);
simNvmlReturn migGetName(simNvmlDevice_t handle, char* name, unsigned int length);
simNvmlReturn migMemoryFigures(const char* call, simNvmlDevice_t handle, double& total, double& used);

// A process as a process list reports it, with its MIG ids (0xFFFFFFFF outside MIG).
struct SimProcess {
  unsigned int pid;
  double usedBytes;  // < 0: the driver cannot tell
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
// The processes of one MIG device, or (parent == nullptr instance) of every MIG device of a GPU.
void migProcesses(const Model& m, size_t parent, const MigInstanceSpec* only, int64_t k, std::vector<SimProcess>& out);

// The GPU instance with this id on the GPU right now (null: none).
const MigInstanceSpec* migInstanceByGpuInstanceId(const Model& m, size_t parent, unsigned int gpuInstanceId);

}  // namespace gtsim
