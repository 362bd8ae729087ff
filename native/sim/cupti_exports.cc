// The simulator's CUPTI: the activity entry points a capture uses, as libcupti exports them.
// While activity kinds are enabled, a producer thread of the simulator's own plays a GPU running
// the scenario's kernels (and memcpys, memsets, API calls, NVTX step ranges), writes records in
// the layout of the CUPTI version it reports into buffers obtained from the registered
// buffer-requested callback, and hands them back through buffer-completed, as CUPTI does.
// Scenario key "cupti" (see scenario.h); test hooks: gtsim_cupti_configure, gtsim_cupti_state,
// gtsim_cupti_counters.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

#include "cupti_types.h"
#include "scenario.h"

#define SIM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// The simulated CUPTI clock: monotonic ns plus an offset, so timestamps are beyond 2^53 like a
// real GPU's ns-since-epoch clock (a client must not squeeze them through a double).
constexpr uint64_t kClockOffsetNs = 1'700'000'000'000'000'000ull;

uint64_t simNowNs() {
  return kClockOffsetNs + static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                    std::chrono::steady_clock::now().time_since_epoch())
                                                    .count());
}

struct CuptiSim {
  // Configuration and subscription (guarded by configMutex).
  std::mutex configMutex;
  gtsim::CuptiSpec spec;
  bool subscribed = false;
  std::atomic<uint64_t> enabledMask{0};  // bit per activity kind
  simCuptiRequestFn request = nullptr;
  simCuptiCompleteFn complete = nullptr;

  // The buffer being filled and the ones held back (guarded by bufferMutex; callbacks are called
  // with it held, as CUPTI serialises them).
  std::mutex bufferMutex;
  uint8_t* current = nullptr;
  size_t currentSize = 0, currentUsed = 0;
  std::vector<std::pair<uint8_t*, size_t>> held;
  std::atomic<uint64_t> dropped{0};

  // Producer thread.
  std::mutex threadMutex;
  std::condition_variable threadCv;
  std::thread producer;
  bool producerStop = false;

  // Counters for tests.
  std::atomic<uint64_t> recordsProduced{0}, recordsDropped{0}, nullBuffers{0}, unsafeNullBuffers{0},
      buffersCompleted{0};

  uint32_t correlation = 0;
  uint32_t markerId = 0;
};

CuptiSim& sim() {
  static CuptiSim* s = new CuptiSim();  // immortal, like the NVML state
  return *s;
}

// Names handed out in records stay valid for the life of the process (CUPTI's do too): a record
// may be read long after the producer that wrote it has ended.
const char* permanentName(const std::string& name) {
  static std::mutex* mutex = new std::mutex();
  static std::set<std::string>* names = new std::set<std::string>();
  std::lock_guard<std::mutex> lock(*mutex);
  return names->insert(name).first->c_str();
}

bool kindEnabled(int kind) { return (sim().enabledMask.load() >> kind) & 1u; }

uint32_t currentVersion() {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  return s.spec.version;
}

// The "never returns a buffer" fault (holdBuffersWhenFileExists): on while the file exists.
bool keepingBuffers(const gtsim::CuptiSpec& spec) {
  return !spec.holdBuffersWhenFileExists.empty() && ::access(spec.holdBuffersWhenFileExists.c_str(), F_OK) == 0;
}

// With bufferMutex held: hand the current buffer back (or hold it).
void completeCurrentLocked(bool forceRelease) {
  CuptiSim& s = sim();
  if (s.current == nullptr) return;
  uint8_t* buffer = s.current;
  const size_t size = s.currentSize, used = s.currentUsed;
  s.current = nullptr;
  s.currentSize = s.currentUsed = 0;
  if ((s.spec.holdBuffers && !forceRelease) || keepingBuffers(s.spec)) {
    s.held.emplace_back(buffer, used);
    return;
  }
  s.buffersCompleted.fetch_add(1);
  if (s.complete) s.complete(nullptr, 0, buffer, size, used);
}

