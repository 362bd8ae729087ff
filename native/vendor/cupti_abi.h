// Our own declarations of the parts of NVIDIA's CUPTI ABI the kernel-trace capture uses: result
// codes, activity kinds and flags, the callback/buffer function types, and the activity record
// structs it reads, once per record-layout generation. Written from NVIDIA's public documentation
// and checked against the real headers by test/abi/cupti_abi_check.cc (sizes, field offsets,
// constant values); no NVIDIA header is needed to build.
//
// Generations (selected by what cuptiGetVersion reports, see layoutForVersion()):
//   cuda11  CUPTI API 18 (CUDA 11.8):            Kernel8 (200 B), Memcpy5 (88 B), Memset4, MarkerData
//   cuda12  CUPTI API 19..28 (CUDA 12.0..12.9u1): Kernel9 (208 B), Memcpy5 (88 B), Memset4, MarkerData
//   cuda13  CUPTI API 13xxyy (CUDA 13.x):         Kernel10 (216 B), Memcpy6 (96 B), Memset4, MarkerData2
// Marker2 and API records are the same in all three. Activity records are packed and 8-aligned
// (NVIDIA's PACKED_ALIGNMENT), which `GT_CUPTI_RECORD` reproduces.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gt::cupti {

#define GT_CUPTI_RECORD __attribute__((__packed__)) __attribute__((aligned(8)))

using Result = int;  // CUptiResult (an enum: 4 bytes)
constexpr Result kSuccess = 0;
constexpr Result kErrorInvalidParameter = 1;
constexpr Result kErrorNotInitialized = 15;
constexpr Result kErrorMaxLimitReached = 12;
constexpr Result kErrorQueueEmpty = 18;
constexpr Result kErrorInvalidKind = 21;
constexpr Result kErrorNotSupported = 27;
constexpr Result kErrorInsufficientPrivileges = 35;
constexpr Result kErrorMultipleSubscribersNotSupported = 39;
constexpr Result kErrorUnknown = 999;

using ActivityKind = int;  // CUpti_ActivityKind
constexpr ActivityKind kKindMemcpy = 1;
constexpr ActivityKind kKindMemset = 2;
constexpr ActivityKind kKindKernel = 3;
constexpr ActivityKind kKindDriver = 4;
constexpr ActivityKind kKindRuntime = 5;
constexpr ActivityKind kKindConcurrentKernel = 10;
constexpr ActivityKind kKindName = 11;
constexpr ActivityKind kKindMarker = 12;
constexpr ActivityKind kKindMarkerData = 13;

using ActivityFlag = int;  // CUpti_ActivityFlag
constexpr ActivityFlag kFlagMarkerInstantaneous = 1 << 0;
constexpr ActivityFlag kFlagMarkerStart = 1 << 1;
constexpr ActivityFlag kFlagMarkerEnd = 1 << 2;
constexpr uint32_t kFlushForced = 1 << 0;  // CUPTI_ACTIVITY_FLAG_FLUSH_FORCED

using ObjectKind = int;  // CUpti_ActivityObjectKind
constexpr ObjectKind kObjectProcess = 1;
constexpr ObjectKind kObjectThread = 2;

using CallbackDomain = int;  // CUpti_CallbackDomain
constexpr CallbackDomain kDomainDriverApi = 1;
constexpr CallbackDomain kDomainRuntimeApi = 2;

using CallbackId = uint32_t;
struct SubscriberSt;
using SubscriberHandle = SubscriberSt*;
using Context = void*;  // CUcontext

using CallbackFunc = void (*)(void* userdata, CallbackDomain domain, CallbackId cbid, const void* cbdata);
using BufferRequestedFunc = void (*)(uint8_t** buffer, size_t* size, size_t* maxNumRecords);
using BufferCompletedFunc = void (*)(Context context, uint32_t streamId, uint8_t* buffer, size_t size,
                                     size_t validSize);
