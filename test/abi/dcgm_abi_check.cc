// Checks native/vendor/dcgm_abi.h against DCGM ABI facts. No DCGM header or package exists for
// these machines, so the facts are written here as numbers, read from NVIDIA/DCGM
// (dcgmlib/dcgm_structs.h, dcgm_fields.h, dcgm_agent.h at commit 72fa3fe, July 2026):
//   dcgmFieldValue_v1 { unsigned int version; unsigned short fieldId; unsigned short fieldType;
//     int status; int64_t ts; union { int64_t i64; double dbl; char str[256]; char blob[4096]; } value; }
//   dcgmConnectV2Params_v2 { unsigned int version, persistAfterDisconnect, timeoutMs, addressIsUnixSocket; }
//   MAKE_DCGM_VERSION(type, ver) = sizeof(type) | (ver << 24)
//   dcgmReturn_t: every value, dcgm_structs.h lines 346-415 (the list below)
// A mismatch fails the compile (static_assert) or the run (the printed count).
#include <cstdio>
#include <cstddef>
#include <cstring>

#include "vendor/dcgm_abi.h"
#include "vendor/dcgm_api.h"

using namespace gt::dcgm;

// Every dcgmReturn_t name and value in NVIDIA/DCGM dcgmlib/dcgm_structs.h (72fa3fe, lines 346-415).
struct ReturnFact {
  const char* name;
  int value;
};
static const ReturnFact kHeaderReturns[] = {
    {"DCGM_ST_OK", 0},
    {"DCGM_ST_BADPARAM", -1},
    {"DCGM_ST_GENERIC_ERROR", -3},
    {"DCGM_ST_MEMORY", -4},
    {"DCGM_ST_NOT_CONFIGURED", -5},
    {"DCGM_ST_NOT_SUPPORTED", -6},
    {"DCGM_ST_INIT_ERROR", -7},
    {"DCGM_ST_NVML_ERROR", -8},
    {"DCGM_ST_PENDING", -9},
    {"DCGM_ST_UNINITIALIZED", -10},
    {"DCGM_ST_TIMEOUT", -11},
    {"DCGM_ST_VER_MISMATCH", -12},
    {"DCGM_ST_UNKNOWN_FIELD", -13},
    {"DCGM_ST_NO_DATA", -14},
    {"DCGM_ST_STALE_DATA", -15},
    {"DCGM_ST_NOT_WATCHED", -16},
    {"DCGM_ST_NO_PERMISSION", -17},
    {"DCGM_ST_GPU_IS_LOST", -18},
    {"DCGM_ST_RESET_REQUIRED", -19},
    {"DCGM_ST_FUNCTION_NOT_FOUND", -20},
    {"DCGM_ST_CONNECTION_NOT_VALID", -21},
    {"DCGM_ST_GPU_NOT_SUPPORTED", -22},
    {"DCGM_ST_GROUP_INCOMPATIBLE", -23},
    {"DCGM_ST_MAX_LIMIT", -24},
    {"DCGM_ST_LIBRARY_NOT_FOUND", -25},
    {"DCGM_ST_DUPLICATE_KEY", -26},
    {"DCGM_ST_GPU_IN_SYNC_BOOST_GROUP", -27},
    {"DCGM_ST_GPU_NOT_IN_SYNC_BOOST_GROUP", -28},
    {"DCGM_ST_REQUIRES_ROOT", -29},
    {"DCGM_ST_NVVS_ERROR", -30},
    {"DCGM_ST_INSUFFICIENT_SIZE", -31},
    {"DCGM_ST_FIELD_UNSUPPORTED_BY_API", -32},
    {"DCGM_ST_MODULE_NOT_LOADED", -33},
    {"DCGM_ST_IN_USE", -34},
    {"DCGM_ST_GROUP_IS_EMPTY", -35},
    {"DCGM_ST_PROFILING_NOT_SUPPORTED", -36},
    {"DCGM_ST_PROFILING_LIBRARY_ERROR", -37},
    {"DCGM_ST_PROFILING_MULTI_PASS", -38},
    {"DCGM_ST_DIAG_ALREADY_RUNNING", -39},
    {"DCGM_ST_DIAG_BAD_JSON", -40},
    {"DCGM_ST_DIAG_BAD_LAUNCH", -41},
    {"DCGM_ST_DIAG_UNUSED", -42},
    {"DCGM_ST_DIAG_THRESHOLD_EXCEEDED", -43},
    {"DCGM_ST_INSUFFICIENT_DRIVER_VERSION", -44},
    {"DCGM_ST_INSTANCE_NOT_FOUND", -45},
    {"DCGM_ST_COMPUTE_INSTANCE_NOT_FOUND", -46},
    {"DCGM_ST_CHILD_NOT_KILLED", -47},
    {"DCGM_ST_3RD_PARTY_LIBRARY_ERROR", -48},
    {"DCGM_ST_INSUFFICIENT_RESOURCES", -49},
    {"DCGM_ST_PLUGIN_EXCEPTION", -50},
    {"DCGM_ST_NVVS_ISOLATE_ERROR", -51},
    {"DCGM_ST_NVVS_BINARY_NOT_FOUND", -52},
    {"DCGM_ST_NVVS_KILLED", -53},
    {"DCGM_ST_PAUSED", -54},
    {"DCGM_ST_ALREADY_INITIALIZED", -55},
    {"DCGM_ST_NVML_NOT_LOADED", -56},
    {"DCGM_ST_NVML_DRIVER_TIMEOUT", -57},
    {"DCGM_ST_NVVS_NO_AVAILABLE_TEST", -58},
    {"DCGM_ST_MNDIAG_CONNECTION_NOT_AVAILABLE", -59},
    {"DCGM_ST_MNDIAG_CONNECTION_UNAUTHORIZED", -60},
    {"DCGM_ST_REMOTE_SSH_CONNECTION_FAILED", -61},
    {"DCGM_ST_CHILD_SPAWN_FAILED", -62},
    {"DCGM_ST_FILE_IO_ERROR", -63},
    {"DCGM_ST_CHILD_SIGNAL_RECEIVED", -64},
    {"DCGM_ST_CALLER_ALREADY_STOPPED", -65},
    {"DCGM_ST_DIAG_STOPPED", -66},
    {"DCGM_ST_GPUS_DETACHED", -67},
};

