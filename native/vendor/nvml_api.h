// The NVML entry points this project uses, as one table (an X-macro): each entry lists the symbol
// names to try, newest first. A symbol the loaded library lacks stays null and is reported as
// "not supported" by whoever needs it; only nvmlInit and nvmlShutdown are required.
#pragma once

#include <string>

#include "dynlib.h"
#include "nvml_abi.h"

namespace gt::nvml {

// X(member, return type, parameter list, symbol names newest first...)
#define GT_NVML_FUNCTIONS(X)                                                                       \
  X(init, Return, (), "nvmlInit_v2", "nvmlInit")                                                   \
  X(shutdown, Return, (), "nvmlShutdown")                                                          \
  X(errorString, const char*, (Return), "nvmlErrorString")                                         \
  X(systemGetDriverVersion, Return, (char*, unsigned int), "nvmlSystemGetDriverVersion")          \
  X(systemGetNvmlVersion, Return, (char*, unsigned int), "nvmlSystemGetNVMLVersion")              \
  X(systemGetCudaDriverVersion, Return, (int*), "nvmlSystemGetCudaDriverVersion_v2",               \
    "nvmlSystemGetCudaDriverVersion")                                                              \
  X(deviceGetCount, Return, (unsigned int*), "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount")        \
  X(deviceGetHandleByIndex, Return, (unsigned int, Device*), "nvmlDeviceGetHandleByIndex_v2",     \
    "nvmlDeviceGetHandleByIndex")                                                                  \
  X(deviceGetName, Return, (Device, char*, unsigned int), "nvmlDeviceGetName")                    \
  X(deviceGetUuid, Return, (Device, char*, unsigned int), "nvmlDeviceGetUUID")                    \
  X(deviceGetPciInfo, Return, (Device, PciInfo*), "nvmlDeviceGetPciInfo_v3",                       \
    "nvmlDeviceGetPciInfo_v2")                                                                     \
  X(deviceGetCudaComputeCapability, Return, (Device, int*, int*),                                  \
    "nvmlDeviceGetCudaComputeCapability")                                                          \
  X(deviceGetAddressingMode, Return, (Device, AddressingMode*), "nvmlDeviceGetAddressingMode")    \
  X(deviceGetMigMode, Return, (Device, unsigned int*, unsigned int*), "nvmlDeviceGetMigMode")     \
  X(deviceGetClockInfo, Return, (Device, int, unsigned int*), "nvmlDeviceGetClockInfo")           \
  X(deviceGetMaxClockInfo, Return, (Device, int, unsigned int*), "nvmlDeviceGetMaxClockInfo")     \
  X(deviceGetClocksEventReasons, Return, (Device, unsigned long long*),                            \
    "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons")        \
  X(deviceGetPowerUsage, Return, (Device, unsigned int*), "nvmlDeviceGetPowerUsage")              \
  X(deviceGetEnforcedPowerLimit, Return, (Device, unsigned int*),                                  \
    "nvmlDeviceGetEnforcedPowerLimit")                                                             \
  X(deviceGetTotalEnergyConsumption, Return, (Device, unsigned long long*),                        \
    "nvmlDeviceGetTotalEnergyConsumption")                                                         \
  X(deviceGetTemperatureV, Return, (Device, TemperatureV1*), "nvmlDeviceGetTemperatureV")         \
  X(deviceGetTemperature, Return, (Device, int, unsigned int*), "nvmlDeviceGetTemperature")       \
  X(deviceGetFanSpeed, Return, (Device, unsigned int*), "nvmlDeviceGetFanSpeed")                  \
  X(deviceGetPerformanceState, Return, (Device, int*), "nvmlDeviceGetPerformanceState")           \
  X(deviceGetUtilizationRates, Return, (Device, Utilization*), "nvmlDeviceGetUtilizationRates")   \
  X(deviceGetEncoderUtilization, Return, (Device, unsigned int*, unsigned int*),                   \
    "nvmlDeviceGetEncoderUtilization")                                                             \
  X(deviceGetDecoderUtilization, Return, (Device, unsigned int*, unsigned int*),                   \
    "nvmlDeviceGetDecoderUtilization")                                                             \
  X(deviceGetMemoryInfoV2, Return, (Device, MemoryV2*), "nvmlDeviceGetMemoryInfo_v2")             \
  X(deviceGetMemoryInfo, Return, (Device, Memory*), "nvmlDeviceGetMemoryInfo")                    \
  X(deviceGetPcieThroughput, Return, (Device, int, unsigned int*), "nvmlDeviceGetPcieThroughput") \
  X(deviceGetCurrPcieLinkGeneration, Return, (Device, unsigned int*),                              \
    "nvmlDeviceGetCurrPcieLinkGeneration")                                                         \
  X(deviceGetCurrPcieLinkWidth, Return, (Device, unsigned int*), "nvmlDeviceGetCurrPcieLinkWidth") \
  X(deviceGetTotalEccErrors, Return, (Device, int, int, unsigned long long*),                      \
    "nvmlDeviceGetTotalEccErrors")                                                                 \
  X(deviceGetNvLinkState, Return, (Device, unsigned int, int*), "nvmlDeviceGetNvLinkState")       \
  X(deviceGetFieldValues, Return, (Device, int, FieldValue*), "nvmlDeviceGetFieldValues")         \
  X(deviceGetComputeRunningProcessesV2, Return, (Device, unsigned int*, ProcessInfoV2*),          \
    "nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2")         \
  X(deviceGetComputeRunningProcessesV1, Return, (Device, unsigned int*, ProcessInfoV1*),          \
    "nvmlDeviceGetComputeRunningProcesses")                                                        \
  X(eventSetCreate, Return, (EventSet*), "nvmlEventSetCreate")                                     \
  X(eventSetFree, Return, (EventSet), "nvmlEventSetFree")                                          \
  X(deviceGetSupportedEventTypes, Return, (Device, unsigned long long*),                           \
    "nvmlDeviceGetSupportedEventTypes")                                                            \
  X(deviceRegisterEvents, Return, (Device, unsigned long long, EventSet), "nvmlDeviceRegisterEvents") \
  X(eventSetWait, Return, (EventSet, EventData*, unsigned int), "nvmlEventSetWait_v2")             \
  X(gpmQueryDeviceSupport, Return, (Device, GpmSupport*), "nvmlGpmQueryDeviceSupport")            \
  X(gpmSampleAlloc, Return, (GpmSample*), "nvmlGpmSampleAlloc")                                    \
  X(gpmSampleFree, Return, (GpmSample), "nvmlGpmSampleFree")                                       \
  X(gpmSampleGet, Return, (Device, GpmSample), "nvmlGpmSampleGet")                                 \
  X(gpmMetricsGet, Return, (GpmMetricsGet*), "nvmlGpmMetricsGet")                                 \
  X(gpmMigSampleGet, Return, (Device, unsigned int, GpmSample), "nvmlGpmMigSampleGet")            \
  X(deviceGetProcessesUtilizationInfo, Return, (Device, ProcessesUtilizationInfoV1*),              \
    "nvmlDeviceGetProcessesUtilizationInfo")                                                       \
  X(deviceGetProcessUtilization, Return,                                                           \
    (Device, ProcessUtilizationSample*, unsigned int*, unsigned long long),                        \
    "nvmlDeviceGetProcessUtilization")                                                             \
  X(deviceGetMaxMigDeviceCount, Return, (Device, unsigned int*), "nvmlDeviceGetMaxMigDeviceCount") \
  X(deviceGetMigDeviceHandleByIndex, Return, (Device, unsigned int, Device*),                      \
    "nvmlDeviceGetMigDeviceHandleByIndex")                                                         \
  X(deviceGetGpuInstanceId, Return, (Device, unsigned int*), "nvmlDeviceGetGpuInstanceId")         \
  X(deviceGetComputeInstanceId, Return, (Device, unsigned int*), "nvmlDeviceGetComputeInstanceId") \
  X(deviceGetAttributes, Return, (Device, DeviceAttributes*), "nvmlDeviceGetAttributes_v2")

struct Api {
#define GT_NVML_MEMBER(member, ret, params, ...) \
  ret(*member) params = nullptr;                 \
  const char* member##Symbol = nullptr;
  GT_NVML_FUNCTIONS(GT_NVML_MEMBER)
#undef GT_NVML_MEMBER

  // Resolves every entry from `lib`; returns false when a required entry point is missing.
  bool resolve(const DynLib& lib, std::string* missingRequired);

  // NVML's own text for a return code, or ours when the library has no nvmlErrorString.
  std::string describe(Return code) const;
};

// Our name for a return code ("NVML_ERROR_GPU_IS_LOST"); works without a loaded library.
const char* returnName(Return code);

}  // namespace gt::nvml
