// What one sample of every device looks like in memory, and the words used to describe a value:
// its status and its source. Plain C++: nothing here knows that JavaScript exists.
#pragma once

#include <bitset>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace gt {

enum class Field : uint16_t {
#define GT_FIELD(id, name) id,
#include "fields.def"
#undef GT_FIELD
  Count
};
constexpr size_t kFieldCount = static_cast<size_t>(Field::Count);
constexpr size_t idx(Field f) { return static_cast<size_t>(f); }
const char* fieldName(Field f);
using FieldMask = std::bitset<kFieldCount>;

// Whether a value is real. The numbers are part of the JS contract (FIELD_STATUSES in src/fields.ts, decoded in src/snapshot-decoder.ts).
enum class Status : uint8_t {
  Ok = 0,
  NotSupported = 1,
  NoPermission = 2,
  GpuLost = 3,
  Stale = 4,    // set by the reader when the sampler is stuck (never written by a source)
  Error = 5,
  Pending = 6,  // no reading yet: a rate needs two samples, a watched value its first update
};

// Where a value came from. Also part of the JS contract.
enum class Source : uint8_t {
  None = 0,
  Nvml = 1,
  Dcgm = 2,
  Gpm = 3,
  Meminfo = 4,
  Derived = 5,
};

// Vendor return codes are kept beside each value; these negative codes are ours.
constexpr int32_t kCodeSymbolMissing = -1;  // the loaded library does not export the call
constexpr int32_t kCodeNotProbed = -2;      // no source was asked for this field
constexpr int32_t kCodeCounterReset = -3;   // a cumulative counter went backwards (reset/wrap)
constexpr int32_t kCodeHung = -4;           // the call did not return in time (set by the reader)
constexpr int32_t kCodeUnifiedMemory = -5;  // meaningless on a unified-memory part (GB10 on NVLink-C2C)
constexpr int32_t kCodeMeminfoError = -6;   // /proc/meminfo could not be read or parsed
constexpr int32_t kCodeNotFinite = -7;      // a source answered success with NaN or infinity
constexpr int32_t kCodeNoReadingYet = -8;   // asked, no answer yet (per-process utilisation's first poll)
// NVML answered a field value in a value type this build does not know (a newer driver): the code
// is kCodeUnknownValueTypeBase - type, so the reason can name the type.
constexpr int32_t kCodeUnknownValueTypeBase = -100;
constexpr int32_t unknownValueTypeCode(int type) { return kCodeUnknownValueTypeBase - (type < 0 ? 0 : type > 255 ? 255 : type); }
// DCGM answers with its own (negative) return codes; its in-band sentinels get positive codes:
// kCodeDcgmBlank + 0 BLANK (no update cycle yet), +1 NOT_FOUND, +2 NOT_SUPPORTED, +3 NOT_PERMISSIONED.
constexpr int32_t kCodeDcgmBlank = 1000;
constexpr int32_t kCodeDcgmWrongType = 1010;  // the value has a type the field never has
constexpr int32_t kCodeDcgmOld = 1011;        // DCGM has not refreshed the value for several cycles
// NVML GPM has no pair of samples at least 100 ms apart yet (after open or after a loss).
constexpr int32_t kCodeGpmPairPending = 1100;

constexpr size_t kMaxLinks = 36;       // NVLink links per device (NVML_NVLINK_MAX_LINKS, NVML 13.3)
constexpr size_t kLinkStride = 3;      // state, txBytesPerSecond, rxBytesPerSecond
constexpr size_t kMaxProcesses = 64;   // processes reported per device (the 64 using the most memory); more sets `truncated`
// One process: pid, usedMemoryBytes, the MIG GPU/compute instance it runs in (-1: none), then its
// SM / memory / encoder / decoder utilisation (0-1; NaN: not read, see kDevProcessUtilCode).
enum ProcessSlot : size_t {
  kProcPid = 0, kProcUsedMemory, kProcGpuInstance, kProcComputeInstance, kProcSmUtil, kProcMemUtil, kProcEncUtil,
  kProcDecUtil, kProcessStride
};