// The subscriber-scoped buffer callbacks (cuptiActivityRegisterCallbacks_v2, CUPTI 13.2+): no
// context/stream; a trailing info pointer (CUpti_BufferCallbackRequestInfo / CompleteInfo, which
// the capture does not read). From NVIDIA's CUPTI 13.2 documentation: no header here declares them.
using BufferRequestedFuncV2 = void (*)(uint8_t** buffer, size_t* size, size_t* maxNumRecords, void* requestInfo);
using BufferCompletedFuncV2 = void (*)(uint8_t* buffer, size_t size, size_t validSize, void* completeInfo);

// CUpti_SubscriberParams (cupti_callbacks.h, CUDA 13.0): cuptiSubscribe_v2's parameters. CUPTI
// reads structSize to know which fields the client filled in. On
// CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED it writes the name of the tool or subscriber that
// holds CUPTI to oldSubscriberName (at least kOldSubscriberNameMinLen bytes). CUPTI 13.2 appended
// allowMultipleSubscribers (multi-subscriber mode, beta): a client that sets it passes
// kSubscriberParamsSize132; one that does not passes kSubscriberParamsSize130 (the CUDA 13.0
// header's CUpti_SubscriberParams_STRUCT_SIZE), and CUPTI treats it as exclusive.
struct SubscriberParams {
  size_t structSize;
  const char* subscriberName;  // CUPTI names the subscriber "CUPTI for <subscriberName>"
  char* oldSubscriberName;
  size_t oldSubscriberSize;
  uint8_t allowMultipleSubscribers;  // CUPTI 13.2+ (not in the CUDA 13.0 header)
};
constexpr size_t kSubscriberParamsSize130 = offsetof(SubscriberParams, oldSubscriberSize) + sizeof(size_t);
constexpr size_t kSubscriberParamsSize132 = offsetof(SubscriberParams, allowMultipleSubscribers) + sizeof(uint8_t);
constexpr size_t kSubscriberNameMaxLen = 53;     // CUPTI_SUBSCRIBER_NAME_MAX_LEN
constexpr size_t kOldSubscriberNameMinLen = 64;  // CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN
static_assert(kSubscriberParamsSize130 == 32 && kSubscriberParamsSize132 == 33, "CUpti_SubscriberParams sizes");

// CUPTI API versions (cuptiGetVersion) by toolkit: 18 = 11.8, 19 = 12.0/12.1, 20 = 12.2, 21 = 12.3,
// 22 = 12.4, 23 = 12.5, 24 = 12.6, 25 = 12.7, 26 = 12.8, 27 = 12.9, 28 = 12.9 Update 1; from 13.0 on
// the format is xxyyzz (130000 = 13.0, 130001 = 13.0 Update 1).
constexpr uint32_t kApiVersionCuda118 = 18;
constexpr uint32_t kApiVersionCuda12First = 19;
constexpr uint32_t kApiVersionCuda12Last = 28;
constexpr uint32_t kApiVersionCuda13First = 130000;
constexpr uint32_t kApiVersionCuda13Last = 139999;
// From this API version on, a buffer-requested callback may hand CUPTI no buffer (CUDA 12.9).
constexpr uint32_t kApiVersionNullBufferSafe = 27;
// cuptiSubscribe_v2 exists from CUDA 13.0; multi-subscriber mode (allowMultipleSubscribers, with
// the subscriber-scoped activity calls cuptiActivityGetNextRecord_v2 and cuptiGetTimestamp_v2)
// from CUDA 13.3.
constexpr uint32_t kApiVersionSubscribeV2 = 130000;
constexpr uint32_t kApiVersionMultiSubscriber = 130300;

// ---- record structs -------------------------------------------------------------------------

struct GT_CUPTI_RECORD Activity {
  ActivityKind kind;
};

// CUpti_ActivityObjectKindId
union ObjectKindId {
  struct {
    uint32_t processId;
    uint32_t threadId;
  } pt;
  struct {
    uint32_t deviceId;
    uint32_t contextId;
    uint32_t streamId;
  } dcs;
};

