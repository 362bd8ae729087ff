// The simulator's own declarations of the NVTX injection ABI (NVTX v3's loader, in the NVIDIA/NVTX
// headers nvtxDetail/nvtxTypes.h, nvtxInit.h and nvToolsExt.h): what a library named by
// NVTX_INJECTION64_PATH receives. Written independently; checked against the real nvtx3 headers by
// test/abi/nvtx_abi_check.cc where they are installed.
//
// The loader (compiled into the application) calls the injection's exported
//   int InitializeInjectionNvtx2(const void* (*getExportTable)(uint32_t exportTableId))
// at the first NVTX call; getExportTable(CALLBACKS) gives GetModuleFunctionTable, which hands out,
// per module, an array of pointers to the application's function-pointer slots: the injection
// writes its implementations into the slots it handles (the others become no-ops). 0 = failure.
#pragma once

#include <cstddef>
#include <cstdint>

typedef void (*simNvtxFunctionPointer)(void);
typedef simNvtxFunctionPointer** simNvtxFunctionTable;  // array of pointers to function pointers

#define SIM_NVTX_ETID_CALLBACKS 1u

struct simNvtxExportTableCallbacks {
  size_t structSize;
  int (*getModuleFunctionTable)(int module, simNvtxFunctionTable* outTable, unsigned int* outSize);
};

// Callback modules.
#define SIM_NVTX_CB_MODULE_CORE 1
#define SIM_NVTX_CB_MODULE_CORE2 5

// Slots of the CORE module (the default domain).
#define SIM_NVTX_CBID_CORE_MarkEx 1
#define SIM_NVTX_CBID_CORE_MarkA 2
#define SIM_NVTX_CBID_CORE_RangeStartEx 4
#define SIM_NVTX_CBID_CORE_RangeStartA 5
#define SIM_NVTX_CBID_CORE_RangeEnd 7
#define SIM_NVTX_CBID_CORE_RangePushEx 8
#define SIM_NVTX_CBID_CORE_RangePushA 9
#define SIM_NVTX_CBID_CORE_RangePop 11

// Slots of the CORE2 module (domains).
#define SIM_NVTX_CBID_CORE2_DomainMarkEx 1
#define SIM_NVTX_CBID_CORE2_DomainRangeStartEx 2
#define SIM_NVTX_CBID_CORE2_DomainRangeEnd 3
#define SIM_NVTX_CBID_CORE2_DomainRangePushEx 4
#define SIM_NVTX_CBID_CORE2_DomainRangePop 5
#define SIM_NVTX_CBID_CORE2_DomainRegisterStringA 10
#define SIM_NVTX_CBID_CORE2_DomainCreateA 12
#define SIM_NVTX_CBID_CORE2_DomainDestroy 14

#define SIM_NVTX_MESSAGE_TYPE_ASCII 1
#define SIM_NVTX_MESSAGE_TYPE_REGISTERED 3

// nvtxEventAttributes_v2 (48 bytes).
struct simNvtxEventAttributes {
  uint16_t version;
  uint16_t size;
  uint32_t category;
  int32_t colorType;
  uint32_t color;
  int32_t payloadType;
  int32_t reserved0;
  uint64_t payload;  // a union of 8-byte values
  int32_t messageType;
  const void* message;  // a union: const char* (ASCII), const wchar_t*, or a registered string handle
};