// With bufferMutex held: room for `bytes` more, asking the client for a buffer when needed.
uint8_t* reserveLocked(size_t bytes, uint32_t version) {
  CuptiSim& s = sim();
  if (s.current != nullptr && s.currentUsed + bytes > s.currentSize) completeCurrentLocked(false);
  if (s.current == nullptr) {
    uint8_t* buffer = nullptr;
    size_t size = 0, maxRecords = 0;
    if (s.request) s.request(&buffer, &size, &maxRecords);
    if (buffer == nullptr || size < bytes) {
      s.nullBuffers.fetch_add(1);
      // Before CUPTI API 27 a null buffer is not a supported answer (real CUPTI may misbehave):
      // counted, so a test can assert that a client never does it.
      if (version < 27) s.unsafeNullBuffers.fetch_add(1);
      return nullptr;
    }
    s.current = buffer;
    s.currentSize = size;
    s.currentUsed = 0;
  }
  uint8_t* at = s.current + s.currentUsed;
  std::memset(at, 0, bytes);
  s.currentUsed += bytes;
  return at;
}

template <typename Fill>
void emit(int kind, uint32_t version, Fill fill) {
  CuptiSim& s = sim();
  const size_t size = simCuptiRecordSize(kind, version);
  std::lock_guard<std::mutex> lock(s.bufferMutex);
  uint8_t* at = reserveLocked(size, version);
  if (at == nullptr) {
    s.dropped.fetch_add(1);
    s.recordsDropped.fetch_add(1);
    return;
  }
  fill(at);
  s.recordsProduced.fetch_add(1);
}

struct Rng {
  uint64_t x;
  uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
};

const char* const kDomainName = "gpu-telemetry-sim";