// The fields every kernel record generation (Kernel8, Kernel9, Kernel10) shares, in order.
#define GT_CUPTI_KERNEL_COMMON                                                        \
  ActivityKind kind;                                                                  \
  uint8_t cacheConfig;                                                                \
  uint8_t sharedMemoryConfig;                                                         \
  uint16_t registersPerThread;                                                        \
  int partitionedGlobalCacheRequested;                                                \
  int partitionedGlobalCacheExecuted;                                                 \
  uint64_t start;                                                                     \
  uint64_t end;                                                                       \
  uint64_t completed;                                                                 \
  uint32_t deviceId;                                                                  \
  uint32_t contextId;                                                                 \
  uint32_t streamId;                                                                  \
  int32_t gridX, gridY, gridZ;                                                        \
  int32_t blockX, blockY, blockZ;                                                     \
  int32_t staticSharedMemory;                                                         \
  int32_t dynamicSharedMemory;                                                        \
  uint32_t localMemoryPerThread;                                                      \
  uint32_t localMemoryTotal;                                                          \
  uint32_t correlationId;                                                             \
  int64_t gridId;                                                                     \
  const char* name;                                                                   \
  void* reserved0;                                                                    \
  uint64_t queued;                                                                    \
  uint64_t submitted;                                                                 \
  uint8_t launchType;                                                                 \
  uint8_t isSharedMemoryCarveoutRequested;                                            \
  uint8_t sharedMemoryCarveoutRequested;                                              \
  uint8_t padding;                                                                    \
  uint32_t sharedMemoryExecuted;                                                      \
  uint64_t graphNodeId;                                                               \
  int shmemLimitConfig;                                                               \
  uint32_t graphId;                                                                   \
  void* pAccessPolicyWindow;                                                          \
  uint32_t channelID;                                                                 \
  int channelType;                                                                    \
  uint32_t clusterX, clusterY, clusterZ;                                              \
  uint32_t clusterSchedulingPolicy;                                                   \
  uint64_t localMemoryTotal_v2;

struct GT_CUPTI_RECORD Kernel8 {  // CUDA 11.8
  GT_CUPTI_KERNEL_COMMON
};
struct GT_CUPTI_RECORD Kernel9 {  // CUDA 12.x
  GT_CUPTI_KERNEL_COMMON
  uint32_t maxPotentialClusterSize;
  uint32_t maxActiveClusters;
};
struct GT_CUPTI_RECORD Kernel10 {  // CUDA 13.x
  GT_CUPTI_KERNEL_COMMON
  uint32_t maxPotentialClusterSize;
  uint32_t maxActiveClusters;
  uint8_t isDeviceLaunched;
  uint8_t padding3[7];
};
#undef GT_CUPTI_KERNEL_COMMON

#define GT_CUPTI_MEMCPY_COMMON \
  ActivityKind kind;           \
  uint8_t copyKind;            \
  uint8_t srcKind;             \
  uint8_t dstKind;             \
  uint8_t flags;               \
  uint64_t bytes;              \
  uint64_t start;              \
  uint64_t end;                \
  uint32_t deviceId;           \
  uint32_t contextId;          \
  uint32_t streamId;           \
  uint32_t correlationId;      \
  uint32_t runtimeCorrelationId; \
  uint32_t pad;                \
  void* reserved0;             \
  uint64_t graphNodeId;        \
  uint32_t graphId;            \
  uint32_t channelID;          \
  int channelType;

struct GT_CUPTI_RECORD Memcpy5 {  // CUDA 11.8 and 12.x
  GT_CUPTI_MEMCPY_COMMON
  uint32_t pad2;
};
struct GT_CUPTI_RECORD Memcpy6 {  // CUDA 13.x
  GT_CUPTI_MEMCPY_COMMON
  uint8_t isDeviceLaunched;
  uint8_t pad2[3];
  uint64_t copyCount;
};
#undef GT_CUPTI_MEMCPY_COMMON

