// The simulator's NVTX injection: what libcupti does when NVTX_INJECTION64_PATH names it. The
// application's NVTX loader calls InitializeInjectionNvtx2; the simulator fills the NVTX slots of
// the default domain (CORE) and of domains (CORE2) with handlers that write CUPTI MARKER records
// (cuptiMarker: only while the MARKER kind is enabled, as CUPTI does). Ranges get CUPTI-style ids:
// a START record with the name and domain, an END record with the same id; push/pop ranges keep a
// per-thread stack per domain, as NVTX defines them. Names go into records as pointers that live
// for the process (CUPTI's do too).
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cupti_sim.h"
#include "cupti_types.h"
#include "nvtx_types.h"

#define SIM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// A domain handle is a pointer to its name (permanent); the default domain is nullptr.
const char* domainName(const void* domain) { return static_cast<const char*>(domain); }

// The text of an event's message (ASCII or a registered string: both are permanent C strings here;
// wide strings are not played).
const char* messageOf(const simNvtxEventAttributes* a) {
  if (a == nullptr || a->size < sizeof(simNvtxEventAttributes)) return "";
  if (a->messageType == SIM_NVTX_MESSAGE_TYPE_ASCII || a->messageType == SIM_NVTX_MESSAGE_TYPE_REGISTERED) {
    return a->message != nullptr ? static_cast<const char*>(a->message) : "";
  }
  return "";
}

// Per thread, per domain: the ids of the open push ranges.
std::vector<uint32_t>& pushStack(const void* domain) {
  thread_local std::map<const void*, std::vector<uint32_t>> stacks;
  return stacks[domain];
}

void mark(const void* domain, const char* message) {
  if (!gtsim::cuptiMarkersEnabled()) return;
  gtsim::cuptiMarker(SIM_CUPTI_MARKER_INSTANTANEOUS, gtsim::cuptiNextMarkerId(), gtsim::cuptiPermanentName(message),
                     domainName(domain));
}

uint64_t rangeStart(const void* domain, const char* message) {
  const uint32_t id = gtsim::cuptiNextMarkerId();
  if (gtsim::cuptiMarkersEnabled()) {
    gtsim::cuptiMarker(SIM_CUPTI_MARKER_START, id, gtsim::cuptiPermanentName(message), domainName(domain));
  }
  return id;
}

void rangeEnd(const void* domain, uint64_t id) {
  if (id == 0 || id > UINT32_MAX) return;
  gtsim::cuptiMarker(SIM_CUPTI_MARKER_END, static_cast<uint32_t>(id), nullptr, domainName(domain));
}

int rangePush(const void* domain, const char* message) {
  std::vector<uint32_t>& stack = pushStack(domain);
  stack.push_back(static_cast<uint32_t>(rangeStart(domain, message)));
  return static_cast<int>(stack.size()) - 1;  // the level of the range pushed
}

int rangePop(const void* domain) {
  std::vector<uint32_t>& stack = pushStack(domain);
  if (stack.empty()) return -1;
  const uint32_t id = stack.back();
  stack.pop_back();
  rangeEnd(domain, id);
  return static_cast<int>(stack.size());
}

// CORE: the default domain.
void markEx(const simNvtxEventAttributes* a) { mark(nullptr, messageOf(a)); }
void markA(const char* m) { mark(nullptr, m ? m : ""); }
uint64_t rangeStartEx(const simNvtxEventAttributes* a) { return rangeStart(nullptr, messageOf(a)); }
uint64_t rangeStartA(const char* m) { return rangeStart(nullptr, m ? m : ""); }
void rangeEndCore(uint64_t id) { rangeEnd(nullptr, id); }
int rangePushEx(const simNvtxEventAttributes* a) { return rangePush(nullptr, messageOf(a)); }
int rangePushA(const char* m) { return rangePush(nullptr, m ? m : ""); }
int rangePopCore() { return rangePop(nullptr); }

// CORE2: domains.
void domainMarkEx(const void* d, const simNvtxEventAttributes* a) { mark(d, messageOf(a)); }
uint64_t domainRangeStartEx(const void* d, const simNvtxEventAttributes* a) { return rangeStart(d, messageOf(a)); }
void domainRangeEnd(const void* d, uint64_t id) { rangeEnd(d, id); }
int domainRangePushEx(const void* d, const simNvtxEventAttributes* a) { return rangePush(d, messageOf(a)); }
int domainRangePop(const void* d) { return rangePop(d); }
const void* domainRegisterStringA(const void*, const char* s) { return gtsim::cuptiPermanentName(s ? s : ""); }
const void* domainCreateA(const char* name) { return gtsim::cuptiPermanentName(name ? name : ""); }
void domainDestroy(const void*) {}

template <typename Fn>
void setSlot(simNvtxFunctionTable table, unsigned int size, unsigned int id, Fn fn) {
  if (table == nullptr || id == 0 || id >= size || table[id] == nullptr) return;
  *table[id] = reinterpret_cast<simNvtxFunctionPointer>(fn);
}

}  // namespace

SIM_EXPORT int InitializeInjectionNvtx2(const void* (*getExportTable)(uint32_t exportTableId)) {
  if (getExportTable == nullptr) return 0;
  const auto* callbacks = static_cast<const simNvtxExportTableCallbacks*>(getExportTable(SIM_NVTX_ETID_CALLBACKS));
  if (callbacks == nullptr || callbacks->structSize < sizeof(simNvtxExportTableCallbacks) ||
      callbacks->getModuleFunctionTable == nullptr) {
    return 0;
  }
  simNvtxFunctionTable table = nullptr;
  unsigned int size = 0;
  if (callbacks->getModuleFunctionTable(SIM_NVTX_CB_MODULE_CORE, &table, &size) == 0 || table == nullptr) return 0;
  setSlot(table, size, SIM_NVTX_CBID_CORE_MarkEx, markEx);
  setSlot(table, size, SIM_NVTX_CBID_CORE_MarkA, markA);
  setSlot(table, size, SIM_NVTX_CBID_CORE_RangeStartEx, rangeStartEx);
  setSlot(table, size, SIM_NVTX_CBID_CORE_RangeStartA, rangeStartA);
  setSlot(table, size, SIM_NVTX_CBID_CORE_RangeEnd, rangeEndCore);
  setSlot(table, size, SIM_NVTX_CBID_CORE_RangePushEx, rangePushEx);
  setSlot(table, size, SIM_NVTX_CBID_CORE_RangePushA, rangePushA);
  setSlot(table, size, SIM_NVTX_CBID_CORE_RangePop, rangePopCore);
  table = nullptr;
  size = 0;
  if (callbacks->getModuleFunctionTable(SIM_NVTX_CB_MODULE_CORE2, &table, &size) != 0 && table != nullptr) {
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainMarkEx, domainMarkEx);
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainRangeStartEx, domainRangeStartEx);
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainRangeEnd, domainRangeEnd);
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainRangePushEx, domainRangePushEx);
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainRangePop, domainRangePop);
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainRegisterStringA, domainRegisterStringA);
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainCreateA, domainCreateA);
    setSlot(table, size, SIM_NVTX_CBID_CORE2_DomainDestroy, domainDestroy);
  }
  return 1;
}
