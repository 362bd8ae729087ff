// Compiled by test/inject-e2e.test.ts against NVIDIA's nvtx3 headers (/usr/local/cuda/include):
// the simulator's own declarations of the NVTX injection ABI (native/sim/nvtx_types.h) must match
// NVIDIA's sizes, offsets and ids; a mismatch fails the compile. The fake CUDA application's own
// NVTX loader (test/native/fake_cuda_app.c) uses the same numbers, and is run against the real
// loader too (-DGT_REAL_NVTX).
// (nvToolsExt.h brings nvtxDetail/nvtxTypes.h, the injection ids and export tables, with it.)
#include <nvtx3/nvToolsExt.h>

#include <cstddef>
#include <cstdio>

#include "sim/nvtx_types.h"

static int checks = 0;
#define SAME(a, b)                          \
  static_assert((a) == (b), #a " != " #b); \
  ++checks

int main() {
  SAME(sizeof(simNvtxEventAttributes), sizeof(nvtxEventAttributes_v2));
  SAME(offsetof(simNvtxEventAttributes, size), offsetof(nvtxEventAttributes_v2, size));
  SAME(offsetof(simNvtxEventAttributes, category), offsetof(nvtxEventAttributes_v2, category));
  SAME(offsetof(simNvtxEventAttributes, colorType), offsetof(nvtxEventAttributes_v2, colorType));
  SAME(offsetof(simNvtxEventAttributes, color), offsetof(nvtxEventAttributes_v2, color));
  SAME(offsetof(simNvtxEventAttributes, payloadType), offsetof(nvtxEventAttributes_v2, payloadType));
  SAME(offsetof(simNvtxEventAttributes, payload), offsetof(nvtxEventAttributes_v2, payload));
  SAME(offsetof(simNvtxEventAttributes, messageType), offsetof(nvtxEventAttributes_v2, messageType));
  SAME(offsetof(simNvtxEventAttributes, message), offsetof(nvtxEventAttributes_v2, message));
  SAME(sizeof(simNvtxExportTableCallbacks), sizeof(NvtxExportTableCallbacks));
  SAME(offsetof(simNvtxExportTableCallbacks, getModuleFunctionTable), offsetof(NvtxExportTableCallbacks, GetModuleFunctionTable));
  SAME(SIM_NVTX_ETID_CALLBACKS, NVTX_ETID_CALLBACKS);
  SAME(SIM_NVTX_CB_MODULE_CORE, NVTX_CB_MODULE_CORE);
  SAME(SIM_NVTX_CB_MODULE_CORE2, NVTX_CB_MODULE_CORE2);
  SAME(SIM_NVTX_CBID_CORE_MarkEx, NVTX_CBID_CORE_MarkEx);
  SAME(SIM_NVTX_CBID_CORE_MarkA, NVTX_CBID_CORE_MarkA);
  SAME(SIM_NVTX_CBID_CORE_RangeStartEx, NVTX_CBID_CORE_RangeStartEx);
  SAME(SIM_NVTX_CBID_CORE_RangeStartA, NVTX_CBID_CORE_RangeStartA);
  SAME(SIM_NVTX_CBID_CORE_RangeEnd, NVTX_CBID_CORE_RangeEnd);
  SAME(SIM_NVTX_CBID_CORE_RangePushEx, NVTX_CBID_CORE_RangePushEx);
  SAME(SIM_NVTX_CBID_CORE_RangePushA, NVTX_CBID_CORE_RangePushA);
  SAME(SIM_NVTX_CBID_CORE_RangePop, NVTX_CBID_CORE_RangePop);
  SAME(SIM_NVTX_CBID_CORE2_DomainMarkEx, NVTX_CBID_CORE2_DomainMarkEx);
  SAME(SIM_NVTX_CBID_CORE2_DomainRangeStartEx, NVTX_CBID_CORE2_DomainRangeStartEx);
  SAME(SIM_NVTX_CBID_CORE2_DomainRangeEnd, NVTX_CBID_CORE2_DomainRangeEnd);
  SAME(SIM_NVTX_CBID_CORE2_DomainRangePushEx, NVTX_CBID_CORE2_DomainRangePushEx);
  SAME(SIM_NVTX_CBID_CORE2_DomainRangePop, NVTX_CBID_CORE2_DomainRangePop);
  SAME(SIM_NVTX_CBID_CORE2_DomainRegisterStringA, NVTX_CBID_CORE2_DomainRegisterStringA);
  SAME(SIM_NVTX_CBID_CORE2_DomainCreateA, NVTX_CBID_CORE2_DomainCreateA);
  SAME(SIM_NVTX_CBID_CORE2_DomainDestroy, NVTX_CBID_CORE2_DomainDestroy);
  SAME(SIM_NVTX_MESSAGE_TYPE_ASCII, NVTX_MESSAGE_TYPE_ASCII);
  SAME(SIM_NVTX_MESSAGE_TYPE_REGISTERED, NVTX_MESSAGE_TYPE_REGISTERED);
  std::printf("NVTX injection ABI: %d checks passed (nvtxEventAttributes_v2 %zu bytes)\n", checks, sizeof(nvtxEventAttributes_v2));
  return 0;
}