void produce() {
  CuptiSim& s = sim();
  gtsim::CuptiSpec spec;
  {
    std::lock_guard<std::mutex> lock(s.configMutex);
    spec = s.spec;
  }
  if (spec.kernels.empty()) spec.kernels.push_back(gtsim::CuptiKernelSpec());
  const uint32_t version = spec.version;
  const uint32_t pid = static_cast<uint32_t>(getpid());
  const uint32_t tid = static_cast<uint32_t>(syscall(SYS_gettid));
  Rng rng{spec.seed * 0x9e3779b97f4a7c15ull + 1};
  uint64_t lastNs = simNowNs();
  double kernelDebt = 0, memcpyDebt = 0, memsetDebt = 0;
  uint64_t floodLeft = spec.flood ? static_cast<uint64_t>(spec.floodRecords) : 0;
  size_t kernelIndex = 0;
  std::vector<const char*> kernelNames;
  for (const auto& k : spec.kernels) kernelNames.push_back(permanentName(k.name));
  const char* stepRangeName = permanentName(spec.stepRangeName);
  const uint64_t rangeEveryNs = static_cast<uint64_t>(spec.stepRangeEveryMs * 1e6);
  uint64_t nextRangeNs = lastNs + rangeEveryNs;
  bool rangeOpen = false;
  uint32_t rangeId = 0;
  uint64_t rangeEndNs = 0;

  auto kernel = [&](uint64_t endNs) {
    const size_t which = kernelIndex++ % spec.kernels.size();
    const gtsim::CuptiKernelSpec& k = spec.kernels[which];
    const uint64_t dur = static_cast<uint64_t>(k.durationUs * 1000.0);
    const uint64_t start = endNs - dur;
    const uint32_t corr = ++s.correlation;
    if (kindEnabled(SIM_CUPTI_KIND_RUNTIME)) {
      emit(SIM_CUPTI_KIND_RUNTIME, version, [&](uint8_t* at) {
        auto* a = reinterpret_cast<simCuptiApiRecord*>(at);
        a->kind = SIM_CUPTI_KIND_RUNTIME;
        a->cbid = 211;  // cudaLaunchKernel_v7000
        a->start = start - 6000;
        a->end = start - 2000;
        a->processId = pid;
        a->threadId = tid;
        a->correlationId = corr;
      });
    }
    if (kindEnabled(SIM_CUPTI_KIND_DRIVER)) {
      emit(SIM_CUPTI_KIND_DRIVER, version, [&](uint8_t* at) {
        auto* a = reinterpret_cast<simCuptiApiRecord*>(at);
        a->kind = SIM_CUPTI_KIND_DRIVER;
        a->cbid = 307;  // cuLaunchKernel
        a->start = start - 5000;
        a->end = start - 2500;
        a->processId = pid;
        a->threadId = tid;
        a->correlationId = corr;
      });
    }
    const int kind = kindEnabled(SIM_CUPTI_KIND_CONCURRENT_KERNEL) ? SIM_CUPTI_KIND_CONCURRENT_KERNEL : SIM_CUPTI_KIND_KERNEL;
    if (!kindEnabled(kind)) return;
    emit(kind, version, [&](uint8_t* at) {
      auto* r = reinterpret_cast<simCuptiKernelRecord*>(at);
      r->kind = kind;
      r->registersPerThread = static_cast<uint16_t>(k.registers);
      r->start = start;
      r->end = endNs;
      r->completed = endNs;
      r->deviceId = 0;
      r->contextId = 1;
      r->streamId = 7 + static_cast<uint32_t>(rng.next() % 2);
      for (int d = 0; d < 3; ++d) {
        r->grid[d] = k.grid[d];
        r->block[d] = k.block[d];
      }
      r->staticSharedMemory = static_cast<int32_t>(k.sharedBytes);
      r->dynamicSharedMemory = 0;
      r->correlationId = corr;
      r->gridId = corr;
      r->name = kernelNames[which];
      r->queued = start - 3000;
      r->submitted = start - 1000;
    });
  };

  for (;;) {
    {
      std::unique_lock<std::mutex> lock(s.threadMutex);
      if (s.producerStop) break;
      if (!spec.flood || floodLeft == 0) {
        s.threadCv.wait_for(lock, std::chrono::milliseconds(1), [&] { return s.producerStop; });
        if (s.producerStop) break;
      }
    }
    const uint64_t now = simNowNs();
    const double elapsedS = static_cast<double>(now - lastNs) / 1e9;
    lastNs = now;
    if (spec.flood && floodLeft > 0) {
      for (int i = 0; i < 512 && floodLeft > 0; ++i, --floodLeft) kernel(now);
      continue;
    }
    // NVTX step ranges (MARKER records), back to back, each 90% of the period.
    if (rangeEveryNs > 0 && kindEnabled(SIM_CUPTI_KIND_MARKER)) {
      // One MARKER record of the current range: its start (with the name) or its end (no name).
      auto marker = [&](uint32_t flags, uint64_t timestamp, const char* name) {
        emit(SIM_CUPTI_KIND_MARKER, version, [&](uint8_t* at) {
          auto* m = reinterpret_cast<simCuptiMarkerRecord*>(at);
          m->kind = SIM_CUPTI_KIND_MARKER;
          m->flags = flags;
          m->timestamp = timestamp;
          m->id = rangeId;
          m->objectKind = SIM_CUPTI_OBJECT_THREAD;
          m->objectId[0] = pid;
          m->objectId[1] = tid;
          m->name = name;
          m->domain = kDomainName;
        });
      };
      if (rangeOpen && now >= rangeEndNs) {
        marker(SIM_CUPTI_MARKER_END, rangeEndNs, nullptr);
        rangeOpen = false;
      }
      if (!rangeOpen && now >= nextRangeNs) {
        rangeId = ++s.markerId;
        const uint64_t startNs = nextRangeNs;
        rangeEndNs = startNs + rangeEveryNs * 9 / 10;
        nextRangeNs += rangeEveryNs;
        if (nextRangeNs < now) nextRangeNs = now + rangeEveryNs;  // fell behind: skip, never burst
        marker(SIM_CUPTI_MARKER_START, startNs, stepRangeName);
        rangeOpen = true;
      }
    }
    kernelDebt += elapsedS * spec.kernelsPerSecond;
    memcpyDebt += elapsedS * spec.memcpyPerSecond;
    memsetDebt += elapsedS * spec.memsetPerSecond;
    for (; kernelDebt >= 1; kernelDebt -= 1) kernel(now);
    for (; memcpyDebt >= 1; memcpyDebt -= 1) {
      if (!kindEnabled(SIM_CUPTI_KIND_MEMCPY)) continue;
      const uint32_t corr = ++s.correlation;
      emit(SIM_CUPTI_KIND_MEMCPY, version, [&](uint8_t* at) {
        auto* m = reinterpret_cast<simCuptiMemcpyRecord*>(at);
        m->kind = SIM_CUPTI_KIND_MEMCPY;
        m->copyKind = (corr % 2) ? 1 : 2;  // HtoD, DtoH
        m->srcKind = (corr % 2) ? 1 : 3;   // pageable host / device
        m->dstKind = (corr % 2) ? 3 : 1;
        m->bytes = 1 << 20;
        m->start = now - 40000;
        m->end = now;
        m->deviceId = 0;
        m->contextId = 1;
        m->streamId = 7;
        m->correlationId = corr;
        if (version >= 130000) m->copyCount = 1;
      });
    }
    for (; memsetDebt >= 1; memsetDebt -= 1) {
      if (!kindEnabled(SIM_CUPTI_KIND_MEMSET)) continue;
      const uint32_t corr = ++s.correlation;
      emit(SIM_CUPTI_KIND_MEMSET, version, [&](uint8_t* at) {
        auto* m = reinterpret_cast<simCuptiMemsetRecord*>(at);
        m->kind = SIM_CUPTI_KIND_MEMSET;
        m->value = 0;
        m->bytes = 4096;
        m->start = now - 3000;
        m->end = now;
        m->deviceId = 0;
        m->contextId = 1;
        m->streamId = 7;
        m->correlationId = corr;
      });
    }
  }
}