// Memset4: the same size in every generation (CUDA 13 split the tail pad into isDeviceLaunched).
struct GT_CUPTI_RECORD Memset4 {
  ActivityKind kind;
  uint32_t value;
  uint64_t bytes;
  uint64_t start;
  uint64_t end;
  uint32_t deviceId;
  uint32_t contextId;
  uint32_t streamId;
  uint32_t correlationId;
  uint16_t flags;
  uint16_t memoryKind;
  uint32_t pad;
  void* reserved0;
  uint64_t graphNodeId;
  uint32_t graphId;
  uint32_t channelID;
  int channelType;
  uint8_t isDeviceLaunched;  // CUDA 13; part of a 4-byte pad before
  uint8_t pad2[3];
};

// CUpti_ActivityAPI (runtime and driver API calls): unchanged since CUDA 4.
struct GT_CUPTI_RECORD ApiRecord {
  ActivityKind kind;
  CallbackId cbid;
  uint64_t start;
  uint64_t end;
  uint32_t processId;
  uint32_t threadId;
  uint32_t correlationId;
  uint32_t returnValue;
};

// CUpti_ActivityMarker2 (NVTX marks and range start/end): unchanged from CUDA 8 to 13.
struct GT_CUPTI_RECORD Marker2 {
  ActivityKind kind;
  ActivityFlag flags;
  uint64_t timestamp;
  uint32_t id;
  ObjectKind objectKind;
  ObjectKindId objectId;
  uint32_t pad;
  const char* name;
  const char* domain;
};

// CUpti_ActivityMarkerData (CUDA 11.8, 12.x) and MarkerData2 (CUDA 13: + cuptiDomainId).
struct GT_CUPTI_RECORD MarkerData {
  ActivityKind kind;
  ActivityFlag flags;
  uint32_t id;
  int payloadKind;
  uint64_t payload;  // CUpti_MetricValue: an 8-byte union
  uint32_t color;
  uint32_t category;
};
struct GT_CUPTI_RECORD MarkerData2 {
  ActivityKind kind;
  ActivityFlag flags;
  uint32_t id;
  int payloadKind;
  uint64_t payload;
  uint32_t color;
  uint32_t category;
  uint32_t cuptiDomainId;
  uint32_t padding;
};

static_assert(sizeof(Kernel8) == 200 && sizeof(Kernel9) == 208 && sizeof(Kernel10) == 216, "kernel record sizes");
static_assert(sizeof(Memcpy5) == 88 && sizeof(Memcpy6) == 96 && sizeof(Memset4) == 88, "memcpy/memset sizes");
static_assert(sizeof(ApiRecord) == 40 && sizeof(Marker2) == 56, "api/marker sizes");
static_assert(sizeof(MarkerData) == 32 && sizeof(MarkerData2) == 40, "marker data sizes");

// ---- layout generations -----------------------------------------------------------------------

enum class Layout { Unsupported, Cuda11, Cuda12, Cuda13 };

constexpr Layout layoutForVersion(uint32_t apiVersion) {
  if (apiVersion == kApiVersionCuda118) return Layout::Cuda11;
  if (apiVersion >= kApiVersionCuda12First && apiVersion <= kApiVersionCuda12Last) return Layout::Cuda12;
  if (apiVersion >= kApiVersionCuda13First && apiVersion <= kApiVersionCuda13Last) return Layout::Cuda13;
  return Layout::Unsupported;
}

constexpr const char* layoutName(Layout l) {
  switch (l) {
    case Layout::Cuda11: return "cuda11";
    case Layout::Cuda12: return "cuda12";
    case Layout::Cuda13: return "cuda13";
    default: return "unsupported";
  }
}

#undef GT_CUPTI_RECORD

}  // namespace gt::cupti
