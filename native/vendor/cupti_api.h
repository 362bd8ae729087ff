// The CUPTI entry points the kernel-trace capture uses, as one table (an X-macro) resolved with
// dlopen/dlsym through DynLib. Every entry is required except cuptiGetResultString and
// cuptiGetCallbackName (the capture then falls back to our names: "CUPTI_ERROR_…", "cbid N") and
// the CUDA 13 subscriber API: cuptiSubscribe_v2 (CUDA 13.0+) and the subscriber-scoped activity
// calls of multi-subscriber mode (CUDA 13.3+), each absent from older libraries.
//
// The _v2 activity calls are declared from NVIDIA's CUPTI 13.2/13.3 documentation (the CUDA 13.0
// header installed here has only cuptiSubscribe_v2): cuptiActivityDisable_v2 is documented both
// with and without the trailing config pointer; it is declared with it, and passed NULL, which is
// harmless to a two-parameter function under the x86-64 and AArch64 calling conventions.
#pragma once

#include <string>

#include "cupti_abi.h"
#include "dynlib.h"

namespace gt::cupti {

// X(member, return type, parameter list, required, symbol names newest first...)
#define GT_CUPTI_FUNCTIONS(X)                                                                        \
  X(getVersion, Result, (uint32_t*), true, "cuptiGetVersion")                                        \
  X(getResultString, Result, (Result, const char**), false, "cuptiGetResultString")                  \
  X(subscribe, Result, (SubscriberHandle*, CallbackFunc, void*), true, "cuptiSubscribe")             \
  X(unsubscribe, Result, (SubscriberHandle), true, "cuptiUnsubscribe")                               \
  X(activityEnable, Result, (ActivityKind), true, "cuptiActivityEnable")                             \
  X(activityDisable, Result, (ActivityKind), true, "cuptiActivityDisable")                           \
  X(activityRegisterCallbacks, Result, (BufferRequestedFunc, BufferCompletedFunc), true,             \
    "cuptiActivityRegisterCallbacks")                                                                \
  X(activityFlushAll, Result, (uint32_t), true, "cuptiActivityFlushAll")                             \
  X(activityGetNextRecord, Result, (uint8_t*, size_t, Activity**), true, "cuptiActivityGetNextRecord") \
  X(activityGetNumDroppedRecords, Result, (Context, uint32_t, size_t*), true,                        \
    "cuptiActivityGetNumDroppedRecords")                                                             \
  X(getTimestamp, Result, (uint64_t*), true, "cuptiGetTimestamp")                                    \
  X(getCallbackName, Result, (CallbackDomain, uint32_t, const char**), false, "cuptiGetCallbackName") \
  X(subscribeV2, Result, (SubscriberHandle*, CallbackFunc, void*, SubscriberParams*), false, "cuptiSubscribe_v2") \
  X(activityRegisterCallbacksV2, Result, (SubscriberHandle, BufferRequestedFuncV2, BufferCompletedFuncV2), false, \
    "cuptiActivityRegisterCallbacks_v2")                                                              \
  X(activityEnableV2, Result, (SubscriberHandle, ActivityKind, void*), false, "cuptiActivityEnable_v2") \
  X(activityDisableV2, Result, (SubscriberHandle, ActivityKind, void*), false, "cuptiActivityDisable_v2") \
  X(activityGetNextRecordV2, Result, (SubscriberHandle, uint8_t*, size_t, Activity**), false,         \
    "cuptiActivityGetNextRecord_v2")                                                                  \
  X(getTimestampV2, Result, (SubscriberHandle, uint64_t*), false, "cuptiGetTimestamp_v2")

struct Api {
#define GT_CUPTI_MEMBER(member, ret, params, required, ...) ret(*member) params = nullptr;
  GT_CUPTI_FUNCTIONS(GT_CUPTI_MEMBER)
#undef GT_CUPTI_MEMBER

  // Resolves every entry from `lib`; returns false (naming the symbol) when a required one is missing.
  bool resolve(const DynLib& lib, std::string* missingRequired);

  // CUPTI's own text for a result ("CUPTI_ERROR_UNKNOWN"), or ours when the library has none.
  std::string describe(Result code) const;

  // Whether the library has every subscriber-scoped call multi-subscriber mode needs.
  bool hasSubscriberScopedActivity() const {
    return subscribeV2 != nullptr && activityRegisterCallbacksV2 != nullptr && activityEnableV2 != nullptr &&
           activityDisableV2 != nullptr && activityGetNextRecordV2 != nullptr && getTimestampV2 != nullptr;
  }
};

// Our name for a result code; works without a loaded library.
const char* resultName(Result code);

}  // namespace gt::cupti