void startProducerLocked() {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.threadMutex);
  if (s.producer.joinable()) return;
  s.producerStop = false;
  s.producer = std::thread(produce);
}

void stopProducer() {
  CuptiSim& s = sim();
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(s.threadMutex);
    s.producerStop = true;
    t = std::move(s.producer);
  }
  s.threadCv.notify_all();
  if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
}

[[maybe_unused]] const char* resultString(simCuptiResult r) {
  switch (r) {
    case SIM_CUPTI_SUCCESS: return "CUPTI_SUCCESS";
    case SIM_CUPTI_ERROR_INVALID_PARAMETER: return "CUPTI_ERROR_INVALID_PARAMETER";
    case SIM_CUPTI_ERROR_INVALID_OPERATION: return "CUPTI_ERROR_INVALID_OPERATION";
    case SIM_CUPTI_ERROR_MAX_LIMIT_REACHED: return "CUPTI_ERROR_MAX_LIMIT_REACHED";
    case SIM_CUPTI_ERROR_NOT_INITIALIZED: return "CUPTI_ERROR_NOT_INITIALIZED";
    case SIM_CUPTI_ERROR_INVALID_KIND: return "CUPTI_ERROR_INVALID_KIND";
    case SIM_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED: return "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED";
    default: return "CUPTI_ERROR_UNKNOWN";
  }
}

}  // namespace

// ---- simulator control (not part of CUPTI) ---------------------------------------------------------