// MIG devices (one per compute instance) kept per GPU: NVML has at most 7 GPU instances on the
// parts shipped so far (8-slice profiles exist in NVML 13): more sets kDevMigTruncated.
constexpr size_t kMaxMigDevices = 8;
// What a frame holds per MIG device: the instance's own readings (the names are the device
// fields' of the same meaning, so JS reads them with the device catalogue).
#define GT_MIG_FIELDS(X)                                                                      \
  X(MemoryTotalBytes) X(MemoryUsedBytes) X(MemoryFreeBytes) X(ProcessCount) X(GpuProcessMemoryBytes) \
  X(GrEngineActiveRatio) X(SmActiveRatio) X(SmOccupancyRatio) X(TensorActiveRatio) X(DramActiveRatio) \
  X(Fp64ActiveRatio) X(Fp32ActiveRatio) X(Fp16ActiveRatio)
enum class MigField : uint16_t {
#define GT_MIG_ENUM(f) f,
  GT_MIG_FIELDS(GT_MIG_ENUM)
#undef GT_MIG_ENUM
  Count
};
constexpr size_t kMigFieldCount = static_cast<size_t>(MigField::Count);
constexpr size_t idx(MigField f) { return static_cast<size_t>(f); }
// Per MIG device, beside its fields.
enum MigMeta : size_t {
  kMigPresent = 0,        // 1 when this slot holds a MIG device
  kMigGpuInstanceId,      // NVML's GPU instance id (GPU_I_ID)
  kMigComputeInstanceId,  // NVML's compute instance id
  kMigSliceCount,         // GPU instance slices (the "1g" of 1g.10gb; -1 unknown)
  kMigMemorySizeMB,       // the instance's memory size in MiB (the "10gb": rounded up to GiB; -1 unknown)
  kMigIndex,              // the index nvmlDeviceGetMigDeviceHandleByIndex answered for
  kMigMetaStride
};

// Per-device health, beside the fields.
enum class DeviceState : uint8_t { Ok = 0, Lost = 1, Error = 2 };
enum DeviceMeta : size_t {
  kDevState = 0,         // DeviceState
  kDevProcessCount,      // processes listed (<= kMaxProcesses)
  kDevProcessTruncated,  // 1 when the driver reported more than we keep
  kDevLinkCount,         // links the device has (0..kMaxLinks)
  kDevLostCode,          // vendor code that marked it lost/errored
  kDevMigMode,           // 1 MIG enabled, 0 disabled, -1 unknown (no MIG on this GPU or driver)
  kDevNvlinkFailedLink,  // the first up link whose counters failed this sample (-1: none)
  kDevProcessUtilCode,   // per-process utilisation: 0 read, else why not (vendor code, kCodeHung, kCodeNotProbed: off)
  kDevProcessUtilMs,     // how long the utilisation call has been in flight (kCodeHung), else the age of its last answer
  kDevMigCount,          // MIG devices in the frame (0..kMaxMigDevices)
  kDevMigCode,           // why the MIG devices could not be listed (0: listed; vendor code of the failed call)
  kDevMigGeneration,     // +1 each time the MIG devices were listed anew (their UUIDs: Sampler::migNames)
  kDevMigTruncated,      // 1 when the GPU has more MIG devices than the frame keeps
  kDevMetaStride
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One sample of every device: struct-of-arrays so it copies into JS typed arrays with memcpy.
struct SampleFrame {
  size_t devices = 0;
  std::vector<double> values;      // devices × kFieldCount
  std::vector<int32_t> codes;      // devices × kFieldCount: vendor return code of the last read
  std::vector<uint8_t> status;     // devices × kFieldCount: Status
  std::vector<uint8_t> source;     // devices × kFieldCount: Source
  std::vector<double> links;       // devices × kMaxLinks × kLinkStride
  std::vector<double> processes;   // devices × kMaxProcesses × kProcessStride
  std::vector<double> deviceMeta;  // devices × kDevMetaStride
  std::vector<double> migValues;   // devices × kMaxMigDevices × kMigFieldCount
  std::vector<int32_t> migCodes;   // the same shape: vendor return code of the last read
  std::vector<uint8_t> migStatus;  // the same shape: Status
  std::vector<uint8_t> migSource;  // the same shape: Source
  std::vector<double> migMeta;     // devices × kMaxMigDevices × kMigMetaStride

