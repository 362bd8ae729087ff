// The simulator's view of the NVML ABI: what a driver hands back. Written separately from
// native/vendor/nvml_abi.h on purpose (a shared header would hide a shared mistake); both are
// checked against NVIDIA's nvml.h by test/abi.
#pragma once

#include <cstdint>

extern "C" {

typedef int simNvmlReturn;
typedef struct simNvmlDevice* simNvmlDevice_t;

enum {
  SIM_NVML_SUCCESS = 0,
  SIM_NVML_ERROR_UNINITIALIZED = 1,
  SIM_NVML_ERROR_INVALID_ARGUMENT = 2,
  SIM_NVML_ERROR_NOT_SUPPORTED = 3,
  SIM_NVML_ERROR_NO_PERMISSION = 4,
  SIM_NVML_ERROR_NOT_FOUND = 6,
  SIM_NVML_ERROR_INSUFFICIENT_SIZE = 7,
  SIM_NVML_ERROR_DRIVER_NOT_LOADED = 9,
  SIM_NVML_ERROR_TIMEOUT = 10,
  SIM_NVML_ERROR_GPU_IS_LOST = 15,
  SIM_NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
  SIM_NVML_ERROR_UNKNOWN = 999,
};

struct simNvmlMemory {  // nvmlMemory_t
  unsigned long long total, free, used;
};
struct simNvmlMemoryV2 {  // nvmlMemory_v2_t
  unsigned int version;
  unsigned long long total, reserved, free, used;
};
struct simNvmlUtilization {  // nvmlUtilization_t
  unsigned int gpu, memory;
};
struct simNvmlPciInfo {  // nvmlPciInfo_t
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
};
struct simNvmlProcessInfoV1 {  // nvmlProcessInfo_v1_t
  unsigned int pid;
  unsigned long long usedGpuMemory;
};
struct simNvmlProcessInfoV2 {  // nvmlProcessInfo_v2_t
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
};
union simNvmlValue {  // nvmlValue_t
  double dVal;
  int siVal;             // NVML 12+
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  long long sllVal;
  unsigned short usVal;  // NVML 12.x: NVML_VALUE_TYPE_UNSIGNED_SHORT
};
struct simNvmlFieldValue {  // nvmlFieldValue_t
  unsigned int fieldId, scopeId;
  long long timestamp, latencyUsec;
  int valueType;
  simNvmlReturn nvmlReturn;
  simNvmlValue value;
};
typedef struct simNvmlEventSet* simNvmlEventSet_t;
struct simNvmlEventData {  // nvmlEventData_t
  simNvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;
  unsigned int gpuInstanceId, computeInstanceId;
};
typedef struct simNvmlGpmSample* simNvmlGpmSample_t;
struct simNvmlGpmMetric {  // nvmlGpmMetric_t
  unsigned int metricId;
  simNvmlReturn nvmlReturn;
  double value;
  struct {
    char* shortName;
    char* longName;
    char* unit;
  } metricInfo;
};
struct simNvmlGpmMetricsGet {  // nvmlGpmMetricsGet_t (version 1)
  unsigned int version;
  unsigned int numMetrics;
  simNvmlGpmSample_t sample1;
  simNvmlGpmSample_t sample2;
  simNvmlGpmMetric metrics[333];  // NVML 13's NVML_GPM_METRIC_MAX (98 before; version still 1)
};
struct simNvmlGpmSupport {  // nvmlGpmSupport_t
  unsigned int version;
  unsigned int isSupportedDevice;
};
struct simNvmlAddressingMode {  // nvmlDeviceAddressingMode_v1_t (NVML 12.6+)
  unsigned int version;
  unsigned int value;  // 0 none, 1 HMM, 2 ATS
};
struct simNvmlTemperatureV1 {  // nvmlTemperature_v1_t
  unsigned int version;
  int sensorType;
  int temperature;
};
struct simNvmlProcessUtilizationSample {  // nvmlProcessUtilizationSample_t
  unsigned int pid;
  unsigned long long timeStamp;  // µs, CPU clock
  unsigned int smUtil, memUtil, encUtil, decUtil;
};
struct simNvmlProcessUtilizationInfoV1 {  // nvmlProcessUtilizationInfo_v1_t (NVML 12+)
  unsigned long long timeStamp;
  unsigned int pid, smUtil, memUtil, encUtil, decUtil, jpgUtil, ofaUtil;
};
struct simNvmlProcessesUtilizationInfoV1 {  // nvmlProcessesUtilizationInfo_v1_t (NVML 12+)
  unsigned int version;
  unsigned int processSamplesCount;
  unsigned long long lastSeenTimeStamp;
  simNvmlProcessUtilizationInfoV1* procUtilArray;
};
struct simNvmlDeviceAttributes {  // nvmlDeviceAttributes_t
  unsigned int multiprocessorCount, sharedCopyEngineCount, sharedDecoderCount, sharedEncoderCount, sharedJpegCount,
      sharedOfaCount, gpuInstanceSliceCount, computeInstanceSliceCount;
  unsigned long long memorySizeMB;
};

}  // extern "C"

constexpr unsigned int simStructVersion(unsigned long size, unsigned int v) {
  return static_cast<unsigned int>(size) | (v << 24U);
}
constexpr unsigned int kSimMemoryV2Version = simStructVersion(sizeof(simNvmlMemoryV2), 2);
constexpr unsigned int kSimAddressingModeV1Version = simStructVersion(sizeof(simNvmlAddressingMode), 1);
constexpr unsigned int kSimTemperatureV1Version = simStructVersion(sizeof(simNvmlTemperatureV1), 1);
constexpr unsigned int kSimProcessesUtilizationInfoV1Version = simStructVersion(sizeof(simNvmlProcessesUtilizationInfoV1), 1);