// Loads the "cupti" part of a scenario (the whole scenario JSON is validated). Independent of
// gtsim_configure so a capture can configure CUPTI while an NVML client is using the simulator.
// Refused while a subscriber is active.
SIM_EXPORT int gtsim_cupti_configure(const char* scenarioJson, char* error, unsigned int errorLength) {
  auto setError = [&](const std::string& m) {
    if (error != nullptr && errorLength > 0) {
      const size_t n = std::min<size_t>(m.size(), errorLength - 1);
      std::memcpy(error, m.data(), n);
      error[n] = '\0';
    }
  };
  gtsim::Scenario scenario;
  std::string message;
  if (!gtsim::parseScenario(scenarioJson != nullptr ? scenarioJson : "", scenario, message)) {
    setError(message);
    return 1;
  }
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  if (s.subscribed || s.enabledMask.load() != 0) {
    setError("the simulated CUPTI is in use (subscribed or kinds enabled); unsubscribe before loading another scenario");
    return 1;
  }
  s.spec = scenario.cupti;
  if (s.spec.kernels.empty()) s.spec.kernels.push_back(gtsim::CuptiKernelSpec());
  s.recordsProduced = 0;
  s.recordsDropped = 0;
  s.nullBuffers = 0;
  s.unsafeNullBuffers = 0;
  s.buffersCompleted = 0;
  s.dropped = 0;
  return 0;
}

// What a client has left enabled: the activity kinds and whether a subscriber is registered.
SIM_EXPORT int gtsim_cupti_state(int* kinds, unsigned int capacity, unsigned int* count, int* subscribed) {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  const uint64_t mask = s.enabledMask.load();
  unsigned int n = 0;
  for (int k = 0; k < SIM_CUPTI_KIND_LIMIT; ++k) {
    if ((mask >> k) & 1u) {
      if (kinds != nullptr && n < capacity) kinds[n] = k;
      ++n;
    }
  }
  if (count) *count = n;
  if (subscribed) *subscribed = s.subscribed ? 1 : 0;
  return 0;
}

// [recordsProduced, recordsDropped, nullBuffers, unsafeNullBuffers, buffersCompleted, buffersHeld]
SIM_EXPORT int gtsim_cupti_counters(double* out, unsigned int n) {
  CuptiSim& s = sim();
  size_t held = 0;
  {
    std::lock_guard<std::mutex> lock(s.bufferMutex);
    held = s.held.size() + (s.current ? 1 : 0);
  }
  const double v[6] = {static_cast<double>(s.recordsProduced.load()), static_cast<double>(s.recordsDropped.load()),
                       static_cast<double>(s.nullBuffers.load()), static_cast<double>(s.unsafeNullBuffers.load()),
                       static_cast<double>(s.buffersCompleted.load()), static_cast<double>(held)};
  for (unsigned int i = 0; i < n && i < 6; ++i) out[i] = v[i];
  return 0;
}

// ---- CUPTI -----------------------------------------------------------------------------------------

