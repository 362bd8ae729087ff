// The CUPTI entry points the kernel-trace capture uses, as one table (an X-macro) resolved with
// dlopen/dlsym through DynLib. Every entry is required except cuptiGetResultString and
// cuptiGetCallbackName (the capture then falls back to our names: "CUPTI_ERROR_…", "cbid N").
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
  X(getCallbackName, Result, (CallbackDomain, uint32_t, const char**), false, "cuptiGetCallbackName")

struct Api {
#define GT_CUPTI_MEMBER(member, ret, params, required, ...) ret(*member) params = nullptr;
  GT_CUPTI_FUNCTIONS(GT_CUPTI_MEMBER)
#undef GT_CUPTI_MEMBER

  // Resolves every entry from `lib`; returns false (naming the symbol) when a required one is missing.
  bool resolve(const DynLib& lib, std::string* missingRequired);

  // CUPTI's own text for a result ("CUPTI_ERROR_UNKNOWN"), or ours when the library has none.
  std::string describe(Result code) const;
};

// Our name for a result code; works without a loaded library.
const char* resultName(Result code);

}  // namespace gt::cupti
