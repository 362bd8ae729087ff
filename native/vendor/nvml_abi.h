// Our own minimal declarations of the parts of NVIDIA's NVML C ABI that this project calls.
//
// Nothing here is copied from nvml.h: names are ours, values and layouts are NVIDIA's ABI facts.
// test/abi/nvml_abi_check.cc compiles these declarations next to the real /usr/include/nvml.h
// (Debian's libnvidia-ml-dev, NVML API 11) and checks every size, offset and constant; facts only
// newer headers have (NVML 12/13) are marked "NVML 12+"/"NVML 13" and were read from NVIDIA's
// newest published header (NVIDIA/go-nvml gen/nvml/nvml.h, NVML_API_VERSION 13, commit 2f9e261);
// test/abi/nvml_newest_facts.cc pins each of them as a number, and nvml_abi_check.cc also checks
// them against any newer nvml.h given in GPU_TELEMETRY_NVML_INCLUDE.
//
// No vendor header or library is needed to build: everything is resolved at run time (loader.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace gt::nvml {

using Return = int;  // nvmlReturn_t: a C enum, int-sized on every ABI NVIDIA ships
struct DeviceOpaque;
using Device = DeviceOpaque*;  // nvmlDevice_t
struct EventSetOpaque;
using EventSet = EventSetOpaque*;  // nvmlEventSet_t
struct GpmSampleOpaque;
using GpmSample = GpmSampleOpaque*;  // nvmlGpmSample_t

// nvmlReturn_t values.
enum : Return {
  kSuccess = 0,
  kErrorUninitialized = 1,
  kErrorInvalidArgument = 2,
  kErrorNotSupported = 3,
  kErrorNoPermission = 4,
  kErrorAlreadyInitialized = 5,
  kErrorNotFound = 6,
  kErrorInsufficientSize = 7,
  kErrorInsufficientPower = 8,
  kErrorDriverNotLoaded = 9,
  kErrorTimeout = 10,
  kErrorIrqIssue = 11,
  kErrorLibraryNotFound = 12,
  kErrorFunctionNotFound = 13,
  kErrorCorruptedInforom = 14,
  kErrorGpuIsLost = 15,
  kErrorResetRequired = 16,
  kErrorOperatingSystem = 17,
  kErrorLibRmVersionMismatch = 18,
  kErrorInUse = 19,
  kErrorMemory = 20,
  kErrorNoData = 21,
  kErrorVgpuEccNotSupported = 22,
  kErrorInsufficientResources = 23,
  kErrorFreqNotSupported = 24,
  kErrorArgumentVersionMismatch = 25,
  kErrorDeprecated = 26,
  kErrorNotReady = 27,
  kErrorGpuNotFound = 28,
  kErrorInvalidState = 29,  // NVML 12+
  kErrorResetTypeNotSupported = 30,  // NVML 13
  kErrorUnknown = 999,
};

// Versioned structs carry (sizeof | version << 24) in their first member (NVML_STRUCT_VERSION).
constexpr unsigned int structVersion(std::size_t size, unsigned int version) {
  return static_cast<unsigned int>(size) | (version << 24U);
}

// Buffer sizes (NVML_*_BUFFER_SIZE).
constexpr unsigned int kNameBufferSize = 96;           // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned int kUuidBufferSize = 96;           // NVML_DEVICE_UUID_V2_BUFFER_SIZE
constexpr unsigned int kVersionBufferSize = 80;        // NVML_SYSTEM_{DRIVER,NVML}_VERSION_BUFFER_SIZE
constexpr unsigned int kPciBusIdBufferSize = 32;       // NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE
constexpr unsigned int kPciBusIdLegacyBufferSize = 16; // NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE
constexpr unsigned int kNvlinkMaxLinks = 36;           // NVML_NVLINK_MAX_LINKS (NVML 13.3; 18 before)

// nvmlMemory_t
struct Memory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

// nvmlMemory_v2_t (version member must be kMemoryV2Version)
struct MemoryV2 {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
};
constexpr unsigned int kMemoryV2Version = structVersion(sizeof(MemoryV2), 2);

// nvmlUtilization_t (percent)
struct Utilization {
  unsigned int gpu;
  unsigned int memory;
};

// nvmlPciInfo_t (the _v3 query fills all of it)
struct PciInfo {
  char busIdLegacy[kPciBusIdLegacyBufferSize];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[kPciBusIdBufferSize];
};

// nvmlProcessInfo_v1_t: filled by nvmlDeviceGetComputeRunningProcesses (unversioned).
struct ProcessInfoV1 {
  unsigned int pid;
  unsigned long long usedGpuMemory;
};

