// A simulator scenario: the devices, how their load moves over time, and the faults to inject.
// Parsed from JSON (scenarios/*.json) with errors that name the offending path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gtsim {

struct LoadShape {
  enum class Kind { Constant, Cycle, Square, Sequence };
  Kind kind = Kind::Cycle;
  double min = 0.1;
  double max = 0.9;
  double periodMs = 20000;
  double phaseMs = 0;
  double duty = 0.5;      // Square: fraction of the period at `max`
  double noise = 0.02;    // amplitude of the deterministic per-tick jitter
  double stepMs = 1000;   // Sequence: how long each value lasts
  std::vector<double> values;  // Sequence: the values, repeated
};

struct ProcessSpec {
  unsigned int pid = 0;
  double usedMemoryBytes = 0;  // < 0: the driver cannot tell (NVML_VALUE_NOT_AVAILABLE)
  // Memory that follows the load on top of usedMemoryBytes (a KV cache): used = base + growth × load.
  double growthBytes = 0;
  // The share of the GPU's (or MIG instance's) SM and memory-copy utilisation this process causes
  // (0-1); < 0: in proportion to its memory among the processes listed.
  double utilShare = -1;
};

// One MIG device (a compute instance in its GPU instance) while MIG mode is on.
struct MigInstanceSpec {
  std::string profile;             // "1g.10gb": the slices before "g" are the GPU instance's
  unsigned int sliceCount = 1;     // from the profile
  double memoryMiB = 0;            // the GPU instance's memory (nvmlDeviceAttributes_t.memorySizeMB)
  unsigned int gpuInstanceId = 0;  // NVML's ids (nvidia-smi shows them as GI ID / CI ID)
  unsigned int computeInstanceId = 0;
  unsigned int index = 0;          // its nvmlDeviceGetMigDeviceHandleByIndex index
  double overheadBytes = 512.0 * 1048576;  // memory used besides the processes' (contexts)
  bool hasLoad = false;            // its own load shape; else the GPU's
  LoadShape load;
  std::vector<ProcessSpec> processes;
};

// Profiling activities (0-1) a GPU's counters report. Each follows its own shape when the
// scenario gives one, else a fixed fraction of the device load.
enum class Activity { GrEngine, SmActive, SmOccupancy, Tensor, Dram, Fp64, Fp32, Fp16, Count };

