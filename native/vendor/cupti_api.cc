#include "cupti_api.h"

#include <initializer_list>

namespace gt::cupti {

namespace {

template <typename Fn>
void resolveOne(const DynLib& lib, Fn*& fn, std::initializer_list<const char*> names) {
  fn = nullptr;
  for (const char* name : names) {
    if (void* sym = lib.symbol(name)) {
      fn = reinterpret_cast<Fn*>(sym);
      return;
    }
  }
}

const char* firstName(std::initializer_list<const char*> names) { return *names.begin(); }

}  // namespace

bool Api::resolve(const DynLib& lib, std::string* missingRequired) {
#define GT_CUPTI_RESOLVE(member, ret, params, required, ...)         \
  resolveOne(lib, member, {__VA_ARGS__});                            \
  if ((required) && member == nullptr) {                             \
    if (missingRequired) *missingRequired = firstName({__VA_ARGS__});      \
    return false;                                                    \
  }
  GT_CUPTI_FUNCTIONS(GT_CUPTI_RESOLVE)
#undef GT_CUPTI_RESOLVE
  return true;
}

std::string Api::describe(Result code) const {
  if (getResultString != nullptr) {
    const char* text = nullptr;
    if (getResultString(code, &text) == kSuccess && text != nullptr) return text;
  }
  return resultName(code);
}

const char* resultName(Result code) {
  switch (code) {
    case 0: return "CUPTI_SUCCESS";
    case 1: return "CUPTI_ERROR_INVALID_PARAMETER";
    case 2: return "CUPTI_ERROR_INVALID_DEVICE";
    case 3: return "CUPTI_ERROR_INVALID_CONTEXT";
    case 7: return "CUPTI_ERROR_INVALID_OPERATION";
    case 8: return "CUPTI_ERROR_OUT_OF_MEMORY";
    case 9: return "CUPTI_ERROR_HARDWARE";
    case 11: return "CUPTI_ERROR_API_NOT_IMPLEMENTED";
    case 12: return "CUPTI_ERROR_MAX_LIMIT_REACHED";
    case 13: return "CUPTI_ERROR_NOT_READY";
    case 14: return "CUPTI_ERROR_NOT_COMPATIBLE";
    case 15: return "CUPTI_ERROR_NOT_INITIALIZED";
    case 18: return "CUPTI_ERROR_QUEUE_EMPTY";
    case 19: return "CUPTI_ERROR_INVALID_HANDLE";
    case 21: return "CUPTI_ERROR_INVALID_KIND";
    case 23: return "CUPTI_ERROR_DISABLED";
    case 26: return "CUPTI_ERROR_HARDWARE_BUSY";
    case 27: return "CUPTI_ERROR_NOT_SUPPORTED";
    case 35: return "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES";
    case 39: return "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED";
    case 999: return "CUPTI_ERROR_UNKNOWN";
    default: return "CUPTI_ERROR_UNRECOGNISED";
  }
}

}  // namespace gt::cupti