// nvmlProcessInfo_v2_t: filled by the _v2 and _v3 process queries.
struct ProcessInfoV2 {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
// usedGpuMemory when the driver cannot tell (NVML_VALUE_NOT_AVAILABLE).
constexpr unsigned long long kValueNotAvailable = ~0ULL;

// nvmlValue_t (a union: the value type says which member the driver wrote)
union Value {
  double dVal;
  int siVal;              // NVML 12+
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  long long sllVal;
  unsigned short usVal;   // NVML 12+
};

// nvmlValueType_t. A driver newer than this build may answer with a type we do not know: such a
// value is an error with the type named, never a number.
enum ValueType : int {
  kValueDouble = 0,
  kValueUnsignedInt = 1,
  kValueUnsignedLong = 2,
  kValueUnsignedLongLong = 3,
  kValueSignedLongLong = 4,
  kValueSignedInt = 5,     // NVML 12+
  kValueUnsignedShort = 6, // NVML 12+
};

// nvmlFieldValue_t
struct FieldValue {
  unsigned int fieldId;
  unsigned int scopeId;
  long long timestamp;    // µs since the epoch
  long long latencyUsec;
  int valueType;          // ValueType
  Return nvmlReturn;
  Value value;
};

// Field ids (NVML_FI_*) this project reads through nvmlDeviceGetFieldValues: the one table of
// them (the simulator answers by number on its own; both are pinned by the ABI tests).
enum FieldId : unsigned int {
  kFiMemoryTemp = 82,                 // °C
  kFiTotalEnergyConsumption = 83,     // mJ
  kFiNvlinkLinkCount = 91,
  kFiRetiredPendingSbe = 92,
  kFiRetiredPendingDbe = 93,
  kFiPcieReplayCounter = 94,
  kFiNvlinkThroughputDataTx = 138,    // KiB, cumulative; scopeId = link
  kFiNvlinkThroughputDataRx = 139,
  kFiRemappedCorrectable = 142,
  kFiRemappedUncorrectable = 143,
  kFiRemappedPending = 144,
  kFiRemappedFailure = 145,
  kFiNvlinkGetState = 165,            // scopeId = link
  // 196 is NVML_FI_DEV_TEMPERATURE_GPU_MAX_TLIMIT, a constant threshold in Celsius: never read as
  // a counter (an earlier version of this table had the PCIe counters one id too low).
  kFiTemperatureGpuMaxTlimit = 196,   // NVML 12+ (not read; named so the mistake cannot come back)
  kFiPcieCountTxBytes = 197,          // NVML 12+: bytes, cumulative, "can be wrapped"
  kFiPcieCountRxBytes = 198,          // NVML 12+
};

// nvmlTemperatureSensors_t / nvmlClockType_t / ECC selectors / PCIe counters / enable state
constexpr int kTemperatureGpu = 0;
constexpr int kClockGraphics = 0;
constexpr int kClockSm = 1;
constexpr int kClockMem = 2;
constexpr int kMemoryErrorCorrected = 0;
constexpr int kMemoryErrorUncorrected = 1;
constexpr int kVolatileEcc = 0;
constexpr int kAggregateEcc = 1;
constexpr int kPcieUtilTxBytes = 0;
constexpr int kPcieUtilRxBytes = 1;
constexpr int kFeatureDisabled = 0;
constexpr int kFeatureEnabled = 1;
constexpr unsigned int kPstateUnknown = 32;  // NVML_PSTATE_UNKNOWN

// nvmlEventData_t (nvmlEventSetWait_v2)
struct EventData {
  Device device;
  unsigned long long eventType;
  unsigned long long eventData;  // the XID code for kEventTypeXidCriticalError (999: unknown XID)
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
constexpr unsigned long long kEventTypeSingleBitEccError = 0x1;
constexpr unsigned long long kEventTypeDoubleBitEccError = 0x2;
constexpr unsigned long long kEventTypeXidCriticalError = 0x8;

// nvmlDeviceAddressingMode_v1_t for nvmlDeviceGetAddressingMode (NVML 12.6+/13): whether system
// memory is addressable from the GPU through HMM (software page-table mirroring, also on discrete
// x86 cards) or ATS (one set of page tables over a coherent link: Grace Hopper, GB10).
struct AddressingMode {
  unsigned int version;
  unsigned int value;
};
constexpr unsigned int kAddressingModeVersion = structVersion(sizeof(AddressingMode), 1);
constexpr unsigned int kAddressingModeNone = 0;
constexpr unsigned int kAddressingModeHmm = 1;
constexpr unsigned int kAddressingModeAts = 2;

// nvmlDeviceGetMigMode current/pending mode values (NVML_DEVICE_MIG_DISABLE / _ENABLE).
constexpr unsigned int kMigDisable = 0;
constexpr unsigned int kMigEnable = 1;

// ---- per-process utilisation ----
// nvmlProcessUtilizationSample_t, filled by nvmlDeviceGetProcessUtilization (unversioned, NVML 5+).
// Utilisations are percent over the driver's last sample period; timeStamp is the CPU time of that
// sample in µs. The driver lists only processes with a non-zero utilisation in that period.
struct ProcessUtilizationSample {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
};

// nvmlProcessUtilizationInfo_v1_t (NVML 12+): the entries of nvmlDeviceGetProcessesUtilizationInfo.
struct ProcessUtilizationInfoV1 {
  unsigned long long timeStamp;
  unsigned int pid;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
  unsigned int jpgUtil;
  unsigned int ofaUtil;
};

// nvmlProcessesUtilizationInfo_v1_t (NVML 12+), version kProcessesUtilizationInfoV1Version.
struct ProcessesUtilizationInfoV1 {
  unsigned int version;
  unsigned int processSamplesCount;       // in: entries procUtilArray holds; out: entries written (or needed)
  unsigned long long lastSeenTimeStamp;   // only samples newer than this (µs; 0: every sample the driver keeps)
  ProcessUtilizationInfoV1* procUtilArray;
};
constexpr unsigned int kProcessesUtilizationInfoV1Version = structVersion(sizeof(ProcessesUtilizationInfoV1), 1);

// ---- MIG (Ampere and later data-centre parts) ----
// nvmlDeviceAttributes_t, filled by nvmlDeviceGetAttributes_v2 for MIG device handles.
struct DeviceAttributes {
  unsigned int multiprocessorCount;
  unsigned int sharedCopyEngineCount;
  unsigned int sharedDecoderCount;
  unsigned int sharedEncoderCount;
  unsigned int sharedJpegCount;
  unsigned int sharedOfaCount;
  unsigned int gpuInstanceSliceCount;
  unsigned int computeInstanceSliceCount;
  unsigned long long memorySizeMB;  // MiB
};
// gpuInstanceId / computeInstanceId of a process or event outside any MIG instance.
constexpr unsigned int kNoInstanceId = 0xFFFFFFFFU;

// nvmlTemperature_v1_t for nvmlDeviceGetTemperatureV (NVML 12.8+).
struct TemperatureV1 {
  unsigned int version;
  int sensorType;
  int temperature;
};
constexpr unsigned int kTemperatureV1Version = structVersion(sizeof(TemperatureV1), 1);

// ---- GPM (GPU Performance Monitoring, Hopper and later) ----
// nvmlGpmMetricId_t values this project reads. Utilisations are percent (0-100), rates MiB/s.
enum GpmMetricId : unsigned int {
  kGpmGraphicsUtil = 1,
  kGpmSmUtil = 2,
  kGpmSmOccupancy = 3,
  kGpmAnyTensorUtil = 5,
  kGpmDramBwUtil = 10,
  kGpmFp64Util = 11,
  kGpmFp32Util = 12,
  kGpmFp16Util = 13,
  kGpmPcieTxPerSec = 20,
  kGpmPcieRxPerSec = 21,
  kGpmNvlinkTotalRxPerSec = 60,
  kGpmNvlinkTotalTxPerSec = 61,
};
// The bound of nvmlGpmMetricsGet_t's metrics array. NVIDIA grew NVML_GPM_METRIC_MAX from 98
// (NVML 11/12) to 333 (NVML 13) without changing NVML_GPM_METRICS_GET_VERSION (still 1): our
// struct has the newest, larger bound, so a library built with either size never reaches past
// its end (an older one only reads the first numMetrics entries).
constexpr unsigned int kGpmMetricArrayBound = 333;
constexpr unsigned int kGpmMetricMaxNvml11 = 98;  // the bound in Debian's API-11 header (checked)

// nvmlGpmMetric_t
struct GpmMetric {
  unsigned int metricId;
  Return nvmlReturn;
  double value;
  struct {
    char* shortName;
    char* longName;
    char* unit;
  } metricInfo;
};

// nvmlGpmMetricsGet_t, version 1 (NVML_GPM_METRICS_GET_VERSION)
struct GpmMetricsGet {
  unsigned int version;
  unsigned int numMetrics;
  GpmSample sample1;
  GpmSample sample2;
  GpmMetric metrics[kGpmMetricArrayBound];
};
constexpr unsigned int kGpmMetricsGetVersion = 1;

// nvmlGpmSupport_t, version 1 (NVML_GPM_SUPPORT_VERSION)
struct GpmSupport {
  unsigned int version;
  unsigned int isSupportedDevice;
};
constexpr unsigned int kGpmSupportVersion = 1;

}  // namespace gt::nvml