struct DeviceSpec {
  std::string name;
  double memoryTotalBytes = 0;
  double memoryReservedBytes = 0;
  enum class MemoryInfo { Ok, NotSupported, System } memoryInfo = MemoryInfo::Ok;
  int ccMajor = 9, ccMinor = 0;
  unsigned int pciDeviceId = 0x233010de;
  unsigned int pciBus = 0;  // assigned per device when 0
  bool hasPcie = true;
  unsigned int pcieGeneration = 5, pcieWidth = 16;
  double pcieMaxBytesPerSecond = 64e9;
  bool pcieCounters = true;     // NVML 12 PCIe byte-count field values (ids 197/198)
  // The byte counters "can be wrapped" (nvml.h): the width they wrap at, which is also the value
  // type the driver answers with (32: NVML_VALUE_TYPE_UNSIGNED_INT, 64: _UNSIGNED_LONG_LONG), and
  // where they start (near the wrap point, so a test sees a wrap within seconds).
  unsigned int pcieCounterBits = 64;
  double pcieCounterStartBytes = 0;
  // nvmlDeviceGetAddressingMode: 0 none, 1 HMM, 2 ATS (NVML 12.6+; the legacy driver lacks it).
  unsigned int addressingMode = 0;
  double smMaxMHz = 1980, memoryMaxMHz = 2619, graphicsMaxMHz = 1980;
  double smIdleMHz = 345, memoryIdleMHz = 2619;
  double idleWatts = 70, limitWatts = 700;
  double ambientCelsius = 30, maxCelsius = 80;
  bool hasMemoryTemperature = true;
  double memoryTemperatureOffset = 6;
  bool hasFan = false;
  bool hasEcc = true;
  double eccVolatileCorrected = 0, eccVolatileUncorrected = 0, eccAggregateCorrected = 0,
         eccAggregateUncorrected = 0;
  // Row remapping (Ampere and later, with ECC): counts and flags as NVML reports them.
  double remappedCorrectable = 0, remappedUncorrectable = 0;
  bool remapPending = false, remapFailure = false;
  bool hasEncoder = true, hasDecoder = true;
  unsigned int nvlinks = 0;      // up to 36 (NVML_NVLINK_MAX_LINKS since NVML 13.3)
  double nvlinkMaxBytesPerSecondPerLink = 25e9;
  std::vector<int> nvlinkDown;     // links that exist but are inactive: their counters answer NOT_SUPPORTED
  std::vector<int> nvlinkFailing;  // active links whose counters answer NVML_ERROR_UNKNOWN
  // How nvmlDeviceGetFieldValues answers NVML_FI_DEV_NVLINK_GET_STATE (165): "ok" (the link's
  // state), "not_supported" (a driver without the field: NCCL reads it only from Hopper on), or
  // "zero" (success and 0 for every link, whatever its state: a stand-in that fills in ids it does
  // not know).
  enum class LinkStateField { Ok, NotSupported, Zero } nvlinkStateField = LinkStateField::Ok;
  // MIG mode (Ampere and later data-centre parts). While it is on, whole-device utilisation is not
  // supported and memory / process queries need privileges (nvml.h notes on those calls).
  bool migCapable = false;
  bool migEnabled = false;
  std::string migWhenFileExists;  // when set, MIG mode is on only while this file exists
  bool migPrivileged = false;     // the caller may read aggregate memory / processes in MIG mode
  unsigned int migMaxDevices = 7; // nvmlDeviceGetMaxMigDeviceCount while MIG mode is on
  std::vector<MigInstanceSpec> migInstances;
  // While this file exists the GPU has the `migReconfigured` instances instead (instances were
  // destroyed and created: handles of the old ones are invalid, NVML hands out new ones).
  std::string migReconfigureWhenFileExists;
  std::vector<MigInstanceSpec> migReconfigured;
  // Value types the driver answers field values with, overriding the usual one (a test of the
  // types NVML added later, e.g. 6 = NVML_VALUE_TYPE_UNSIGNED_SHORT, or an unknown future type).
  std::vector<std::pair<unsigned int, int>> fieldValueTypes;
  LoadShape load;
  std::vector<ProcessSpec> processes;
  int gpm = -1;  // -1: by compute capability (Hopper 9.0 and later), 0 no, 1 yes
  bool hasProfileShape[static_cast<int>(Activity::Count)] = {};
  LoadShape profile[static_cast<int>(Activity::Count)];
};

struct FaultSpec {
  enum class Kind { GpuLost, Hang, Error, Slow, DriverGone, DcgmDown };
  Kind kind = Kind::Error;
  int device = -1;          // -1: every device
  std::string call = "*";   // NVML symbol name, or "*" for every call
  double atMs = 0;          // from scenario start
  double durationMs = -1;   // -1: until the end (a hang with -1 never returns)
  int code = 0;             // Error/DriverGone: the return code
  double delayMs = 0;       // Slow: added to every matching call
  // When set, the fault is active only while this file exists: a test (or an operator trying an
  // alert) triggers it at a moment it controls instead of racing a timer.
  std::string whenFileExists;
};

// XID events the driver reports: `count` events, `ratePerSecond` apart, from `atMs` on.
struct XidSpec {
  int device = 0;
  double atMs = 0;
  unsigned int code = 79;
  double count = 1;
  double ratePerSecond = 1;
  // When set, the events start once this file exists (atMs then counts from when it was seen).
  std::string whenFileExists;
};

