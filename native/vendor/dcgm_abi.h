// Our own minimal declarations of the parts of NVIDIA's DCGM C ABI (libdcgm.so.4 / .so.3) that
// this project calls.
//
// Nothing here is copied from dcgm_structs.h / dcgm_fields.h / dcgm_agent.h: names are ours; the
// values and layouts are ABI facts read from NVIDIA/DCGM (dcgmlib/, commit 72fa3fe, July 2026).
// No DCGM package exists for these machines, so test/abi/dcgm_abi_check.cc checks these
// declarations against those facts written down as numbers (sizes, offsets, versions, sentinels).
#pragma once

#include <cstddef>
#include <cstdint>

namespace gt::dcgm {

using Return = int;               // dcgmReturn_t (a C enum)
using Handle = std::uintptr_t;    // dcgmHandle_t
using GroupId = std::uintptr_t;   // dcgmGpuGrp_t
using FieldGroupId = std::uintptr_t;  // dcgmFieldGrp_t

// Every dcgmReturn_t value (kOk, kInUse, kProfilingLibraryError, ...): native/vendor/dcgm_returns.def.
enum : Return {
#define GT_DCGM_RETURN(name, value, text) name = value,
#include "dcgm_returns.def"
#undef GT_DCGM_RETURN
};

// dcgmOperationMode_t: with AUTO the host engine updates watched fields on its own schedule.
constexpr int kOperationModeAuto = 1;
// dcgmGroupType_t
constexpr int kGroupEmpty = 1;
// DCGM_MAX_NUM_DEVICES (DCGM 2.0 and newer)
constexpr unsigned int kMaxNumDevices = 32;
constexpr size_t kMaxStrLength = 256;   // DCGM_MAX_STR_LENGTH
constexpr size_t kMaxBlobLength = 4096; // DCGM_MAX_BLOB_LENGTH

// Field types (dcgmFieldValue_v1::fieldType): single characters.
constexpr unsigned short kTypeDouble = 'd';
constexpr unsigned short kTypeInt64 = 'i';
constexpr unsigned short kTypeString = 's';

// Absent values. A value at or above BLANK is not a reading; the three just above it say why.
constexpr int64_t kInt64Blank = 0x7ffffffffffffff0LL;
constexpr int64_t kInt64NotFound = kInt64Blank + 1;
constexpr int64_t kInt64NotSupported = kInt64Blank + 2;
constexpr int64_t kInt64NotPermissioned = kInt64Blank + 3;
constexpr double kFp64Blank = 140737488355328.0;  // 2^47
constexpr double kFp64NotFound = kFp64Blank + 1.0;
constexpr double kFp64NotSupported = kFp64Blank + 2.0;
constexpr double kFp64NotPermissioned = kFp64Blank + 3.0;

// Field ids (numeric ids are stable across DCGM 3 and 4, which renamed many fields).
enum : unsigned short {
  kFieldUuid = 54,
  kFieldProfGrEngineActive = 1001,
  kFieldProfSmActive = 1002,
  kFieldProfSmOccupancy = 1003,
  kFieldProfTensorActive = 1004,
  kFieldProfDramActive = 1005,
  kFieldProfFp64Active = 1006,
  kFieldProfFp32Active = 1007,
  kFieldProfFp16Active = 1008,
  kFieldProfPcieTxBytes = 1009,  // bytes per second
  kFieldProfPcieRxBytes = 1010,
  kFieldProfNvlinkTxBytes = 1011,
  kFieldProfNvlinkRxBytes = 1012,
};

// dcgmFieldValue_v1: what dcgmGetLatestValuesForFields fills, one per requested field.
struct FieldValueV1 {
  unsigned int version;
  unsigned short fieldId;
  unsigned short fieldType;
  int status;  // a dcgmReturn_t for this field
  int64_t ts;  // microseconds since 1970; 0 before the first update
  union {
    int64_t i64;
    double dbl;
    char str[kMaxStrLength];
    char blob[kMaxBlobLength];
  } value;
};

// dcgmConnectV2Params_v2
struct ConnectParamsV2 {
  unsigned int version;
  unsigned int persistAfterDisconnect;  // 0: the host engine drops our watches when we go
  unsigned int timeoutMs;
  unsigned int addressIsUnixSocket;
};

// MAKE_DCGM_VERSION: the struct size in the low 24 bits, the version number above.
constexpr unsigned int makeVersion(size_t size, unsigned int version) {
  return static_cast<unsigned int>(size) | (version << 24U);
}
constexpr unsigned int kFieldValueVersion1 = makeVersion(sizeof(FieldValueV1), 1);
constexpr unsigned int kConnectParamsVersion2 = makeVersion(sizeof(ConnectParamsV2), 2);

}  // namespace gt::dcgm