  void resize(size_t deviceCount) {
    devices = deviceCount;
    values.assign(devices * kFieldCount, kNaN);
    codes.assign(devices * kFieldCount, kCodeNotProbed);
    status.assign(devices * kFieldCount, static_cast<uint8_t>(Status::NotSupported));
    source.assign(devices * kFieldCount, static_cast<uint8_t>(Source::None));
    links.assign(devices * kMaxLinks * kLinkStride, kNaN);
    processes.assign(devices * kMaxProcesses * kProcessStride, kNaN);
    deviceMeta.assign(devices * kDevMetaStride, 0.0);
    migValues.assign(devices * kMaxMigDevices * kMigFieldCount, kNaN);
    migCodes.assign(devices * kMaxMigDevices * kMigFieldCount, kCodeNotProbed);
    migStatus.assign(devices * kMaxMigDevices * kMigFieldCount, static_cast<uint8_t>(Status::NotSupported));
    migSource.assign(devices * kMaxMigDevices * kMigFieldCount, static_cast<uint8_t>(Source::None));
    migMeta.assign(devices * kMaxMigDevices * kMigMetaStride, 0.0);
  }
};

// A view of one device's row in a frame: what a source writes through.
class DeviceRow {
 public:
  DeviceRow(SampleFrame& frame, size_t device) : frame_(frame), device_(device) {}

  void set(Field f, double value, Source src, int32_t code = 0) {
    const size_t i = slot(f);
    frame_.values[i] = value;
    frame_.status[i] = static_cast<uint8_t>(Status::Ok);
    frame_.source[i] = static_cast<uint8_t>(src);
    frame_.codes[i] = code;
  }
  void fail(Field f, Status st, Source src, int32_t code) {
    const size_t i = slot(f);
    frame_.values[i] = kNaN;
    frame_.status[i] = static_cast<uint8_t>(st);
    frame_.source[i] = static_cast<uint8_t>(src);
    frame_.codes[i] = code;
  }
  Status status(Field f) const { return static_cast<Status>(frame_.status[slot(f)]); }
  double value(Field f) const { return frame_.values[slot(f)]; }
  int32_t code(Field f) const { return frame_.codes[slot(f)]; }

  double* link(size_t l) { return &frame_.links[(device_ * kMaxLinks + l) * kLinkStride]; }
  double* process(size_t p) { return &frame_.processes[(device_ * kMaxProcesses + p) * kProcessStride]; }
  double& meta(DeviceMeta m) { return frame_.deviceMeta[device_ * kDevMetaStride + m]; }
  size_t device() const { return device_; }

  // MIG device slot `m` of this GPU.
  void setMig(size_t m, MigField f, double value, Source src) {
    const size_t i = migSlot(m, f);
    frame_.migValues[i] = value;
    frame_.migStatus[i] = static_cast<uint8_t>(Status::Ok);
    frame_.migSource[i] = static_cast<uint8_t>(src);
    frame_.migCodes[i] = 0;
  }
  void failMig(size_t m, MigField f, Status st, Source src, int32_t code) {
    const size_t i = migSlot(m, f);
    frame_.migValues[i] = kNaN;
    frame_.migStatus[i] = static_cast<uint8_t>(st);
    frame_.migSource[i] = static_cast<uint8_t>(src);
    frame_.migCodes[i] = code;
  }
  double& migMeta(size_t m, MigMeta k) { return frame_.migMeta[(device_ * kMaxMigDevices + m) * kMigMetaStride + k]; }

 private:
  size_t slot(Field f) const { return device_ * kFieldCount + idx(f); }
  size_t migSlot(size_t m, MigField f) const { return (device_ * kMaxMigDevices + m) * kMigFieldCount + idx(f); }
  SampleFrame& frame_;
  size_t device_;
};

}  // namespace gt
