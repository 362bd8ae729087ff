// Compiled by test/cupti-abi.test.ts against NVIDIA's real CUPTI headers, once per installed header
// generation: the CUDA 13 toolkit's (/usr/local/cuda/include: cupti_activity.h and, for the CUDA
// 12 structs, cupti_activity_deprecated.h) and Debian libcupti-dev's CUDA 11.8 ones (/usr/include).
// Every struct and constant that native/vendor/cupti_abi.h (the addon) and native/sim/cupti_types.h
// (the simulator) declare must match NVIDIA's size, field offsets and values; a mismatch fails the
// compile. The program prints the number of checks and the facts it verified.
#include <cupti.h>

#include <cstddef>
#include <cstdio>
#include <type_traits>
#include <utility>

#include "sim/cupti_types.h"
#include "vendor/cupti_abi.h"

static int checks = 0;

#define SAME_SIZE(a, b)                                                          \
  static_assert(sizeof(a) == sizeof(b), "sizeof(" #a ") != sizeof(" #b ")");    \
  static_assert(alignof(a) == alignof(b), "alignof(" #a ") != alignof(" #b ")"); \
  ++checks
#define SAME_OFFSET(a, fa, b, fb)                                                                            \
  static_assert(offsetof(a, fa) == offsetof(b, fb), "offsetof(" #a "." #fa ") != offsetof(" #b "." #fb ")"); \
  static_assert(sizeof(a::fa) == sizeof(b::fb), "sizeof(" #a "." #fa ") != sizeof(" #b "." #fb ")");         \
  ++checks
// The simulator declares arrays where NVIDIA has scalars (grid[3] for gridX..gridZ): offset only.
#define SAME_POS(a, fa, b, fb) \
  static_assert(offsetof(a, fa) == offsetof(b, fb), "offsetof(" #a "." #fa ") != offsetof(" #b "." #fb ")"); \
  ++checks
#define SAME_VALUE(a, b)                                                               \
  static_assert(static_cast<long long>(a) == static_cast<long long>(b), #a " != " #b); \
  ++checks

namespace c = gt::cupti;

// CUpti_SubscriberParams gained allowMultipleSubscribers in CUPTI 13.2; the CUDA 13.0 header has
// only the first four fields. Checked where the installed header has it.
template <typename T, typename = void>
struct HasAllowMultipleSubscribers : std::false_type {};
template <typename T>
struct HasAllowMultipleSubscribers<T, std::void_t<decltype(std::declval<T&>().allowMultipleSubscribers)>> : std::true_type {};

#ifdef CUpti_SubscriberParams_STRUCT_SIZE
template <typename Theirs>
constexpr bool allowFieldMatches() {
  if constexpr (HasAllowMultipleSubscribers<Theirs>::value) {
    return offsetof(c::SubscriberParams, allowMultipleSubscribers) == offsetof(Theirs, allowMultipleSubscribers) &&
           sizeof(c::SubscriberParams::allowMultipleSubscribers) == sizeof(Theirs::allowMultipleSubscribers) &&
           c::kSubscriberParamsSize132 == CUpti_SubscriberParams_STRUCT_SIZE;
  } else {
    return c::kSubscriberParamsSize130 == CUpti_SubscriberParams_STRUCT_SIZE;
  }
}
#endif

// The fields the capture reads from a kernel record, for one (ours, NVIDIA's) pair.
#define KERNEL_FIELDS(ours, theirs)                                             \
  SAME_SIZE(ours, theirs);                                                      \
  SAME_OFFSET(ours, kind, theirs, kind);                                        \
  SAME_OFFSET(ours, registersPerThread, theirs, registersPerThread);            \
  SAME_OFFSET(ours, start, theirs, start);                                      \
  SAME_OFFSET(ours, end, theirs, end);                                          \
  SAME_OFFSET(ours, completed, theirs, completed);                              \
  SAME_OFFSET(ours, deviceId, theirs, deviceId);                                \
  SAME_OFFSET(ours, contextId, theirs, contextId);                              \
  SAME_OFFSET(ours, streamId, theirs, streamId);                                \
  SAME_OFFSET(ours, gridX, theirs, gridX);                                      \
  SAME_OFFSET(ours, gridY, theirs, gridY);                                      \
  SAME_OFFSET(ours, gridZ, theirs, gridZ);                                      \
  SAME_OFFSET(ours, blockX, theirs, blockX);                                    \
  SAME_OFFSET(ours, blockY, theirs, blockY);                                    \
  SAME_OFFSET(ours, blockZ, theirs, blockZ);                                    \
  SAME_OFFSET(ours, staticSharedMemory, theirs, staticSharedMemory);            \
  SAME_OFFSET(ours, dynamicSharedMemory, theirs, dynamicSharedMemory);          \
  SAME_OFFSET(ours, correlationId, theirs, correlationId);                      \
  SAME_OFFSET(ours, gridId, theirs, gridId);                                    \
  SAME_OFFSET(ours, name, theirs, name);                                        \
  SAME_OFFSET(ours, queued, theirs, queued);                                    \
  SAME_OFFSET(ours, submitted, theirs, submitted);                              \
  SAME_OFFSET(ours, graphNodeId, theirs, graphNodeId);                          \
  SAME_OFFSET(ours, graphId, theirs, graphId);                                  \
  SAME_OFFSET(ours, pAccessPolicyWindow, theirs, pAccessPolicyWindow);          \
  SAME_OFFSET(ours, channelID, theirs, channelID);                              \
  SAME_OFFSET(ours, clusterX, theirs, clusterX);                                \
  SAME_OFFSET(ours, clusterSchedulingPolicy, theirs, clusterSchedulingPolicy);  \
  SAME_OFFSET(ours, localMemoryTotal_v2, theirs, localMemoryTotal_v2)

#define SIM_KERNEL_FIELDS(theirs)                                                    \
  SAME_POS(simCuptiKernelRecord, kind, theirs, kind);                                \
  SAME_POS(simCuptiKernelRecord, registersPerThread, theirs, registersPerThread);    \
  SAME_POS(simCuptiKernelRecord, start, theirs, start);                              \
  SAME_POS(simCuptiKernelRecord, end, theirs, end);                                  \
  SAME_POS(simCuptiKernelRecord, deviceId, theirs, deviceId);                        \
  SAME_POS(simCuptiKernelRecord, contextId, theirs, contextId);                      \
  SAME_POS(simCuptiKernelRecord, streamId, theirs, streamId);                        \
  SAME_POS(simCuptiKernelRecord, grid, theirs, gridX);                               \
  SAME_POS(simCuptiKernelRecord, block, theirs, blockX);                             \
  SAME_POS(simCuptiKernelRecord, staticSharedMemory, theirs, staticSharedMemory);    \
  SAME_POS(simCuptiKernelRecord, dynamicSharedMemory, theirs, dynamicSharedMemory);  \
  SAME_POS(simCuptiKernelRecord, correlationId, theirs, correlationId);              \
  SAME_POS(simCuptiKernelRecord, gridId, theirs, gridId);                            \
  SAME_POS(simCuptiKernelRecord, name, theirs, name);                                \
  SAME_POS(simCuptiKernelRecord, graphId, theirs, graphId);                          \
  SAME_POS(simCuptiKernelRecord, accessPolicyWindow, theirs, pAccessPolicyWindow);   \
  SAME_POS(simCuptiKernelRecord, localMemoryTotalV2, theirs, localMemoryTotal_v2)

#define MEMCPY_FIELDS(ours, theirs)                                       \
  SAME_SIZE(ours, theirs);                                                \
  SAME_OFFSET(ours, copyKind, theirs, copyKind);                          \
  SAME_OFFSET(ours, srcKind, theirs, srcKind);                            \
  SAME_OFFSET(ours, dstKind, theirs, dstKind);                            \
  SAME_OFFSET(ours, flags, theirs, flags);                                \
  SAME_OFFSET(ours, bytes, theirs, bytes);                                \
  SAME_OFFSET(ours, start, theirs, start);                                \
  SAME_OFFSET(ours, end, theirs, end);                                    \
  SAME_OFFSET(ours, deviceId, theirs, deviceId);                          \
  SAME_OFFSET(ours, contextId, theirs, contextId);                        \
  SAME_OFFSET(ours, streamId, theirs, streamId);                          \
  SAME_OFFSET(ours, correlationId, theirs, correlationId);                \
  SAME_OFFSET(ours, runtimeCorrelationId, theirs, runtimeCorrelationId);  \
  SAME_OFFSET(ours, reserved0, theirs, reserved0);                        \
  SAME_OFFSET(ours, graphNodeId, theirs, graphNodeId);                    \
  SAME_OFFSET(ours, graphId, theirs, graphId);                            \
  SAME_OFFSET(ours, channelID, theirs, channelID);                        \
  SAME_OFFSET(ours, channelType, theirs, channelType)

#define SIM_MEMCPY_FIELDS(theirs)                                         \
  SAME_OFFSET(simCuptiMemcpyRecord, copyKind, theirs, copyKind);          \
  SAME_OFFSET(simCuptiMemcpyRecord, bytes, theirs, bytes);                \
  SAME_OFFSET(simCuptiMemcpyRecord, start, theirs, start);                \
  SAME_OFFSET(simCuptiMemcpyRecord, end, theirs, end);                    \
  SAME_OFFSET(simCuptiMemcpyRecord, deviceId, theirs, deviceId);          \
  SAME_OFFSET(simCuptiMemcpyRecord, streamId, theirs, streamId);          \
  SAME_OFFSET(simCuptiMemcpyRecord, correlationId, theirs, correlationId); \
  SAME_OFFSET(simCuptiMemcpyRecord, reserved0, theirs, reserved0);        \
  SAME_OFFSET(simCuptiMemcpyRecord, graphId, theirs, graphId)

int main() {
  // Scalars and function types.
  SAME_SIZE(c::Result, CUptiResult);
  SAME_SIZE(c::ActivityKind, CUpti_ActivityKind);
  SAME_SIZE(c::ActivityFlag, CUpti_ActivityFlag);
  SAME_SIZE(c::CallbackDomain, CUpti_CallbackDomain);
  SAME_SIZE(c::CallbackId, CUpti_CallbackId);
  SAME_SIZE(c::SubscriberHandle, CUpti_SubscriberHandle);
  SAME_SIZE(c::Context, CUcontext);
  SAME_SIZE(c::ObjectKindId, CUpti_ActivityObjectKindId);
  SAME_OFFSET(c::ObjectKindId, pt.processId, CUpti_ActivityObjectKindId, pt.processId);
  SAME_OFFSET(c::ObjectKindId, pt.threadId, CUpti_ActivityObjectKindId, pt.threadId);
  SAME_OFFSET(c::ObjectKindId, dcs.streamId, CUpti_ActivityObjectKindId, dcs.streamId);
  SAME_SIZE(simCuptiResult, CUptiResult);

  // Result codes.
  SAME_VALUE(c::kSuccess, CUPTI_SUCCESS);
  SAME_VALUE(c::kErrorInvalidParameter, CUPTI_ERROR_INVALID_PARAMETER);
  SAME_VALUE(c::kErrorMaxLimitReached, CUPTI_ERROR_MAX_LIMIT_REACHED);
  SAME_VALUE(c::kErrorNotInitialized, CUPTI_ERROR_NOT_INITIALIZED);
  SAME_VALUE(c::kErrorQueueEmpty, CUPTI_ERROR_QUEUE_EMPTY);
  SAME_VALUE(c::kErrorInvalidKind, CUPTI_ERROR_INVALID_KIND);
  SAME_VALUE(c::kErrorNotSupported, CUPTI_ERROR_NOT_SUPPORTED);
  SAME_VALUE(c::kErrorInsufficientPrivileges, CUPTI_ERROR_INSUFFICIENT_PRIVILEGES);
  SAME_VALUE(c::kErrorMultipleSubscribersNotSupported, CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
  SAME_VALUE(c::kErrorUnknown, CUPTI_ERROR_UNKNOWN);
  SAME_VALUE(SIM_CUPTI_SUCCESS, CUPTI_SUCCESS);
  SAME_VALUE(SIM_CUPTI_ERROR_INVALID_PARAMETER, CUPTI_ERROR_INVALID_PARAMETER);
  SAME_VALUE(SIM_CUPTI_ERROR_INVALID_OPERATION, CUPTI_ERROR_INVALID_OPERATION);
  SAME_VALUE(SIM_CUPTI_ERROR_MAX_LIMIT_REACHED, CUPTI_ERROR_MAX_LIMIT_REACHED);
  SAME_VALUE(SIM_CUPTI_ERROR_NOT_INITIALIZED, CUPTI_ERROR_NOT_INITIALIZED);
  SAME_VALUE(SIM_CUPTI_ERROR_QUEUE_EMPTY, CUPTI_ERROR_QUEUE_EMPTY);
  SAME_VALUE(SIM_CUPTI_ERROR_INVALID_KIND, CUPTI_ERROR_INVALID_KIND);
  SAME_VALUE(SIM_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED, CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
  SAME_VALUE(SIM_CUPTI_ERROR_UNKNOWN, CUPTI_ERROR_UNKNOWN);

  // Activity kinds, flags, object kinds, callback domains.
  SAME_VALUE(c::kKindMemcpy, CUPTI_ACTIVITY_KIND_MEMCPY);
  SAME_VALUE(c::kKindMemset, CUPTI_ACTIVITY_KIND_MEMSET);
  SAME_VALUE(c::kKindKernel, CUPTI_ACTIVITY_KIND_KERNEL);
  SAME_VALUE(c::kKindDriver, CUPTI_ACTIVITY_KIND_DRIVER);
  SAME_VALUE(c::kKindRuntime, CUPTI_ACTIVITY_KIND_RUNTIME);
  SAME_VALUE(c::kKindConcurrentKernel, CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  SAME_VALUE(c::kKindName, CUPTI_ACTIVITY_KIND_NAME);
  SAME_VALUE(c::kKindMarker, CUPTI_ACTIVITY_KIND_MARKER);
  SAME_VALUE(c::kKindMarkerData, CUPTI_ACTIVITY_KIND_MARKER_DATA);
  SAME_VALUE(SIM_CUPTI_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMCPY);
  SAME_VALUE(SIM_CUPTI_KIND_MEMSET, CUPTI_ACTIVITY_KIND_MEMSET);
  SAME_VALUE(SIM_CUPTI_KIND_KERNEL, CUPTI_ACTIVITY_KIND_KERNEL);
  SAME_VALUE(SIM_CUPTI_KIND_DRIVER, CUPTI_ACTIVITY_KIND_DRIVER);
  SAME_VALUE(SIM_CUPTI_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_RUNTIME);
  SAME_VALUE(SIM_CUPTI_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  SAME_VALUE(SIM_CUPTI_KIND_MARKER, CUPTI_ACTIVITY_KIND_MARKER);
  SAME_VALUE(SIM_CUPTI_KIND_MARKER_DATA, CUPTI_ACTIVITY_KIND_MARKER_DATA);
  SAME_VALUE(c::kFlagMarkerInstantaneous, CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS);
  SAME_VALUE(c::kFlagMarkerStart, CUPTI_ACTIVITY_FLAG_MARKER_START);
  SAME_VALUE(c::kFlagMarkerEnd, CUPTI_ACTIVITY_FLAG_MARKER_END);
  SAME_VALUE(c::kFlushForced, CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  SAME_VALUE(SIM_CUPTI_MARKER_INSTANTANEOUS, CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS);
  SAME_VALUE(SIM_CUPTI_MARKER_START, CUPTI_ACTIVITY_FLAG_MARKER_START);
  SAME_VALUE(SIM_CUPTI_MARKER_END, CUPTI_ACTIVITY_FLAG_MARKER_END);
  SAME_VALUE(SIM_CUPTI_FLUSH_FORCED, CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  SAME_VALUE(c::kObjectProcess, CUPTI_ACTIVITY_OBJECT_PROCESS);
  SAME_VALUE(c::kObjectThread, CUPTI_ACTIVITY_OBJECT_THREAD);
  SAME_VALUE(SIM_CUPTI_OBJECT_THREAD, CUPTI_ACTIVITY_OBJECT_THREAD);
  SAME_VALUE(c::kDomainDriverApi, CUPTI_CB_DOMAIN_DRIVER_API);
  SAME_VALUE(c::kDomainRuntimeApi, CUPTI_CB_DOMAIN_RUNTIME_API);
  SAME_VALUE(SIM_CUPTI_DOMAIN_DRIVER, CUPTI_CB_DOMAIN_DRIVER_API);
  SAME_VALUE(SIM_CUPTI_DOMAIN_RUNTIME, CUPTI_CB_DOMAIN_RUNTIME_API);

  // The header generation's API version must be one the capture reads with the matching layout.
#if CUPTI_API_VERSION >= 130000
  static_assert(c::layoutForVersion(CUPTI_API_VERSION) == c::Layout::Cuda13, "CUDA 13 header, not read as cuda13");
#else
  static_assert(c::layoutForVersion(CUPTI_API_VERSION) == c::Layout::Cuda11, "CUDA 11.8 header, not read as cuda11");
#endif
  ++checks;

  // Generation-independent records.
  SAME_SIZE(c::Activity, CUpti_Activity);
  SAME_OFFSET(c::Activity, kind, CUpti_Activity, kind);
  SAME_SIZE(c::ApiRecord, CUpti_ActivityAPI);
  SAME_OFFSET(c::ApiRecord, cbid, CUpti_ActivityAPI, cbid);
  SAME_OFFSET(c::ApiRecord, start, CUpti_ActivityAPI, start);
  SAME_OFFSET(c::ApiRecord, end, CUpti_ActivityAPI, end);
  SAME_OFFSET(c::ApiRecord, processId, CUpti_ActivityAPI, processId);
  SAME_OFFSET(c::ApiRecord, threadId, CUpti_ActivityAPI, threadId);
  SAME_OFFSET(c::ApiRecord, correlationId, CUpti_ActivityAPI, correlationId);
  SAME_OFFSET(c::ApiRecord, returnValue, CUpti_ActivityAPI, returnValue);
  SAME_SIZE(simCuptiApiRecord, CUpti_ActivityAPI);
  SAME_OFFSET(simCuptiApiRecord, cbid, CUpti_ActivityAPI, cbid);
  SAME_OFFSET(simCuptiApiRecord, start, CUpti_ActivityAPI, start);
  SAME_OFFSET(simCuptiApiRecord, processId, CUpti_ActivityAPI, processId);
  SAME_OFFSET(simCuptiApiRecord, correlationId, CUpti_ActivityAPI, correlationId);

  SAME_SIZE(c::Marker2, CUpti_ActivityMarker2);
  SAME_OFFSET(c::Marker2, flags, CUpti_ActivityMarker2, flags);
  SAME_OFFSET(c::Marker2, timestamp, CUpti_ActivityMarker2, timestamp);
  SAME_OFFSET(c::Marker2, id, CUpti_ActivityMarker2, id);
  SAME_OFFSET(c::Marker2, objectKind, CUpti_ActivityMarker2, objectKind);
  SAME_OFFSET(c::Marker2, objectId, CUpti_ActivityMarker2, objectId);
  SAME_OFFSET(c::Marker2, name, CUpti_ActivityMarker2, name);
  SAME_OFFSET(c::Marker2, domain, CUpti_ActivityMarker2, domain);
  SAME_SIZE(simCuptiMarkerRecord, CUpti_ActivityMarker2);
  SAME_OFFSET(simCuptiMarkerRecord, timestamp, CUpti_ActivityMarker2, timestamp);
  SAME_OFFSET(simCuptiMarkerRecord, id, CUpti_ActivityMarker2, id);
  SAME_POS(simCuptiMarkerRecord, objectId, CUpti_ActivityMarker2, objectId);
  SAME_OFFSET(simCuptiMarkerRecord, name, CUpti_ActivityMarker2, name);
  SAME_OFFSET(simCuptiMarkerRecord, domain, CUpti_ActivityMarker2, domain);

  SAME_SIZE(c::Memset4, CUpti_ActivityMemset4);
  SAME_OFFSET(c::Memset4, value, CUpti_ActivityMemset4, value);
  SAME_OFFSET(c::Memset4, bytes, CUpti_ActivityMemset4, bytes);
  SAME_OFFSET(c::Memset4, start, CUpti_ActivityMemset4, start);
  SAME_OFFSET(c::Memset4, end, CUpti_ActivityMemset4, end);
  SAME_OFFSET(c::Memset4, deviceId, CUpti_ActivityMemset4, deviceId);
  SAME_OFFSET(c::Memset4, contextId, CUpti_ActivityMemset4, contextId);
  SAME_OFFSET(c::Memset4, streamId, CUpti_ActivityMemset4, streamId);
  SAME_OFFSET(c::Memset4, correlationId, CUpti_ActivityMemset4, correlationId);
  SAME_OFFSET(c::Memset4, flags, CUpti_ActivityMemset4, flags);
  SAME_OFFSET(c::Memset4, memoryKind, CUpti_ActivityMemset4, memoryKind);
  SAME_OFFSET(c::Memset4, reserved0, CUpti_ActivityMemset4, reserved0);
  SAME_OFFSET(c::Memset4, graphId, CUpti_ActivityMemset4, graphId);
  SAME_OFFSET(c::Memset4, channelType, CUpti_ActivityMemset4, channelType);
  SAME_SIZE(simCuptiMemsetRecord, CUpti_ActivityMemset4);
  SAME_OFFSET(simCuptiMemsetRecord, value, CUpti_ActivityMemset4, value);
  SAME_OFFSET(simCuptiMemsetRecord, bytes, CUpti_ActivityMemset4, bytes);
  SAME_OFFSET(simCuptiMemsetRecord, start, CUpti_ActivityMemset4, start);
  SAME_OFFSET(simCuptiMemsetRecord, streamId, CUpti_ActivityMemset4, streamId);
  SAME_OFFSET(simCuptiMemsetRecord, correlationId, CUpti_ActivityMemset4, correlationId);
  SAME_OFFSET(simCuptiMemsetRecord, reserved0, CUpti_ActivityMemset4, reserved0);

#ifdef CUpti_SubscriberParams_STRUCT_SIZE
  // cuptiSubscribe_v2's parameters (cupti_callbacks.h, CUDA 13.0+).
  SAME_OFFSET(c::SubscriberParams, structSize, CUpti_SubscriberParams, structSize);
  SAME_OFFSET(c::SubscriberParams, subscriberName, CUpti_SubscriberParams, subscriberName);
  SAME_OFFSET(c::SubscriberParams, oldSubscriberName, CUpti_SubscriberParams, oldSubscriberName);
  SAME_OFFSET(c::SubscriberParams, oldSubscriberSize, CUpti_SubscriberParams, oldSubscriberSize);
  static_assert(allowFieldMatches<CUpti_SubscriberParams>(), "CUpti_SubscriberParams struct size / allowMultipleSubscribers");
  ++checks;
  SAME_VALUE(c::kSubscriberNameMaxLen, CUPTI_SUBSCRIBER_NAME_MAX_LEN);
  SAME_VALUE(c::kOldSubscriberNameMinLen, CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN);
  SAME_OFFSET(simCuptiSubscriberParams, structSize, CUpti_SubscriberParams, structSize);
  SAME_OFFSET(simCuptiSubscriberParams, subscriberName, CUpti_SubscriberParams, subscriberName);
  SAME_OFFSET(simCuptiSubscriberParams, oldSubscriberName, CUpti_SubscriberParams, oldSubscriberName);
  SAME_OFFSET(simCuptiSubscriberParams, oldSubscriberSize, CUpti_SubscriberParams, oldSubscriberSize);
  SAME_VALUE(SIM_CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN, CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN);
  static_assert(SIM_CUPTI_SUBSCRIBER_PARAMS_SIZE_13_0 == c::kSubscriberParamsSize130 &&
                    SIM_CUPTI_SUBSCRIBER_PARAMS_SIZE_13_2 == c::kSubscriberParamsSize132,
                "sim and addon agree on the CUpti_SubscriberParams sizes");
  ++checks;
  // The entry point exists in this header generation, with this many parameters.
  static_assert(std::is_same_v<decltype(&cuptiSubscribe_v2),
                               CUptiResult (*)(CUpti_SubscriberHandle*, CUpti_CallbackFunc, void*, CUpti_SubscriberParams*)>,
                "cuptiSubscribe_v2 signature");
  ++checks;
  SAME_SIZE(c::CallbackFunc, CUpti_CallbackFunc);
  SAME_VALUE(SIM_CUPTI_ERROR_NOT_SUPPORTED, CUPTI_ERROR_NOT_SUPPORTED);
  std::printf("cuptiSubscribe_v2: CUpti_SubscriberParams_STRUCT_SIZE %zu (allowMultipleSubscribers %s in this header)\n",
              static_cast<size_t>(CUpti_SubscriberParams_STRUCT_SIZE),
              HasAllowMultipleSubscribers<CUpti_SubscriberParams>::value ? "present" : "absent");
#endif

#if CUPTI_API_VERSION >= 130000
  // CUDA 13 generation.
  KERNEL_FIELDS(c::Kernel10, CUpti_ActivityKernel10);
  SAME_OFFSET(c::Kernel10, maxPotentialClusterSize, CUpti_ActivityKernel10, maxPotentialClusterSize);
  SAME_OFFSET(c::Kernel10, maxActiveClusters, CUpti_ActivityKernel10, maxActiveClusters);
  SAME_OFFSET(c::Kernel10, isDeviceLaunched, CUpti_ActivityKernel10, isDeviceLaunched);
  SAME_SIZE(simCuptiKernelRecord, CUpti_ActivityKernel10);
  SIM_KERNEL_FIELDS(CUpti_ActivityKernel10);
  SAME_POS(simCuptiKernelRecord, isDeviceLaunched, CUpti_ActivityKernel10, isDeviceLaunched);
  static_assert(simCuptiRecordSize(SIM_CUPTI_KIND_CONCURRENT_KERNEL, CUPTI_API_VERSION) == sizeof(CUpti_ActivityKernel10), "sim kernel size 13");
  MEMCPY_FIELDS(c::Memcpy6, CUpti_ActivityMemcpy6);
  SAME_OFFSET(c::Memcpy6, isDeviceLaunched, CUpti_ActivityMemcpy6, isDeviceLaunched);
  SAME_OFFSET(c::Memcpy6, copyCount, CUpti_ActivityMemcpy6, copyCount);
  SAME_SIZE(simCuptiMemcpyRecord, CUpti_ActivityMemcpy6);
  SIM_MEMCPY_FIELDS(CUpti_ActivityMemcpy6);
  SAME_OFFSET(simCuptiMemcpyRecord, copyCount, CUpti_ActivityMemcpy6, copyCount);
  static_assert(simCuptiRecordSize(SIM_CUPTI_KIND_MEMCPY, CUPTI_API_VERSION) == sizeof(CUpti_ActivityMemcpy6), "sim memcpy size 13");
  SAME_OFFSET(c::Memset4, isDeviceLaunched, CUpti_ActivityMemset4, isDeviceLaunched);
  SAME_SIZE(c::MarkerData2, CUpti_ActivityMarkerData2);
  SAME_OFFSET(c::MarkerData2, id, CUpti_ActivityMarkerData2, id);
  SAME_OFFSET(c::MarkerData2, payload, CUpti_ActivityMarkerData2, payload);
  SAME_OFFSET(c::MarkerData2, color, CUpti_ActivityMarkerData2, color);
  SAME_OFFSET(c::MarkerData2, category, CUpti_ActivityMarkerData2, category);
  SAME_OFFSET(c::MarkerData2, cuptiDomainId, CUpti_ActivityMarkerData2, cuptiDomainId);
  checks += 3;

  // CUDA 12 generation, from the CUDA 13 toolkit's cupti_activity_deprecated.h.
  KERNEL_FIELDS(c::Kernel9, CUpti_ActivityKernel9);
  SAME_OFFSET(c::Kernel9, maxPotentialClusterSize, CUpti_ActivityKernel9, maxPotentialClusterSize);
  SAME_OFFSET(c::Kernel9, maxActiveClusters, CUpti_ActivityKernel9, maxActiveClusters);
  SIM_KERNEL_FIELDS(CUpti_ActivityKernel9);
  SAME_POS(simCuptiKernelRecord, maxActiveClusters, CUpti_ActivityKernel9, maxActiveClusters);
  static_assert(simCuptiRecordSize(SIM_CUPTI_KIND_CONCURRENT_KERNEL, 26) == sizeof(CUpti_ActivityKernel9), "sim kernel size 12");
  MEMCPY_FIELDS(c::Memcpy5, CUpti_ActivityMemcpy5);
  SAME_OFFSET(c::Memcpy5, pad2, CUpti_ActivityMemcpy5, pad2);
  SIM_MEMCPY_FIELDS(CUpti_ActivityMemcpy5);
  static_assert(simCuptiRecordSize(SIM_CUPTI_KIND_MEMCPY, 26) == sizeof(CUpti_ActivityMemcpy5), "sim memcpy size 12");
  // The CUDA 11.8 kernel record (Kernel8) is here too: its own generation is checked against /usr/include.
  KERNEL_FIELDS(c::Kernel8, CUpti_ActivityKernel8);
  SAME_SIZE(c::MarkerData, CUpti_ActivityMarkerData);
  checks += 2;
  std::printf("cupti ABI (CUDA 13 headers, CUPTI_API_VERSION %d): %d checks passed; Kernel10 %zu, Kernel9 %zu, Memcpy6 %zu, Memcpy5 %zu, Memset4 %zu, API %zu, Marker2 %zu, MarkerData2 %zu bytes\n",
              CUPTI_API_VERSION, checks, sizeof(CUpti_ActivityKernel10), sizeof(CUpti_ActivityKernel9),
              sizeof(CUpti_ActivityMemcpy6), sizeof(CUpti_ActivityMemcpy5), sizeof(CUpti_ActivityMemset4),
              sizeof(CUpti_ActivityAPI), sizeof(CUpti_ActivityMarker2), sizeof(CUpti_ActivityMarkerData2));
#else
  // CUDA 11.8 generation (Debian libcupti-dev).
  KERNEL_FIELDS(c::Kernel8, CUpti_ActivityKernel8);
  SIM_KERNEL_FIELDS(CUpti_ActivityKernel8);
  static_assert(simCuptiRecordSize(SIM_CUPTI_KIND_CONCURRENT_KERNEL, CUPTI_API_VERSION) == sizeof(CUpti_ActivityKernel8), "sim kernel size 11.8");
  MEMCPY_FIELDS(c::Memcpy5, CUpti_ActivityMemcpy5);
  SAME_OFFSET(c::Memcpy5, pad2, CUpti_ActivityMemcpy5, pad2);
  SIM_MEMCPY_FIELDS(CUpti_ActivityMemcpy5);
  static_assert(simCuptiRecordSize(SIM_CUPTI_KIND_MEMCPY, CUPTI_API_VERSION) == sizeof(CUpti_ActivityMemcpy5), "sim memcpy size 11.8");
  SAME_SIZE(c::MarkerData, CUpti_ActivityMarkerData);
  SAME_OFFSET(c::MarkerData, id, CUpti_ActivityMarkerData, id);
  SAME_OFFSET(c::MarkerData, payload, CUpti_ActivityMarkerData, payload);
  SAME_OFFSET(c::MarkerData, color, CUpti_ActivityMarkerData, color);
  SAME_OFFSET(c::MarkerData, category, CUpti_ActivityMarkerData, category);
  checks += 2;
  std::printf("cupti ABI (CUDA 11.8 headers, CUPTI_API_VERSION %d): %d checks passed; Kernel8 %zu, Memcpy5 %zu, Memset4 %zu, API %zu, Marker2 %zu, MarkerData %zu bytes\n",
              CUPTI_API_VERSION, checks, sizeof(CUpti_ActivityKernel8), sizeof(CUpti_ActivityMemcpy5),
              sizeof(CUpti_ActivityMemset4), sizeof(CUpti_ActivityAPI), sizeof(CUpti_ActivityMarker2),
              sizeof(CUpti_ActivityMarkerData));
#endif
  return 0;
}
