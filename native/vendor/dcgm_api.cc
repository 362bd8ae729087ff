#include "dcgm_api.h"

namespace gt::dcgm {

bool Api::resolve(const DynLib& lib, std::string* missing) {
  bool ok = true;
#define GT_DCGM_RESOLVE(member, ret, params, name)                    \
  member = reinterpret_cast<ret(*) params>(lib.symbol(name));         \
  if (member == nullptr && ok && std::string(name) != "errorString") { \
    ok = false;                                                        \
    if (missing) *missing = name;                                      \
  }
  GT_DCGM_FUNCTIONS(GT_DCGM_RESOLVE)
#undef GT_DCGM_RESOLVE
  return ok;
}

std::string Api::describe(Return code) const {
  if (errorString != nullptr) {
    if (const char* text = errorString(code)) return text;
  }
  return returnName(code);
}

const char* returnName(Return code) {
  switch (code) {
    case kOk: return "DCGM_ST_OK";
    case kBadParam: return "DCGM_ST_BADPARAM";
    case kGenericError: return "DCGM_ST_GENERIC_ERROR";
    case kNotSupported: return "DCGM_ST_NOT_SUPPORTED";
    case kInitError: return "DCGM_ST_INIT_ERROR";
    case kUninitialized: return "DCGM_ST_UNINITIALIZED";
    case kNoData: return "DCGM_ST_NO_DATA";
    case kStaleData: return "DCGM_ST_STALE_DATA";
    case kNotWatched: return "DCGM_ST_NOT_WATCHED";
    case kNoPermission: return "DCGM_ST_NO_PERMISSION";
    case kGpuIsLost: return "DCGM_ST_GPU_IS_LOST";
    case kConnectionNotValid: return "DCGM_ST_CONNECTION_NOT_VALID";
    case kRequiresRoot: return "DCGM_ST_REQUIRES_ROOT";
    case kProfilingNotSupported: return "DCGM_ST_PROFILING_NOT_SUPPORTED";
    default: return "DCGM_ST_UNRECOGNISED";
  }
}

}  // namespace gt::dcgm
