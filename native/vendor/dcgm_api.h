// The DCGM entry points this project uses, as one table (an X-macro), resolved at run time from
// libdcgm.so.4 / .so.3 (or from the simulator). All of them are required: DCGM is optional as a
// whole, so a library lacking one is "DCGM unavailable" with the symbol named, never a crash.
#pragma once

#include <string>

#include "dcgm_abi.h"
#include "dynlib.h"

namespace gt::dcgm {

// X(member, return type, parameter list, symbol name)
#define GT_DCGM_FUNCTIONS(X)                                                                        \
  X(init, Return, (), "dcgmInit")                                                                   \
  X(shutdown, Return, (), "dcgmShutdown")                                                           \
  X(startEmbedded, Return, (int, Handle*), "dcgmStartEmbedded")                                     \
  X(stopEmbedded, Return, (Handle), "dcgmStopEmbedded")                                             \
  X(connectV2, Return, (const char*, ConnectParamsV2*, Handle*), "dcgmConnect_v2")                  \
  X(disconnect, Return, (Handle), "dcgmDisconnect")                                                 \
  X(getAllSupportedDevices, Return, (Handle, unsigned int*, int*), "dcgmGetAllSupportedDevices")    \
  X(groupCreate, Return, (Handle, int, const char*, GroupId*), "dcgmGroupCreate")                   \
  X(groupAddDevice, Return, (Handle, GroupId, unsigned int), "dcgmGroupAddDevice")                  \
  X(groupDestroy, Return, (Handle, GroupId), "dcgmGroupDestroy")                                    \
  X(fieldGroupCreate, Return, (Handle, int, const unsigned short*, const char*, FieldGroupId*),     \
    "dcgmFieldGroupCreate")                                                                         \
  X(fieldGroupDestroy, Return, (Handle, FieldGroupId), "dcgmFieldGroupDestroy")                     \
  X(watchFields, Return, (Handle, GroupId, FieldGroupId, long long, double, int), "dcgmWatchFields") \
  X(unwatchFields, Return, (Handle, GroupId, FieldGroupId), "dcgmUnwatchFields")                    \
  X(updateAllFields, Return, (Handle, int), "dcgmUpdateAllFields")                                  \
  X(getLatestValuesForFields, Return, (Handle, int, unsigned short*, unsigned int, FieldValueV1*),  \
    "dcgmGetLatestValuesForFields")                                                                 \
  X(errorString, const char*, (Return), "errorString")

struct Api {
#define GT_DCGM_MEMBER(member, ret, params, name) ret(*member) params = nullptr;
  GT_DCGM_FUNCTIONS(GT_DCGM_MEMBER)
#undef GT_DCGM_MEMBER

  // Resolves every entry from `lib`; false (with the first missing symbol named) if one is absent.
  bool resolve(const DynLib& lib, std::string* missing);
  // DCGM's own text for a return code when the library has one, else ours.
  std::string describe(Return code) const;
};

// DCGM's name for a return code ("DCGM_ST_CONNECTION_NOT_VALID", from dcgm_returns.def); works
// without a loaded library. A number DCGM does not define: "DCGM_ST_UNRECOGNISED".
const char* returnName(Return code);

// Whether a profiling watch failed because the GPUs' profiling counters are held elsewhere:
// another host engine (an embedded one in another process, or an nv-hostengine we are not
// connected to) or a CUPTI/Nsight profiler. DCGM answers DCGM_ST_IN_USE (-34, "the affected
// resource is in use") or DCGM_ST_PROFILING_LIBRARY_ERROR (-37, "The third-party Profiling module
// returned an unrecoverable error"; what dcgmi reports next to dcgm-exporter or a CUPTI profiler,
// NVIDIA/dcgm-exporter#7, NVIDIA/DCGM#56). Values: dcgm_structs.h lines 380 and 384.
bool isProfilingLock(Return code);

}  // namespace gt::dcgm
