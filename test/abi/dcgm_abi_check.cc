// Checks native/vendor/dcgm_abi.h against DCGM ABI facts. No DCGM header or package exists for
// these machines, so the facts are written here as numbers, read from NVIDIA/DCGM
// (dcgmlib/dcgm_structs.h, dcgm_fields.h, dcgm_agent.h at commit 72fa3fe, July 2026):
//   dcgmFieldValue_v1 { unsigned int version; unsigned short fieldId; unsigned short fieldType;
//     int status; int64_t ts; union { int64_t i64; double dbl; char str[256]; char blob[4096]; } value; }
//   dcgmConnectV2Params_v2 { unsigned int version, persistAfterDisconnect, timeoutMs, addressIsUnixSocket; }
//   MAKE_DCGM_VERSION(type, ver) = sizeof(type) | (ver << 24)
// A mismatch fails the compile (static_assert) or the run (the printed count).
#include <cstdio>
#include <cstddef>

#include "vendor/dcgm_abi.h"

using namespace gt::dcgm;

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
  // dcgmReturn_t values
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
