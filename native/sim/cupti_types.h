// The simulator's own declarations of the CUPTI ABI it plays: written independently of
// native/vendor/cupti_abi.h (natural alignment and one full-size struct per record family, where
// the addon uses packed per-generation structs), and checked against NVIDIA's headers by
// test/abi/cupti_abi_check.cc. A record family's newest struct is declared whole; an older
// generation writes only its prefix (simCuptiRecordSize gives the size per generation).
#pragma once

#include <cstddef>
#include <cstdint>

typedef int simCuptiResult;
#define SIM_CUPTI_SUCCESS 0
#define SIM_CUPTI_ERROR_INVALID_PARAMETER 1
#define SIM_CUPTI_ERROR_INVALID_OPERATION 7
#define SIM_CUPTI_ERROR_MAX_LIMIT_REACHED 12
#define SIM_CUPTI_ERROR_NOT_INITIALIZED 15
#define SIM_CUPTI_ERROR_QUEUE_EMPTY 18
#define SIM_CUPTI_ERROR_INVALID_KIND 21
#define SIM_CUPTI_ERROR_NOT_SUPPORTED 27
#define SIM_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED 39
#define SIM_CUPTI_ERROR_UNKNOWN 999

// Activity kinds the simulator produces.
#define SIM_CUPTI_KIND_MEMCPY 1
#define SIM_CUPTI_KIND_MEMSET 2
#define SIM_CUPTI_KIND_KERNEL 3
#define SIM_CUPTI_KIND_DRIVER 4
#define SIM_CUPTI_KIND_RUNTIME 5
#define SIM_CUPTI_KIND_CONCURRENT_KERNEL 10
#define SIM_CUPTI_KIND_MARKER 12
#define SIM_CUPTI_KIND_MARKER_DATA 13
#define SIM_CUPTI_KIND_LIMIT 64  // kinds above this are refused

#define SIM_CUPTI_MARKER_INSTANTANEOUS 1u
#define SIM_CUPTI_MARKER_START 2u
#define SIM_CUPTI_MARKER_END 4u
#define SIM_CUPTI_OBJECT_THREAD 2
#define SIM_CUPTI_FLUSH_FORCED 1u
#define SIM_CUPTI_DOMAIN_DRIVER 1
#define SIM_CUPTI_DOMAIN_RUNTIME 2

typedef void (*simCuptiRequestFn)(uint8_t** buffer, size_t* size, size_t* maxNumRecords);
typedef void (*simCuptiCompleteFn)(void* context, uint32_t streamId, uint8_t* buffer, size_t size, size_t validSize);
typedef void (*simCuptiCallbackFn)(void* userdata, int domain, uint32_t cbid, const void* cbdata);
// The subscriber-scoped buffer callbacks (cuptiActivityRegisterCallbacks_v2): no context/stream,
// a trailing info pointer (CUpti_BufferCallbackRequestInfo / CompleteInfo) instead.
typedef void (*simCuptiRequestFnV2)(uint8_t** buffer, size_t* size, size_t* maxNumRecords, void* info);
typedef void (*simCuptiCompleteFnV2)(uint8_t* buffer, size_t size, size_t validSize, void* info);

// CUpti_SubscriberParams (cuptiSubscribe_v2, CUDA 13.0: the first four fields, 32 bytes); CUPTI
// 13.2 appended allowMultipleSubscribers (a client that sets it says so with a larger structSize).
struct simCuptiSubscriberParams {
  size_t structSize;
  const char* subscriberName;
  char* oldSubscriberName;
  size_t oldSubscriberSize;
  uint8_t allowMultipleSubscribers;
};
#define SIM_CUPTI_SUBSCRIBER_PARAMS_SIZE_13_0 (offsetof(simCuptiSubscriberParams, oldSubscriberSize) + sizeof(size_t))
#define SIM_CUPTI_SUBSCRIBER_PARAMS_SIZE_13_2 (offsetof(simCuptiSubscriberParams, allowMultipleSubscribers) + 1)
#define SIM_CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN 64
// Multi-subscriber mode (and the subscriber-scoped activity API it needs) from CUPTI 13.3.
#define SIM_CUPTI_VERSION_MULTI_SUBSCRIBER 130300

