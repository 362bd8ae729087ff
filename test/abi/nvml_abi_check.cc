// Compiled by test/abi.test.ts against NVIDIA's real nvml.h (Debian libnvidia-ml-dev: NVML API
// 11; or a newer one in GPU_TELEMETRY_NVML_INCLUDE, e.g. go-nvml's gen/nvml/nvml.h, API 13): every
// NVML struct and constant that native/vendor/nvml_abi.h (the addon) and native/sim/nvml_types.h
// (the simulator) declare must match NVIDIA's size, offsets and values. A mismatch fails to
// compile. What only newer headers have is checked when the header has it (and pinned as numbers
// in nvml_newest_facts.cc whatever header is installed).
#include <nvml.h>

#include <cstddef>
#include <cstdio>

#include "sim/nvml_types.h"
#include "vendor/nvml_abi.h"

static int checks = 0;

#define SAME_SIZE(a, b)                                                               \
  static_assert(sizeof(a) == sizeof(b), "sizeof(" #a ") != sizeof(" #b ")");         \
  static_assert(alignof(a) == alignof(b), "alignof(" #a ") != alignof(" #b ")");      \
  ++checks
#define SAME_OFFSET(a, fa, b, fb)                                                     \
  static_assert(offsetof(a, fa) == offsetof(b, fb), "offsetof(" #a "." #fa ") != offsetof(" #b "." #fb ")"); \
  static_assert(sizeof(a::fa) == sizeof(b::fb), "sizeof(" #a "." #fa ") != sizeof(" #b "." #fb ")"); \
  ++checks
#define SAME_VALUE(a, b)                                                              \
  static_assert(static_cast<long long>(a) == static_cast<long long>(b), #a " != " #b); \
  ++checks

namespace n = gt::nvml;

int main() {
  // Scalar types.
  SAME_SIZE(n::Return, nvmlReturn_t);
  SAME_SIZE(n::Device, nvmlDevice_t);
  SAME_SIZE(simNvmlReturn, nvmlReturn_t);

  // nvmlMemory_t
  SAME_SIZE(n::Memory, nvmlMemory_t);
  SAME_OFFSET(n::Memory, total, nvmlMemory_t, total);
  SAME_OFFSET(n::Memory, free, nvmlMemory_t, free);
  SAME_OFFSET(n::Memory, used, nvmlMemory_t, used);
  SAME_SIZE(simNvmlMemory, nvmlMemory_t);
  SAME_OFFSET(simNvmlMemory, used, nvmlMemory_t, used);

  // nvmlMemory_v2_t and its version word
  SAME_SIZE(n::MemoryV2, nvmlMemory_v2_t);
  SAME_OFFSET(n::MemoryV2, version, nvmlMemory_v2_t, version);
  SAME_OFFSET(n::MemoryV2, total, nvmlMemory_v2_t, total);
  SAME_OFFSET(n::MemoryV2, reserved, nvmlMemory_v2_t, reserved);
  SAME_OFFSET(n::MemoryV2, free, nvmlMemory_v2_t, free);
  SAME_OFFSET(n::MemoryV2, used, nvmlMemory_v2_t, used);
  SAME_VALUE(n::kMemoryV2Version, nvmlMemory_v2);
  SAME_SIZE(simNvmlMemoryV2, nvmlMemory_v2_t);
  SAME_OFFSET(simNvmlMemoryV2, reserved, nvmlMemory_v2_t, reserved);
  SAME_OFFSET(simNvmlMemoryV2, used, nvmlMemory_v2_t, used);
  SAME_VALUE(kSimMemoryV2Version, nvmlMemory_v2);

  // nvmlUtilization_t
  SAME_SIZE(n::Utilization, nvmlUtilization_t);
  SAME_OFFSET(n::Utilization, memory, nvmlUtilization_t, memory);
  SAME_SIZE(simNvmlUtilization, nvmlUtilization_t);

  // nvmlPciInfo_t
  SAME_SIZE(n::PciInfo, nvmlPciInfo_t);
  SAME_OFFSET(n::PciInfo, busIdLegacy, nvmlPciInfo_t, busIdLegacy);
  SAME_OFFSET(n::PciInfo, domain, nvmlPciInfo_t, domain);
  SAME_OFFSET(n::PciInfo, bus, nvmlPciInfo_t, bus);
  SAME_OFFSET(n::PciInfo, device, nvmlPciInfo_t, device);
  SAME_OFFSET(n::PciInfo, pciDeviceId, nvmlPciInfo_t, pciDeviceId);
  SAME_OFFSET(n::PciInfo, pciSubSystemId, nvmlPciInfo_t, pciSubSystemId);
  SAME_OFFSET(n::PciInfo, busId, nvmlPciInfo_t, busId);
  SAME_SIZE(simNvmlPciInfo, nvmlPciInfo_t);
  SAME_OFFSET(simNvmlPciInfo, busId, nvmlPciInfo_t, busId);
  SAME_OFFSET(simNvmlPciInfo, pciDeviceId, nvmlPciInfo_t, pciDeviceId);

  // Process lists
  SAME_SIZE(n::ProcessInfoV1, nvmlProcessInfo_v1_t);
  SAME_OFFSET(n::ProcessInfoV1, pid, nvmlProcessInfo_v1_t, pid);
  SAME_OFFSET(n::ProcessInfoV1, usedGpuMemory, nvmlProcessInfo_v1_t, usedGpuMemory);
  SAME_SIZE(n::ProcessInfoV2, nvmlProcessInfo_v2_t);
  SAME_OFFSET(n::ProcessInfoV2, usedGpuMemory, nvmlProcessInfo_v2_t, usedGpuMemory);
  SAME_OFFSET(n::ProcessInfoV2, gpuInstanceId, nvmlProcessInfo_v2_t, gpuInstanceId);
  SAME_OFFSET(n::ProcessInfoV2, computeInstanceId, nvmlProcessInfo_v2_t, computeInstanceId);
  // nvmlDeviceGetComputeRunningProcesses_v3 fills nvmlProcessInfo_t: the v2 layout.
  SAME_SIZE(n::ProcessInfoV2, nvmlProcessInfo_t);
  SAME_SIZE(simNvmlProcessInfoV1, nvmlProcessInfo_v1_t);
  SAME_SIZE(simNvmlProcessInfoV2, nvmlProcessInfo_v2_t);
  SAME_OFFSET(simNvmlProcessInfoV2, computeInstanceId, nvmlProcessInfo_v2_t, computeInstanceId);
  SAME_VALUE(n::kValueNotAvailable, NVML_VALUE_NOT_AVAILABLE);

  // Field values
  SAME_SIZE(n::Value, nvmlValue_t);
  SAME_SIZE(n::FieldValue, nvmlFieldValue_t);
  SAME_OFFSET(n::FieldValue, fieldId, nvmlFieldValue_t, fieldId);
  SAME_OFFSET(n::FieldValue, scopeId, nvmlFieldValue_t, scopeId);
  SAME_OFFSET(n::FieldValue, timestamp, nvmlFieldValue_t, timestamp);
  SAME_OFFSET(n::FieldValue, latencyUsec, nvmlFieldValue_t, latencyUsec);
  SAME_OFFSET(n::FieldValue, valueType, nvmlFieldValue_t, valueType);
  SAME_OFFSET(n::FieldValue, nvmlReturn, nvmlFieldValue_t, nvmlReturn);
  SAME_OFFSET(n::FieldValue, value, nvmlFieldValue_t, value);
  SAME_SIZE(simNvmlFieldValue, nvmlFieldValue_t);
  SAME_OFFSET(simNvmlFieldValue, timestamp, nvmlFieldValue_t, timestamp);
  SAME_OFFSET(simNvmlFieldValue, nvmlReturn, nvmlFieldValue_t, nvmlReturn);
  SAME_OFFSET(simNvmlFieldValue, value, nvmlFieldValue_t, value);
  SAME_VALUE(n::kValueDouble, NVML_VALUE_TYPE_DOUBLE);
  SAME_VALUE(n::kValueUnsignedInt, NVML_VALUE_TYPE_UNSIGNED_INT);
  SAME_VALUE(n::kValueUnsignedLong, NVML_VALUE_TYPE_UNSIGNED_LONG);
  SAME_VALUE(n::kValueUnsignedLongLong, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG);
  SAME_VALUE(n::kValueSignedLongLong, NVML_VALUE_TYPE_SIGNED_LONG_LONG);
#if NVML_API_VERSION >= 13
  SAME_VALUE(n::kValueSignedInt, NVML_VALUE_TYPE_SIGNED_INT);
  SAME_VALUE(n::kValueUnsignedShort, NVML_VALUE_TYPE_UNSIGNED_SHORT);
  SAME_OFFSET(n::Value, siVal, nvmlValue_t, siVal);
  SAME_OFFSET(n::Value, usVal, nvmlValue_t, usVal);
  SAME_OFFSET(simNvmlValue, usVal, nvmlValue_t, usVal);
#endif

  // Field ids
  SAME_VALUE(n::kFiMemoryTemp, NVML_FI_DEV_MEMORY_TEMP);
  SAME_VALUE(n::kFiTotalEnergyConsumption, NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION);
  SAME_VALUE(n::kFiNvlinkLinkCount, NVML_FI_DEV_NVLINK_LINK_COUNT);
  SAME_VALUE(n::kFiRetiredPendingSbe, NVML_FI_DEV_RETIRED_PENDING_SBE);
  SAME_VALUE(n::kFiRetiredPendingDbe, NVML_FI_DEV_RETIRED_PENDING_DBE);
  SAME_VALUE(n::kFiPcieReplayCounter, NVML_FI_DEV_PCIE_REPLAY_COUNTER);
  SAME_VALUE(n::kFiNvlinkThroughputDataTx, NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX);
  SAME_VALUE(n::kFiNvlinkThroughputDataRx, NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX);
  SAME_VALUE(n::kFiRemappedCorrectable, NVML_FI_DEV_REMAPPED_COR);
  SAME_VALUE(n::kFiRemappedUncorrectable, NVML_FI_DEV_REMAPPED_UNC);
  SAME_VALUE(n::kFiRemappedPending, NVML_FI_DEV_REMAPPED_PENDING);
  SAME_VALUE(n::kFiRemappedFailure, NVML_FI_DEV_REMAPPED_FAILURE);
  SAME_VALUE(n::kFiNvlinkGetState, NVML_FI_DEV_NVLINK_GET_STATE);
#ifdef NVML_FI_DEV_PCIE_COUNT_TX_BYTES  // NVML 12.5+ headers only
  SAME_VALUE(n::kFiTemperatureGpuMaxTlimit, NVML_FI_DEV_TEMPERATURE_GPU_MAX_TLIMIT);
  SAME_VALUE(n::kFiPcieCountTxBytes, NVML_FI_DEV_PCIE_COUNT_TX_BYTES);
  SAME_VALUE(n::kFiPcieCountRxBytes, NVML_FI_DEV_PCIE_COUNT_RX_BYTES);
#endif
#ifdef nvmlDeviceAddressingMode_v1  // NVML 12.6+
  SAME_SIZE(n::AddressingMode, nvmlDeviceAddressingMode_t);
  SAME_OFFSET(n::AddressingMode, version, nvmlDeviceAddressingMode_t, version);
  SAME_OFFSET(n::AddressingMode, value, nvmlDeviceAddressingMode_t, value);
  SAME_VALUE(n::kAddressingModeVersion, nvmlDeviceAddressingMode_v1);
  SAME_VALUE(n::kAddressingModeNone, NVML_DEVICE_ADDRESSING_MODE_NONE);
  SAME_VALUE(n::kAddressingModeHmm, NVML_DEVICE_ADDRESSING_MODE_HMM);
  SAME_VALUE(n::kAddressingModeAts, NVML_DEVICE_ADDRESSING_MODE_ATS);
  SAME_SIZE(simNvmlAddressingMode, nvmlDeviceAddressingMode_t);
  SAME_VALUE(kSimAddressingModeV1Version, nvmlDeviceAddressingMode_v1);
#endif
#ifdef nvmlTemperature_v1  // NVML 12.8+
  SAME_SIZE(n::TemperatureV1, nvmlTemperature_v1_t);
  SAME_OFFSET(n::TemperatureV1, sensorType, nvmlTemperature_v1_t, sensorType);
  SAME_OFFSET(n::TemperatureV1, temperature, nvmlTemperature_v1_t, temperature);
  SAME_VALUE(n::kTemperatureV1Version, nvmlTemperature_v1);
  SAME_VALUE(kSimTemperatureV1Version, nvmlTemperature_v1);
#endif
  SAME_VALUE(n::kMigDisable, NVML_DEVICE_MIG_DISABLE);
  SAME_VALUE(n::kMigEnable, NVML_DEVICE_MIG_ENABLE);

  // MIG device attributes (nvmlDeviceGetAttributes_v2 on a MIG device handle).
  SAME_SIZE(n::DeviceAttributes, nvmlDeviceAttributes_t);
  SAME_OFFSET(n::DeviceAttributes, multiprocessorCount, nvmlDeviceAttributes_t, multiprocessorCount);
  SAME_OFFSET(n::DeviceAttributes, gpuInstanceSliceCount, nvmlDeviceAttributes_t, gpuInstanceSliceCount);
  SAME_OFFSET(n::DeviceAttributes, computeInstanceSliceCount, nvmlDeviceAttributes_t, computeInstanceSliceCount);
  SAME_OFFSET(n::DeviceAttributes, memorySizeMB, nvmlDeviceAttributes_t, memorySizeMB);
  SAME_SIZE(simNvmlDeviceAttributes, nvmlDeviceAttributes_t);
  SAME_OFFSET(simNvmlDeviceAttributes, gpuInstanceSliceCount, nvmlDeviceAttributes_t, gpuInstanceSliceCount);
  SAME_OFFSET(simNvmlDeviceAttributes, memorySizeMB, nvmlDeviceAttributes_t, memorySizeMB);

  // Per-process utilisation: the unversioned sample (every header) and the versioned info (NVML 12+).
  SAME_SIZE(n::ProcessUtilizationSample, nvmlProcessUtilizationSample_t);
  SAME_OFFSET(n::ProcessUtilizationSample, pid, nvmlProcessUtilizationSample_t, pid);
  SAME_OFFSET(n::ProcessUtilizationSample, timeStamp, nvmlProcessUtilizationSample_t, timeStamp);
  SAME_OFFSET(n::ProcessUtilizationSample, smUtil, nvmlProcessUtilizationSample_t, smUtil);
  SAME_OFFSET(n::ProcessUtilizationSample, memUtil, nvmlProcessUtilizationSample_t, memUtil);
  SAME_OFFSET(n::ProcessUtilizationSample, encUtil, nvmlProcessUtilizationSample_t, encUtil);
  SAME_OFFSET(n::ProcessUtilizationSample, decUtil, nvmlProcessUtilizationSample_t, decUtil);
  SAME_SIZE(simNvmlProcessUtilizationSample, nvmlProcessUtilizationSample_t);
  SAME_OFFSET(simNvmlProcessUtilizationSample, timeStamp, nvmlProcessUtilizationSample_t, timeStamp);
  SAME_OFFSET(simNvmlProcessUtilizationSample, decUtil, nvmlProcessUtilizationSample_t, decUtil);
#ifdef nvmlProcessesUtilizationInfo_v1  // NVML 12+
  SAME_SIZE(n::ProcessUtilizationInfoV1, nvmlProcessUtilizationInfo_v1_t);
  SAME_OFFSET(n::ProcessUtilizationInfoV1, timeStamp, nvmlProcessUtilizationInfo_v1_t, timeStamp);
  SAME_OFFSET(n::ProcessUtilizationInfoV1, pid, nvmlProcessUtilizationInfo_v1_t, pid);
  SAME_OFFSET(n::ProcessUtilizationInfoV1, smUtil, nvmlProcessUtilizationInfo_v1_t, smUtil);
  SAME_OFFSET(n::ProcessUtilizationInfoV1, decUtil, nvmlProcessUtilizationInfo_v1_t, decUtil);
  SAME_OFFSET(n::ProcessUtilizationInfoV1, ofaUtil, nvmlProcessUtilizationInfo_v1_t, ofaUtil);
  SAME_SIZE(n::ProcessesUtilizationInfoV1, nvmlProcessesUtilizationInfo_v1_t);
  SAME_OFFSET(n::ProcessesUtilizationInfoV1, processSamplesCount, nvmlProcessesUtilizationInfo_v1_t, processSamplesCount);
  SAME_OFFSET(n::ProcessesUtilizationInfoV1, lastSeenTimeStamp, nvmlProcessesUtilizationInfo_v1_t, lastSeenTimeStamp);
  SAME_OFFSET(n::ProcessesUtilizationInfoV1, procUtilArray, nvmlProcessesUtilizationInfo_v1_t, procUtilArray);
  SAME_VALUE(n::kProcessesUtilizationInfoV1Version, nvmlProcessesUtilizationInfo_v1);
  SAME_SIZE(simNvmlProcessUtilizationInfoV1, nvmlProcessUtilizationInfo_v1_t);
  SAME_OFFSET(simNvmlProcessUtilizationInfoV1, pid, nvmlProcessUtilizationInfo_v1_t, pid);
  SAME_SIZE(simNvmlProcessesUtilizationInfoV1, nvmlProcessesUtilizationInfo_v1_t);
  SAME_OFFSET(simNvmlProcessesUtilizationInfoV1, procUtilArray, nvmlProcessesUtilizationInfo_v1_t, procUtilArray);
  SAME_VALUE(kSimProcessesUtilizationInfoV1Version, nvmlProcessesUtilizationInfo_v1);
#endif

  // Return codes
  SAME_VALUE(n::kSuccess, NVML_SUCCESS);
  SAME_VALUE(n::kErrorUninitialized, NVML_ERROR_UNINITIALIZED);
  SAME_VALUE(n::kErrorInvalidArgument, NVML_ERROR_INVALID_ARGUMENT);
  SAME_VALUE(n::kErrorNotSupported, NVML_ERROR_NOT_SUPPORTED);
  SAME_VALUE(n::kErrorNoPermission, NVML_ERROR_NO_PERMISSION);
  SAME_VALUE(n::kErrorAlreadyInitialized, NVML_ERROR_ALREADY_INITIALIZED);
  SAME_VALUE(n::kErrorNotFound, NVML_ERROR_NOT_FOUND);
  SAME_VALUE(n::kErrorInsufficientSize, NVML_ERROR_INSUFFICIENT_SIZE);
  SAME_VALUE(n::kErrorInsufficientPower, NVML_ERROR_INSUFFICIENT_POWER);
  SAME_VALUE(n::kErrorDriverNotLoaded, NVML_ERROR_DRIVER_NOT_LOADED);
  SAME_VALUE(n::kErrorTimeout, NVML_ERROR_TIMEOUT);
  SAME_VALUE(n::kErrorIrqIssue, NVML_ERROR_IRQ_ISSUE);
  SAME_VALUE(n::kErrorLibraryNotFound, NVML_ERROR_LIBRARY_NOT_FOUND);
  SAME_VALUE(n::kErrorFunctionNotFound, NVML_ERROR_FUNCTION_NOT_FOUND);
  SAME_VALUE(n::kErrorCorruptedInforom, NVML_ERROR_CORRUPTED_INFOROM);
  SAME_VALUE(n::kErrorGpuIsLost, NVML_ERROR_GPU_IS_LOST);
  SAME_VALUE(n::kErrorResetRequired, NVML_ERROR_RESET_REQUIRED);
  SAME_VALUE(n::kErrorOperatingSystem, NVML_ERROR_OPERATING_SYSTEM);
  SAME_VALUE(n::kErrorLibRmVersionMismatch, NVML_ERROR_LIB_RM_VERSION_MISMATCH);
  SAME_VALUE(n::kErrorInUse, NVML_ERROR_IN_USE);
  SAME_VALUE(n::kErrorMemory, NVML_ERROR_MEMORY);
  SAME_VALUE(n::kErrorNoData, NVML_ERROR_NO_DATA);
  SAME_VALUE(n::kErrorVgpuEccNotSupported, NVML_ERROR_VGPU_ECC_NOT_SUPPORTED);
  SAME_VALUE(n::kErrorInsufficientResources, NVML_ERROR_INSUFFICIENT_RESOURCES);
  SAME_VALUE(n::kErrorFreqNotSupported, NVML_ERROR_FREQ_NOT_SUPPORTED);
  SAME_VALUE(n::kErrorArgumentVersionMismatch, NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
#if NVML_API_VERSION >= 12  // 26..29 (DEPRECATED, NOT_READY, GPU_NOT_FOUND, INVALID_STATE)
  SAME_VALUE(n::kErrorDeprecated, NVML_ERROR_DEPRECATED);
  SAME_VALUE(n::kErrorNotReady, NVML_ERROR_NOT_READY);
  SAME_VALUE(n::kErrorGpuNotFound, NVML_ERROR_GPU_NOT_FOUND);
  SAME_VALUE(n::kErrorInvalidState, NVML_ERROR_INVALID_STATE);
#endif
#if NVML_API_VERSION >= 13
  SAME_VALUE(n::kErrorResetTypeNotSupported, NVML_ERROR_RESET_TYPE_NOT_SUPPORTED);
#endif
  SAME_VALUE(n::kErrorUnknown, NVML_ERROR_UNKNOWN);
  SAME_VALUE(SIM_NVML_ERROR_GPU_IS_LOST, NVML_ERROR_GPU_IS_LOST);
  SAME_VALUE(SIM_NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_DRIVER_NOT_LOADED);
  SAME_VALUE(SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH, NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  SAME_VALUE(SIM_NVML_ERROR_INSUFFICIENT_SIZE, NVML_ERROR_INSUFFICIENT_SIZE);

  // Selectors and sizes
  SAME_VALUE(n::kTemperatureGpu, NVML_TEMPERATURE_GPU);
  SAME_VALUE(n::kClockGraphics, NVML_CLOCK_GRAPHICS);
  SAME_VALUE(n::kClockSm, NVML_CLOCK_SM);
  SAME_VALUE(n::kClockMem, NVML_CLOCK_MEM);
  SAME_VALUE(n::kMemoryErrorCorrected, NVML_MEMORY_ERROR_TYPE_CORRECTED);
  SAME_VALUE(n::kMemoryErrorUncorrected, NVML_MEMORY_ERROR_TYPE_UNCORRECTED);
  SAME_VALUE(n::kVolatileEcc, NVML_VOLATILE_ECC);
  SAME_VALUE(n::kAggregateEcc, NVML_AGGREGATE_ECC);
  SAME_VALUE(n::kPcieUtilTxBytes, NVML_PCIE_UTIL_TX_BYTES);
  SAME_VALUE(n::kPcieUtilRxBytes, NVML_PCIE_UTIL_RX_BYTES);
  SAME_VALUE(n::kFeatureEnabled, NVML_FEATURE_ENABLED);
  SAME_VALUE(n::kPstateUnknown, NVML_PSTATE_UNKNOWN);
  SAME_VALUE(n::kNameBufferSize, NVML_DEVICE_NAME_V2_BUFFER_SIZE);
  SAME_VALUE(n::kUuidBufferSize, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
  SAME_VALUE(n::kVersionBufferSize, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE);
  SAME_VALUE(n::kVersionBufferSize, NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE);
  SAME_VALUE(n::kPciBusIdBufferSize, NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE);
  SAME_VALUE(n::kPciBusIdLegacyBufferSize, NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE);
  // NVML 13.3 raised NVML_NVLINK_MAX_LINKS from 18 to 36; we size for the newest, and never below
  // what the installed header says.
  static_assert(n::kNvlinkMaxLinks >= NVML_NVLINK_MAX_LINKS, "fewer NVLink links than the header");
  ++checks;
#if NVML_NVLINK_MAX_LINKS >= 36
  SAME_VALUE(n::kNvlinkMaxLinks, NVML_NVLINK_MAX_LINKS);
#endif

  // Clock-event reason bits (src/fields.ts decodes the same bits).
  SAME_VALUE(0x1, nvmlClocksThrottleReasonGpuIdle);
  SAME_VALUE(0x2, nvmlClocksThrottleReasonApplicationsClocksSetting);
  SAME_VALUE(0x4, nvmlClocksThrottleReasonSwPowerCap);
  SAME_VALUE(0x8, nvmlClocksThrottleReasonHwSlowdown);
  SAME_VALUE(0x10, nvmlClocksThrottleReasonSyncBoost);
  SAME_VALUE(0x20, nvmlClocksThrottleReasonSwThermalSlowdown);
  SAME_VALUE(0x40, nvmlClocksThrottleReasonHwThermalSlowdown);
  SAME_VALUE(0x80, nvmlClocksThrottleReasonHwPowerBrakeSlowdown);
  SAME_VALUE(0x100, nvmlClocksThrottleReasonDisplayClockSetting);

  // GPM (NVML 11.8+): metric ids we read, the request/metric layouts up to the array, and the
  // array bound (ours is the newest; see nvml_abi.h).
  SAME_VALUE(n::kGpmGraphicsUtil, NVML_GPM_METRIC_GRAPHICS_UTIL);
  SAME_VALUE(n::kGpmSmUtil, NVML_GPM_METRIC_SM_UTIL);
  SAME_VALUE(n::kGpmSmOccupancy, NVML_GPM_METRIC_SM_OCCUPANCY);
  SAME_VALUE(n::kGpmAnyTensorUtil, NVML_GPM_METRIC_ANY_TENSOR_UTIL);
  SAME_VALUE(n::kGpmDramBwUtil, NVML_GPM_METRIC_DRAM_BW_UTIL);
  SAME_VALUE(n::kGpmFp64Util, NVML_GPM_METRIC_FP64_UTIL);
  SAME_VALUE(n::kGpmFp32Util, NVML_GPM_METRIC_FP32_UTIL);
  SAME_VALUE(n::kGpmFp16Util, NVML_GPM_METRIC_FP16_UTIL);
  SAME_VALUE(n::kGpmPcieTxPerSec, NVML_GPM_METRIC_PCIE_TX_PER_SEC);
  SAME_VALUE(n::kGpmPcieRxPerSec, NVML_GPM_METRIC_PCIE_RX_PER_SEC);
  SAME_VALUE(n::kGpmNvlinkTotalRxPerSec, NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC);
  SAME_VALUE(n::kGpmNvlinkTotalTxPerSec, NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC);
  SAME_SIZE(n::GpmMetric, nvmlGpmMetric_t);
  SAME_OFFSET(n::GpmMetric, nvmlReturn, nvmlGpmMetric_t, nvmlReturn);
  SAME_OFFSET(n::GpmMetric, value, nvmlGpmMetric_t, value);
  SAME_OFFSET(n::GpmMetric, metricInfo, nvmlGpmMetric_t, metricInfo);
  SAME_OFFSET(n::GpmMetricsGet, numMetrics, nvmlGpmMetricsGet_t, numMetrics);
  SAME_OFFSET(n::GpmMetricsGet, sample1, nvmlGpmMetricsGet_t, sample1);
  SAME_OFFSET(n::GpmMetricsGet, sample2, nvmlGpmMetricsGet_t, sample2);
  static_assert(offsetof(n::GpmMetricsGet, metrics) == offsetof(nvmlGpmMetricsGet_t, metrics), "metrics offset");
  static_assert(n::kGpmMetricArrayBound >= NVML_GPM_METRIC_MAX, "GPM metrics array smaller than the header's");
  checks += 2;
#if NVML_API_VERSION < 13
  SAME_VALUE(n::kGpmMetricMaxNvml11, NVML_GPM_METRIC_MAX);
#else
  SAME_VALUE(n::kGpmMetricArrayBound, NVML_GPM_METRIC_MAX);
#endif
  SAME_VALUE(n::kGpmMetricsGetVersion, NVML_GPM_METRICS_GET_VERSION);
  SAME_SIZE(n::GpmSupport, nvmlGpmSupport_t);
  SAME_VALUE(n::kGpmSupportVersion, NVML_GPM_SUPPORT_VERSION);

  std::printf("nvml ABI: %d checks passed against nvml.h (NVML API %s)\n", checks, NVML_API_VERSION_STR);
  return 0;
}
