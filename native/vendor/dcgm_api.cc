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
#define GT_DCGM_RETURN(name, value, text) \
  case name:                              \
    return text;
#include "dcgm_returns.def"
#undef GT_DCGM_RETURN
    default: return "DCGM_ST_UNRECOGNISED";
  }
}

bool isProfilingLock(Return code) { return code == kInUse || code == kProfilingLibraryError; }

}  // namespace gt::dcgm