// native/vendor/dcgm_returns.def, the project's one table of return codes.
struct OurReturn {
  int value;
  const char* name;
};
static const OurReturn kOurReturns[] = {
#define GT_DCGM_RETURN(constant, value, text) {constant, text},
#include "vendor/dcgm_returns.def"
#undef GT_DCGM_RETURN
};

static int checks = 0;
static int failures = 0;

#define EXPECT_EQ(actual, expected)                                                            \
  do {                                                                                         \
    ++checks;                                                                                  \
    if (static_cast<long long>(actual) != static_cast<long long>(expected)) {                  \
      ++failures;                                                                              \
      std::printf("MISMATCH %s = %lld, DCGM has %lld\n", #actual, static_cast<long long>(actual), \
                  static_cast<long long>(expected));                                           \
    }                                                                                          \
  } while (0)

int main() {
  // dcgmFieldValue_v1: 12 bytes of header, ts aligned to 8, then the 4096-byte union.
  EXPECT_EQ(sizeof(FieldValueV1), 4120);
  EXPECT_EQ(offsetof(FieldValueV1, version), 0);
  EXPECT_EQ(offsetof(FieldValueV1, fieldId), 4);
  EXPECT_EQ(offsetof(FieldValueV1, fieldType), 6);
  EXPECT_EQ(offsetof(FieldValueV1, status), 8);
  EXPECT_EQ(offsetof(FieldValueV1, ts), 16);
  EXPECT_EQ(offsetof(FieldValueV1, value), 24);
  EXPECT_EQ(sizeof(FieldValueV1{}.value.str), 256);
  EXPECT_EQ(kFieldValueVersion1, 0x01001018);  // 4120 | 1 << 24
  // dcgmConnectV2Params_v2
  EXPECT_EQ(sizeof(ConnectParamsV2), 16);
  EXPECT_EQ(offsetof(ConnectParamsV2, persistAfterDisconnect), 4);
  EXPECT_EQ(offsetof(ConnectParamsV2, timeoutMs), 8);
  EXPECT_EQ(offsetof(ConnectParamsV2, addressIsUnixSocket), 12);
  EXPECT_EQ(kConnectParamsVersion2, 0x02000010);  // 16 | 2 << 24
  // Handles are uintptr_t.
  EXPECT_EQ(sizeof(Handle), sizeof(void*));
  EXPECT_EQ(sizeof(GroupId), sizeof(void*));
  EXPECT_EQ(sizeof(FieldGroupId), sizeof(void*));
  // dcgmReturn_t: the table names every value of the header, each with the header's number, and
  // nothing else.
  EXPECT_EQ(sizeof(kOurReturns) / sizeof(kOurReturns[0]), sizeof(kHeaderReturns) / sizeof(kHeaderReturns[0]));
  for (const ReturnFact& fact : kHeaderReturns) {
    ++checks;
    bool found = false;
    for (const OurReturn& ours : kOurReturns) {
      if (std::strcmp(ours.name, fact.name) != 0) continue;
      found = true;
      if (ours.value != fact.value) {
        ++failures;
        std::printf("MISMATCH %s = %d, DCGM has %d\n", fact.name, ours.value, fact.value);
      }
      ++checks;
      if (std::strcmp(returnName(fact.value), fact.name) != 0) {
        ++failures;
        std::printf("MISMATCH returnName(%d) = %s, DCGM has %s\n", fact.value, returnName(fact.value), fact.name);
      }
    }
    if (!found) {
      ++failures;
      std::printf("MISSING %s (%d) from dcgm_returns.def\n", fact.name, fact.value);
    }
  }
  ++checks;
  if (std::strcmp(returnName(-2), "DCGM_ST_UNRECOGNISED") != 0 || std::strcmp(returnName(-68), "DCGM_ST_UNRECOGNISED") != 0) ++failures;
  EXPECT_EQ(isProfilingLock(-34), 1);
  EXPECT_EQ(isProfilingLock(-37), 1);
  EXPECT_EQ(isProfilingLock(-36), 0);
  // Values the code names directly
  EXPECT_EQ(kOk, 0);
  EXPECT_EQ(kBadParam, -1);
  EXPECT_EQ(kGenericError, -3);
  EXPECT_EQ(kNotSupported, -6);
  EXPECT_EQ(kInitError, -7);
  EXPECT_EQ(kUninitialized, -10);
  EXPECT_EQ(kNoData, -14);
  EXPECT_EQ(kStaleData, -15);
  EXPECT_EQ(kNotWatched, -16);
  EXPECT_EQ(kNoPermission, -17);
  EXPECT_EQ(kGpuIsLost, -18);
  EXPECT_EQ(kConnectionNotValid, -21);
  EXPECT_EQ(kRequiresRoot, -29);
  EXPECT_EQ(kProfilingNotSupported, -36);
  // Enums and limits
  EXPECT_EQ(kOperationModeAuto, 1);
  EXPECT_EQ(kGroupEmpty, 1);
  EXPECT_EQ(kMaxNumDevices, 32);
  EXPECT_EQ(kTypeDouble, 'd');
  EXPECT_EQ(kTypeInt64, 'i');
  EXPECT_EQ(kTypeString, 's');
  // Sentinels
  EXPECT_EQ(kInt64Blank, 0x7ffffffffffffff0LL);
  EXPECT_EQ(kInt64NotSupported, 0x7ffffffffffffff2LL);
  EXPECT_EQ(kInt64NotPermissioned, 0x7ffffffffffffff3LL);
  ++checks;
  if (kFp64Blank != 140737488355328.0 || kFp64NotSupported != 140737488355330.0) ++failures;
  // Field ids
  EXPECT_EQ(kFieldUuid, 54);
  EXPECT_EQ(kFieldProfGrEngineActive, 1001);
  EXPECT_EQ(kFieldProfSmActive, 1002);
  EXPECT_EQ(kFieldProfSmOccupancy, 1003);
  EXPECT_EQ(kFieldProfTensorActive, 1004);
  EXPECT_EQ(kFieldProfDramActive, 1005);
  EXPECT_EQ(kFieldProfFp64Active, 1006);
  EXPECT_EQ(kFieldProfFp32Active, 1007);
  EXPECT_EQ(kFieldProfFp16Active, 1008);
  EXPECT_EQ(kFieldProfPcieTxBytes, 1009);
  EXPECT_EQ(kFieldProfPcieRxBytes, 1010);
  EXPECT_EQ(kFieldProfNvlinkTxBytes, 1011);
  EXPECT_EQ(kFieldProfNvlinkRxBytes, 1012);
  if (failures != 0) {
    std::printf("dcgm ABI: %d of %d checks FAILED\n", failures, checks);
    return 1;
  }
  std::printf("dcgm ABI: %d checks passed\n", checks);
  return 0;
}