// The machine's DCGM, when it has one (the scenario's "dcgm" key; absent: DCGM is not installed).
struct DcgmSpec {
  bool present = false;
  bool embedded = true;  // dcgmStartEmbedded works (else it answers DCGM_ST_INIT_ERROR)
  // Addresses a running nv-hostengine listens and answers on (dcgmConnect_v2, and
  // gtsim_dcgm_listening); any other is unreachable: connecting to it takes the whole connect
  // timeout, as DCGM's client retries until then. Default: no nv-hostengine is running.
  std::vector<std::string> hostengines;
  bool profiling = true;                     // the profiling fields (1001-1012) can be watched
  // Another host engine (an nv-hostengine we are not connected to, or another process's
  // embedded one, e.g. a dcgm-exporter pod) or a profiler holds the GPUs' profiling counters:
  // a profiling watch through our embedded engine answers `profilingHeldCode` (DCGM_ST_IN_USE
  // -34 or DCGM_ST_PROFILING_LIBRARY_ERROR -37). Through a connection to one of `hostengines`
  // it works: that engine is the holder, and sharing it is how DCGM is meant to be used.
  bool profilingHeld = false;
  int profilingHeldCode = -34;
  std::vector<int> noProfilingDevices;       // devices where watching them answers PROFILING_NOT_SUPPORTED
  std::vector<int> unsupportedFields;        // field ids answered with the NOT_SUPPORTED sentinel
};

// The simulated CUPTI (scenario key "cupti"): what cuptiGetVersion reports (and so the record
// layout written), what the simulated GPU runs, and the failure modes.
struct CuptiKernelSpec {
  std::string name = "_Z6kernelPfS_i";
  double durationUs = 20;
  int grid[3] = {128, 1, 1};
  int block[3] = {256, 1, 1};
  unsigned int registers = 32;
  unsigned int sharedBytes = 0;
};

struct CuptiSpec {
  bool present = false;
  unsigned int version = 130001;
  double kernelsPerSecond = 2000;
  std::vector<CuptiKernelSpec> kernels;
  double memcpyPerSecond = 0;
  double memsetPerSecond = 0;
  std::string stepRangeName;      // NVTX ranges the simulated application pushes
  double stepRangeEveryMs = 0;
  bool flood = false;             // records as fast as possible, floodRecords in all
  double floodRecords = 10e6;
  bool holdBuffers = false;       // completed buffers are returned only by a flush once every kind is disabled
  // While this file exists, completed buffers are never returned, not even by the flush after
  // every kind is disabled (a CUPTI that keeps them); the first flush after it is removed returns
  // them all. Absolute path; empty: off.
  std::string holdBuffersWhenFileExists;
  bool multipleSubscribers = false;  // cuptiSubscribe fails: another profiler holds CUPTI
  // Another CUPTI client (a profiler) subscribed in this process before ours: its name (what
  // cuptiSubscribe_v2 writes to oldSubscriberName) and whether it subscribed allowing other
  // subscribers (CUPTI 13.3's multi-subscriber mode).
  bool otherSubscriber = false;
  std::string otherSubscriberName;
  bool otherSubscriberAllowsSharing = false;
  // Whether the driver under this CUPTI can run several subscribers (r610+); a request to allow
  // them is refused with MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED when false.
  bool sharingSupported = true;
  uint64_t seed = 1;
  // Records in flight, as on a GPU: a kernel (memcpy, memset) record is reserved in the buffer when
  // the work is launched and completes recordCompletionLagMs after the work ends. A default flush
  // (and the delivery of full buffers) returns only buffers whose records are all complete; a
  // forced flush returns every buffer, and cuptiActivityGetNextRecord answers INVALID_KIND for each
  // record that was still in flight. invalidKindAdvances: whether *record then points at the
  // incomplete record (a client can step past it) or is left where it was.
  double recordCompletionLagMs = 2;
  bool invalidKindAdvances = true;
  // The first cuptiActivityEnable in the life of the loaded library stalls this long (CUPTI's
  // lazy initialisation; kineto PR #542 saw seconds).
  double firstEnableDelayMs = 0;
};

struct Scenario {
  std::string name;
  std::string description;
  uint64_t seed = 1;
  double tickMs = 100;
  std::string driverVersion = "550.90.07";
  std::string nvmlVersion = "12.550.90.07";
  int cudaDriverVersion = 12040;
  std::string library = "current";  // "current" or "legacy" (an old driver without newer symbols)
  std::vector<DeviceSpec> devices;
  std::vector<FaultSpec> faults;
  std::vector<XidSpec> xids;
  DcgmSpec dcgm;
  CuptiSpec cupti;
};

// Parses and validates; on error returns false with a message naming the JSON path.
bool parseScenario(const std::string& json, Scenario& out, std::string& error);

}  // namespace gtsim