// The kernel record of CUDA 13 (CUpti_ActivityKernel10); CUDA 12 writes its first 208 bytes
// (Kernel9), CUDA 11.8 its first 200 (Kernel8).
struct alignas(8) simCuptiKernelRecord {
  int32_t kind;
  uint8_t cacheConfig, sharedMemoryConfig;
  uint16_t registersPerThread;
  int32_t partitionedRequested, partitionedExecuted;
  uint64_t start, end, completed;
  uint32_t deviceId, contextId, streamId;
  int32_t grid[3];
  int32_t block[3];
  int32_t staticSharedMemory, dynamicSharedMemory;
  uint32_t localMemoryPerThread, localMemoryTotal;
  uint32_t correlationId;
  int64_t gridId;
  const char* name;
  void* reserved0;
  uint64_t queued, submitted;
  uint8_t launchType, carveoutRequestedFlag, carveoutRequested, pad0;
  uint32_t sharedMemoryExecuted;
  uint64_t graphNodeId;
  int32_t shmemLimitConfig;
  uint32_t graphId;
  void* accessPolicyWindow;
  uint32_t channelId;
  int32_t channelType;
  uint32_t cluster[3];
  uint32_t clusterSchedulingPolicy;
  uint64_t localMemoryTotalV2;
  uint32_t maxPotentialClusterSize, maxActiveClusters;  // from CUDA 12
  uint8_t isDeviceLaunched;                             // from CUDA 13
  uint8_t pad1[7];
};

// The memcpy record of CUDA 13 (Memcpy6, 96 bytes); CUDA 11.8/12 write the first 88 (Memcpy5).
struct alignas(8) simCuptiMemcpyRecord {
  int32_t kind;
  uint8_t copyKind, srcKind, dstKind, flags;
  uint64_t bytes, start, end;
  uint32_t deviceId, contextId, streamId, correlationId, runtimeCorrelationId, pad0;
  void* reserved0;
  uint64_t graphNodeId;
  uint32_t graphId, channelId;
  int32_t channelType;
  uint8_t isDeviceLaunched, pad1[3];
  uint64_t copyCount;  // CUDA 13
};

struct alignas(8) simCuptiMemsetRecord {  // Memset4, 88 bytes in every generation
  int32_t kind;
  uint32_t value;
  uint64_t bytes, start, end;
  uint32_t deviceId, contextId, streamId, correlationId;
  uint16_t flags, memoryKind;
  uint32_t pad0;
  void* reserved0;
  uint64_t graphNodeId;
  uint32_t graphId, channelId;
  int32_t channelType;
  uint8_t tail[4];
};

struct alignas(8) simCuptiApiRecord {  // CUpti_ActivityAPI, 40 bytes
  int32_t kind;
  uint32_t cbid;
  uint64_t start, end;
  uint32_t processId, threadId, correlationId, returnValue;
};

struct alignas(8) simCuptiMarkerRecord {  // CUpti_ActivityMarker2, 56 bytes
  int32_t kind;
  uint32_t flags;
  uint64_t timestamp;
  uint32_t id;
  int32_t objectKind;
  uint32_t objectId[3];  // thread objects: processId, threadId, unused
  uint32_t pad0;
  const char* name;
  const char* domain;
};

// Bytes a record of `kind` occupies in the layout of CUPTI API `version` (0: not produced).
constexpr size_t simCuptiRecordSize(int kind, uint32_t version) {
  const bool v13 = version >= 130000;
  const bool v12 = version >= 19;
  switch (kind) {
    case SIM_CUPTI_KIND_KERNEL:
    case SIM_CUPTI_KIND_CONCURRENT_KERNEL: return v13 ? 216 : v12 ? 208 : 200;
    case SIM_CUPTI_KIND_MEMCPY: return v13 ? 96 : 88;
    case SIM_CUPTI_KIND_MEMSET: return 88;
    case SIM_CUPTI_KIND_RUNTIME:
    case SIM_CUPTI_KIND_DRIVER: return 40;
    case SIM_CUPTI_KIND_MARKER: return 56;
    default: return 0;
  }
}