SIM_EXPORT simCuptiResult cuptiGetVersion(uint32_t* version) {
  if (version == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  *version = currentVersion();
  return SIM_CUPTI_SUCCESS;
}

// The legacy build (GTSIM_LEGACY_DRIVER) also plays a minimal CUPTI without the optional
// cuptiGetResultString and cuptiGetCallbackName, so clients' fallbacks run for real.
#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simCuptiResult cuptiGetResultString(simCuptiResult result, const char** str) {
  if (str == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  *str = resultString(result);
  return SIM_CUPTI_SUCCESS;
}
#endif

SIM_EXPORT simCuptiResult cuptiGetTimestamp(uint64_t* timestamp) {
  if (timestamp == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  *timestamp = simNowNs();
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiSubscribe(void** subscriber, simCuptiCallbackFn, void*) {
  if (subscriber == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  if (s.spec.multipleSubscribers || s.subscribed) return SIM_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  s.subscribed = true;
  *subscriber = &s;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiUnsubscribe(void* subscriber) {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  if (subscriber != &s || !s.subscribed) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  s.subscribed = false;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityRegisterCallbacks(simCuptiRequestFn request, simCuptiCompleteFn complete) {
  if (request == nullptr || complete == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.bufferMutex);
  s.request = request;
  s.complete = complete;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityEnable(int kind) {
  if (kind <= 0 || kind >= SIM_CUPTI_KIND_LIMIT) return SIM_CUPTI_ERROR_INVALID_KIND;
  CuptiSim& s = sim();
  {
    std::lock_guard<std::mutex> lock(s.configMutex);
    s.enabledMask.fetch_or(uint64_t{1} << kind);
  }
  startProducerLocked();
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityDisable(int kind) {
  if (kind <= 0 || kind >= SIM_CUPTI_KIND_LIMIT) return SIM_CUPTI_ERROR_INVALID_KIND;
  CuptiSim& s = sim();
  bool none = false;
  {
    std::lock_guard<std::mutex> lock(s.configMutex);
    none = (s.enabledMask.fetch_and(~(uint64_t{1} << kind)) & ~(uint64_t{1} << kind)) == 0;
  }
  if (none) stopProducer();
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityFlushAll(uint32_t flag) {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.bufferMutex);
  const bool allDisabled = s.enabledMask.load() == 0;
  if (s.spec.holdBuffers && !allDisabled) return SIM_CUPTI_SUCCESS;  // the pool-exhaustion mode
  if (keepingBuffers(s.spec)) {  // CUPTI keeps every buffer, even the last partial one
    if ((flag & SIM_CUPTI_FLUSH_FORCED) != 0 || allDisabled) completeCurrentLocked(true);
    return SIM_CUPTI_SUCCESS;
  }
  if ((flag & SIM_CUPTI_FLUSH_FORCED) != 0 || allDisabled) completeCurrentLocked(true);
  std::vector<std::pair<uint8_t*, size_t>> held;
  held.swap(s.held);
  for (auto& [buffer, used] : held) {
    s.buffersCompleted.fetch_add(1);
    if (s.complete) s.complete(nullptr, 0, buffer, used, used);
  }
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityGetNextRecord(uint8_t* buffer, size_t validBufferSizeBytes, void** record) {
  if (buffer == nullptr || record == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  const uint32_t version = currentVersion();
  size_t offset = 0;
  if (*record != nullptr) {
    auto* at = static_cast<uint8_t*>(*record);
    const int kind = *reinterpret_cast<const int32_t*>(at);
    const size_t size = simCuptiRecordSize(kind, version);
    if (size == 0 || at < buffer) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
    offset = static_cast<size_t>(at - buffer) + size;
  }
  if (offset + sizeof(int32_t) > validBufferSizeBytes) return SIM_CUPTI_ERROR_MAX_LIMIT_REACHED;
  const int kind = *reinterpret_cast<const int32_t*>(buffer + offset);
  const size_t size = simCuptiRecordSize(kind, version);
  if (size == 0 || offset + size > validBufferSizeBytes) return SIM_CUPTI_ERROR_MAX_LIMIT_REACHED;
  *record = buffer + offset;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityGetNumDroppedRecords(void* /*context*/, uint32_t /*streamId*/, size_t* dropped) {
  if (dropped == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  *dropped = static_cast<size_t>(sim().dropped.exchange(0));  // reset on read, as CUPTI does
  return SIM_CUPTI_SUCCESS;
}

#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simCuptiResult cuptiGetCallbackName(int domain, uint32_t cbid, const char** name) {
  if (name == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  if (domain == SIM_CUPTI_DOMAIN_RUNTIME && cbid == 211) *name = "cudaLaunchKernel_v7000";
  else if (domain == SIM_CUPTI_DOMAIN_RUNTIME && cbid == 41) *name = "cudaMemcpyAsync_v3020";
  else if (domain == SIM_CUPTI_DOMAIN_DRIVER && cbid == 307) *name = "cuLaunchKernel";
  else return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  return SIM_CUPTI_SUCCESS;
}
#endif
