// The facts of NVIDIA's newest NVML header that Debian's nvml.h (NVML API 11) is too old to
// check, pinned as numbers: each read from NVIDIA/go-nvml gen/nvml/nvml.h (NVML_API_VERSION 13,
// commit 2f9e261fe40a, July 2026; line numbers of that file). Compiled by test/abi.test.ts with
// no NVIDIA header at all. The addon's table (native/vendor/nvml_abi.h) and the simulator's own
// declarations (native/sim/nvml_types.h) must both agree with them.
#include <cstddef>
#include <cstdio>

#include "sim/nvml_types.h"
#include "vendor/nvml_abi.h"

static int checks = 0;
#define FACT(ours, number, where) \
  static_assert(static_cast<long long>(ours) == static_cast<long long>(number), #ours " != " #number " (" where ")"); \
  ++checks

namespace n = gt::nvml;

int main() {
  // Field ids read through nvmlDeviceGetFieldValues: the whole table.
  FACT(n::kFiMemoryTemp, 82, "NVML_FI_DEV_MEMORY_TEMP, l.2485");
  FACT(n::kFiTotalEnergyConsumption, 83, "NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, l.2488");
  FACT(n::kFiNvlinkLinkCount, 91, "NVML_FI_DEV_NVLINK_LINK_COUNT, l.2503");
  FACT(n::kFiRetiredPendingSbe, 92, "NVML_FI_DEV_RETIRED_PENDING_SBE, l.2505");
  FACT(n::kFiRetiredPendingDbe, 93, "NVML_FI_DEV_RETIRED_PENDING_DBE, l.2506");
  FACT(n::kFiPcieReplayCounter, 94, "NVML_FI_DEV_PCIE_REPLAY_COUNTER, l.2508");
  FACT(n::kFiNvlinkThroughputDataTx, 138, "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX (KiB), l.2602");
  FACT(n::kFiNvlinkThroughputDataRx, 139, "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX (KiB), l.2603");
  FACT(n::kFiRemappedCorrectable, 142, "NVML_FI_DEV_REMAPPED_COR, l.2608");
  FACT(n::kFiRemappedUncorrectable, 143, "NVML_FI_DEV_REMAPPED_UNC, l.2609");
  FACT(n::kFiRemappedPending, 144, "NVML_FI_DEV_REMAPPED_PENDING, l.2610");
  FACT(n::kFiRemappedFailure, 145, "NVML_FI_DEV_REMAPPED_FAILURE, l.2611");
  FACT(n::kFiNvlinkGetState, 165, "NVML_FI_DEV_NVLINK_GET_STATE, l.2676");
  FACT(n::kFiTemperatureGpuMaxTlimit, 196, "NVML_FI_DEV_TEMPERATURE_GPU_MAX_TLIMIT (a Celsius threshold), l.2733");
  FACT(n::kFiPcieCountTxBytes, 197, "NVML_FI_DEV_PCIE_COUNT_TX_BYTES ('can be wrapped'), l.2735");
  FACT(n::kFiPcieCountRxBytes, 198, "NVML_FI_DEV_PCIE_COUNT_RX_BYTES, l.2736");

  // nvmlValueType_t (l.648-660) and nvmlValue_t (l.665-674): 7 members, 8 bytes.
  FACT(n::kValueSignedInt, 5, "NVML_VALUE_TYPE_SIGNED_INT");
  FACT(n::kValueUnsignedShort, 6, "NVML_VALUE_TYPE_UNSIGNED_SHORT");
  FACT(sizeof(n::Value), 8, "sizeof(nvmlValue_t)");
  FACT(sizeof(simNvmlValue), 8, "sizeof(nvmlValue_t), the simulator's");
  FACT(offsetof(n::FieldValue, value), 32, "offsetof(nvmlFieldValue_t, value)");
  FACT(sizeof(n::FieldValue), 40, "sizeof(nvmlFieldValue_t)");

  // nvmlDeviceGetAddressingMode (l.5068): nvmlDeviceAddressingMode_v1_t { version; value } (l.397-405).
  FACT(sizeof(n::AddressingMode), 8, "sizeof(nvmlDeviceAddressingMode_v1_t)");
  FACT(offsetof(n::AddressingMode, value), 4, "offsetof(nvmlDeviceAddressingMode_v1_t, value)");
  FACT(n::kAddressingModeVersion, 0x01000008, "nvmlDeviceAddressingMode_v1 = NVML_STRUCT_VERSION(DeviceAddressingMode, 1)");
  FACT(kSimAddressingModeV1Version, 0x01000008, "the simulator's nvmlDeviceAddressingMode_v1");
  FACT(n::kAddressingModeNone, 0, "NVML_DEVICE_ADDRESSING_MODE_NONE, l.390");
  FACT(n::kAddressingModeHmm, 1, "NVML_DEVICE_ADDRESSING_MODE_HMM, l.391");
  FACT(n::kAddressingModeAts, 2, "NVML_DEVICE_ADDRESSING_MODE_ATS, l.392");

  // nvmlTemperature_v1_t { version; nvmlTemperatureSensors_t sensorType; int temperature } (l.5987-5996).
  FACT(sizeof(n::TemperatureV1), 12, "sizeof(nvmlTemperature_v1_t)");
  FACT(n::kTemperatureV1Version, 0x0100000C, "nvmlTemperature_v1");

  // Limits and return codes added after API 11.
  FACT(n::kNvlinkMaxLinks, 36, "NVML_NVLINK_MAX_LINKS, l.455 (18 before NVML 13.3)");
  FACT(n::kErrorResetTypeNotSupported, 30, "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED, l.1328");
  FACT(n::kErrorInvalidState, 29, "NVML_ERROR_INVALID_STATE, l.1327");
  FACT(n::kMigEnable, 1, "NVML_DEVICE_MIG_ENABLE, l.12488");

  // GPM: the array bound grew from 98 to 333 with NVML_GPM_METRICS_GET_VERSION still 1 (l.13784, l.13829).
  FACT(n::kGpmMetricArrayBound, 333, "NVML_GPM_METRIC_MAX");
  FACT(n::kGpmMetricsGetVersion, 1, "NVML_GPM_METRICS_GET_VERSION");
  FACT(n::kGpmNvlinkTotalRxPerSec, 60, "NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC, l.13515");
  FACT(n::kGpmNvlinkTotalTxPerSec, 61, "NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC, l.13516");
  FACT(sizeof(simNvmlGpmMetricsGet), sizeof(n::GpmMetricsGet), "the simulator's request is the same size");

  // Per-process utilisation, NVML 12+: nvmlDeviceGetProcessesUtilizationInfo (l.8575) takes
  // nvmlProcessesUtilizationInfo_v1_t { version; processSamplesCount; lastSeenTimeStamp;
  // procUtilArray } (l.1407-1413) of nvmlProcessUtilizationInfo_v1_t { timeStamp; pid; sm; mem;
  // enc; dec; jpg; ofa } (l.1392-1402); NVML_ERROR_NOT_FOUND when no sample is newer than
  // lastSeenTimeStamp (l.8567); not supported in MIG mode (l.8512, l.8557).
  FACT(sizeof(n::ProcessUtilizationInfoV1), 40, "sizeof(nvmlProcessUtilizationInfo_v1_t)");
  FACT(offsetof(n::ProcessUtilizationInfoV1, pid), 8, "offsetof(nvmlProcessUtilizationInfo_v1_t, pid)");
  FACT(offsetof(n::ProcessUtilizationInfoV1, ofaUtil), 32, "offsetof(nvmlProcessUtilizationInfo_v1_t, ofaUtil)");
  FACT(sizeof(n::ProcessesUtilizationInfoV1), 24, "sizeof(nvmlProcessesUtilizationInfo_v1_t)");
  FACT(offsetof(n::ProcessesUtilizationInfoV1, lastSeenTimeStamp), 8, "offsetof(nvmlProcessesUtilizationInfo_v1_t, lastSeenTimeStamp)");
  FACT(offsetof(n::ProcessesUtilizationInfoV1, procUtilArray), 16, "offsetof(nvmlProcessesUtilizationInfo_v1_t, procUtilArray)");
  FACT(n::kProcessesUtilizationInfoV1Version, 0x01000018, "nvmlProcessesUtilizationInfo_v1, l.1415");
  FACT(kSimProcessesUtilizationInfoV1Version, 0x01000018, "the simulator's nvmlProcessesUtilizationInfo_v1");
  FACT(sizeof(simNvmlProcessUtilizationInfoV1), 40, "the simulator's nvmlProcessUtilizationInfo_v1_t");
  FACT(sizeof(n::ProcessUtilizationSample), 32, "sizeof(nvmlProcessUtilizationSample_t), l.1379-1387");

  // MIG: nvmlDeviceAttributes_t (l.362-373; nvmlDeviceGetAttributes_v2 l.4593 "currently only
  // supports MIG device handles", l.4578); nvmlGpmMigSampleGet (l.13943, pairs > 100 ms apart,
  // l.13932); the process/event instance id outside MIG is 0xFFFFFFFF (l.310-311).
  FACT(sizeof(n::DeviceAttributes), 40, "sizeof(nvmlDeviceAttributes_t)");
  FACT(offsetof(n::DeviceAttributes, gpuInstanceSliceCount), 24, "offsetof(nvmlDeviceAttributes_t, gpuInstanceSliceCount)");
  FACT(offsetof(n::DeviceAttributes, memorySizeMB), 32, "offsetof(nvmlDeviceAttributes_t, memorySizeMB)");
  FACT(sizeof(simNvmlDeviceAttributes), 40, "the simulator's nvmlDeviceAttributes_t");
  FACT(n::kNoInstanceId, 0xFFFFFFFFU, "gpuInstanceId/computeInstanceId outside MIG");

  std::printf("nvml newest facts: %d checks passed\n", checks);
  return 0;
}
