// The simulator's CUPTI: the activity entry points a capture uses, as libcupti exports them.
// While activity kinds are enabled, a producer thread of the simulator's own plays a GPU running
// the scenario's kernels (and memcpys, memsets, API calls, NVTX step ranges), writes records in
// the layout of the CUPTI version it reports into buffers obtained from the registered
// buffer-requested callback, and hands them back through buffer-completed, as CUPTI does.
//
// Records in flight, as NVIDIA documents them (cupti_activity.h, cuptiActivityFlushAll and
// cuptiActivityGetNextRecord): a GPU record (kernel, memcpy, memset) takes its slot in the buffer
// when the work is launched and completes `recordCompletionLagMs` after the work ends; API and
// NVTX records are complete when written. A buffer with a record still in flight is not handed
// back by a default flush (flag 0) nor when it fills up; a forced flush hands every buffer back,
// and cuptiActivityGetNextRecord then answers CUPTI_ERROR_INVALID_KIND for each record that was
// still in flight (with *record pointing at it when `invalidKindAdvances`, else left where it
// was). The GPU work completes whether or not kinds are still enabled (the producer keeps
// completing in-flight records after every kind is disabled, and only then ends), and nothing is
// ever written into a buffer once it has been handed back: a record handed back incomplete stays
// incomplete.
//
// Scenario key "cupti" (see scenario.h); test hooks: gtsim_cupti_configure, gtsim_cupti_state,
// gtsim_cupti_counters.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

#include "cupti_sim.h"
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

// A client buffer CUPTI holds: the one being filled (current) or a closed one waiting to go back.
struct SimBuffer {
  size_t size = 0, used = 0;
  size_t inFlight = 0;  // records reserved in it and not yet complete
};

// A record in flight: its slot in a buffer and the bytes it will have once complete.
struct InFlight {
  uint64_t completeAtNs = 0;
  uint8_t* buffer = nullptr;
  size_t offset = 0, bytes = 0;
  bool kernel = false;
  alignas(8) std::array<uint8_t, 256> record{};
};
// Orders the in-flight heap: the record that completes first on top.
struct CompletesLater {
  bool operator()(const InFlight& a, const InFlight& b) const { return a.completeAtNs > b.completeAtNs; }
};

struct CuptiSim {
  // Configuration and subscription (guarded by configMutex).
  std::mutex configMutex;
  gtsim::CuptiSpec spec;
  bool subscribed = false;     // the client (one: ours) holds a subscription
  bool clientShared = false;   // ... made with cuptiSubscribe_v2 allowing other subscribers
  bool firstEnableDone = false;  // CUPTI's lazy initialisation happens once per loaded library
  std::atomic<uint64_t> enabledMask{0};  // bit per activity kind
  // The buffer callbacks (guarded by bufferMutex): global (cuptiActivityRegisterCallbacks) or
  // subscriber-scoped (cuptiActivityRegisterCallbacks_v2); the last registration wins.
  simCuptiRequestFn request = nullptr;
  simCuptiCompleteFn complete = nullptr;
  simCuptiRequestFnV2 request2 = nullptr;
  simCuptiCompleteFnV2 complete2 = nullptr;

  // The buffers CUPTI holds and the records in flight (guarded by bufferMutex; the client's
  // callbacks are called with it held, as CUPTI serialises them).
  std::mutex bufferMutex;
  std::map<uint8_t*, SimBuffer> lent;
  uint8_t* current = nullptr;
  std::deque<uint8_t*> closed;  // full (or flushed but kept) buffers, in the order they closed
  // A min-heap by completion time, in a vector: no allocation per record once it has grown (a
  // flood writes millions).
  std::vector<InFlight> inFlight;
  std::atomic<uint64_t> inFlightCount{0};
  std::atomic<uint64_t> dropped{0};

  // Offsets of the records each handed-back buffer holds incomplete (guarded by incompleteMutex);
  // forgotten when the client hands that buffer to CUPTI again.
  std::mutex incompleteMutex;
  std::map<const uint8_t*, std::set<size_t>> incomplete;

  // Producer thread (guarded by threadMutex). It ends by itself once every kind is disabled and
  // nothing is in flight; `restart` makes a running one take the current spec afresh.
  std::mutex threadMutex;
  std::condition_variable threadCv;
  std::thread producer;
  bool producerRunning = false;
  bool producerStop = false;
  bool producerRestart = false;

  // Counters for tests (reset by gtsim_cupti_configure).
  std::atomic<uint64_t> recordsProduced{0}, recordsDropped{0}, nullBuffers{0}, unsafeNullBuffers{0},
      buffersCompleted{0}, incompleteRecordsReturned{0}, kernelRecordsCompleted{0}, kernelsLaunched{0},
      enableStalledMs{0}, v2Subscriptions{0}, sharedSubscriptions{0}, globalCallsWhileShared{0};

  // Shared by the producer thread and the application's own threads (gtsim_cuda_*, NVTX).
  std::atomic<uint32_t> correlation{0};
  std::atomic<uint32_t> markerId{0};
  // The latest end (sim clock) of a kernel the application launched (gtsim_cuda_launch_kernel).
  std::atomic<uint64_t> appKernelsEndNs{0};
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

bool isKernelKind(int kind) { return kind == SIM_CUPTI_KIND_KERNEL || kind == SIM_CUPTI_KIND_CONCURRENT_KERNEL; }

// With bufferMutex held: hands `buffer` back to the client. Records still in flight in it stay
// incomplete for good (they are forgotten here, so nothing is ever written into it again).
void handBackLocked(uint8_t* buffer) {
  CuptiSim& s = sim();
  auto it = s.lent.find(buffer);
  if (it == s.lent.end()) return;
  const size_t size = it->second.size, used = it->second.used;
  if (it->second.inFlight > 0) {
    std::set<size_t> offsets;
    for (const InFlight& f : s.inFlight) {
      if (f.buffer == buffer) offsets.insert(f.offset);
    }
    s.inFlight.erase(std::remove_if(s.inFlight.begin(), s.inFlight.end(), [&](const InFlight& f) { return f.buffer == buffer; }),
                     s.inFlight.end());
    std::make_heap(s.inFlight.begin(), s.inFlight.end(), CompletesLater());
    s.inFlightCount.fetch_sub(offsets.size());
    s.incompleteRecordsReturned.fetch_add(offsets.size());
    std::lock_guard<std::mutex> lock(s.incompleteMutex);
    s.incomplete[buffer] = std::move(offsets);
  }
  s.lent.erase(it);
  if (s.current == buffer) s.current = nullptr;
  s.closed.erase(std::remove(s.closed.begin(), s.closed.end(), buffer), s.closed.end());
  s.buffersCompleted.fetch_add(1);
  if (s.complete2) s.complete2(buffer, size, used, nullptr);
  else if (s.complete) s.complete(nullptr, 0, buffer, size, used);
}

// With bufferMutex held: the closed buffers whose records are all complete go back, as CUPTI's
// own delivery of full buffers does (unless a hold mode keeps them).
void deliverCompleteLocked() {
  CuptiSim& s = sim();
  if (s.spec.holdBuffers || keepingBuffers(s.spec)) return;
  std::vector<uint8_t*> ready;
  for (uint8_t* b : s.closed) {
    if (s.lent[b].inFlight == 0) ready.push_back(b);
  }
  for (uint8_t* b : ready) handBackLocked(b);
}

// With bufferMutex held: the current buffer takes no more records.
void closeCurrentLocked() {
  CuptiSim& s = sim();
  if (s.current == nullptr) return;
  s.closed.push_back(s.current);
  s.current = nullptr;
}

// With bufferMutex held: every in-flight record due by `now` is written into its buffer.
void completeDueLocked(uint64_t now) {
  CuptiSim& s = sim();
  bool any = false;
  while (!s.inFlight.empty() && s.inFlight.front().completeAtNs <= now) {
    std::pop_heap(s.inFlight.begin(), s.inFlight.end(), CompletesLater());
    const InFlight& f = s.inFlight.back();
    auto it = s.lent.find(f.buffer);
    if (it == s.lent.end()) {  // cannot happen: handBackLocked forgets a buffer's records
      s.inFlight.pop_back();
      continue;
    }
    std::memcpy(f.buffer + f.offset, f.record.data(), f.bytes);
    const bool kernel = f.kernel;
    s.inFlight.pop_back();
    --it->second.inFlight;
    s.inFlightCount.fetch_sub(1);
    s.recordsProduced.fetch_add(1);
    if (kernel) s.kernelRecordsCompleted.fetch_add(1);
    any = true;
  }
  if (any) deliverCompleteLocked();
}

// With bufferMutex held: room for `bytes` more, asking the client for a buffer when needed.
uint8_t* reserveLocked(size_t bytes, uint32_t version) {
  CuptiSim& s = sim();
  if (s.current != nullptr) {
    SimBuffer& cur = s.lent[s.current];
    if (cur.used + bytes > cur.size) {
      closeCurrentLocked();
      deliverCompleteLocked();
    }
  }
  if (s.current == nullptr) {
    uint8_t* buffer = nullptr;
    size_t size = 0, maxRecords = 0;
    if (s.request2) s.request2(&buffer, &size, &maxRecords, nullptr);
    else if (s.request) s.request(&buffer, &size, &maxRecords);
    if (buffer == nullptr || size < bytes) {
      s.nullBuffers.fetch_add(1);
      // Before CUPTI API 27 a null buffer is not a supported answer (real CUPTI may misbehave):
      // counted, so a test can assert that a client never does it.
      if (version < 27) s.unsafeNullBuffers.fetch_add(1);
      return nullptr;
    }
    {
      std::lock_guard<std::mutex> lock(s.incompleteMutex);
      s.incomplete.erase(buffer);  // the client may reuse a buffer it had back
    }
    s.current = buffer;
    SimBuffer& b = s.lent[buffer];
    b.size = size;
    b.used = 0;
    b.inFlight = 0;
  }
  SimBuffer& cur = s.lent[s.current];
  uint8_t* at = s.current + cur.used;
  std::memset(at, 0, bytes);
  cur.used += bytes;
  return at;
}

// Writes a record of `kind`: complete now when `completeAtNs` <= `nowNs`, else its slot is
// reserved (holding only the kind, zeros elsewhere) and it completes at `completeAtNs`.
template <typename Fill>
void emit(int kind, uint32_t version, uint64_t nowNs, uint64_t completeAtNs, Fill fill) {
  CuptiSim& s = sim();
  const size_t size = simCuptiRecordSize(kind, version);
  std::lock_guard<std::mutex> lock(s.bufferMutex);
  uint8_t* at = reserveLocked(size, version);
  if (at == nullptr) {
    s.dropped.fetch_add(1);
    s.recordsDropped.fetch_add(1);
    return;
  }
  if (completeAtNs <= nowNs) {
    fill(at);
    s.recordsProduced.fetch_add(1);
    if (isKernelKind(kind)) s.kernelRecordsCompleted.fetch_add(1);
    return;
  }
  *reinterpret_cast<int32_t*>(at) = kind;
  InFlight& f = s.inFlight.emplace_back();
  f.completeAtNs = completeAtNs;
  f.buffer = s.current;
  f.offset = static_cast<size_t>(at - s.current);
  f.bytes = size;
  f.kernel = isKernelKind(kind);
  f.record.fill(0);
  fill(f.record.data());
  std::push_heap(s.inFlight.begin(), s.inFlight.end(), CompletesLater());
  ++s.lent[s.current].inFlight;
  s.inFlightCount.fetch_add(1);
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

// A kernel launched at `now` by thread `tid`: its runtime (and driver) API call ends at `now`, the
// kernel starts 2 µs later, runs its duration and its record completes lagNs after it ends.
// Returns the kernel's end (sim clock); *correlation gets its correlation id.
uint64_t launchKernel(const gtsim::CuptiKernelSpec& k, const char* name, uint32_t stream, uint32_t version, uint64_t now,
                      uint64_t lagNs, uint32_t pid, uint32_t tid, uint32_t* correlation = nullptr) {
  CuptiSim& s = sim();
  const uint64_t dur = static_cast<uint64_t>(k.durationUs * 1000.0);
  const uint64_t start = now + 2000;
  const uint64_t end = start + dur;
  const uint32_t corr = ++s.correlation;
  if (correlation != nullptr) *correlation = corr;
  if (kindEnabled(SIM_CUPTI_KIND_RUNTIME)) {
    emit(SIM_CUPTI_KIND_RUNTIME, version, now, now, [&](uint8_t* at) {
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
    emit(SIM_CUPTI_KIND_DRIVER, version, now, now, [&](uint8_t* at) {
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
  if (!kindEnabled(kind)) return end;
  s.kernelsLaunched.fetch_add(1);
  emit(kind, version, now, end + lagNs, [&](uint8_t* at) {
    auto* r = reinterpret_cast<simCuptiKernelRecord*>(at);
    r->kind = kind;
    r->registersPerThread = static_cast<uint16_t>(k.registers);
    r->start = start;
    r->end = end;
    r->completed = end;
    r->deviceId = 0;
    r->contextId = 1;
    r->streamId = stream;
    for (int d = 0; d < 3; ++d) {
      r->grid[d] = k.grid[d];
      r->block[d] = k.block[d];
    }
    r->staticSharedMemory = static_cast<int32_t>(k.sharedBytes);
    r->dynamicSharedMemory = 0;
    r->correlationId = corr;
    r->gridId = corr;
    r->name = name;
    r->queued = start - 3000;
    r->submitted = start - 1000;
  });
  return end;
}

const char* const kDomainName = "gpu-telemetry-sim";

// What one run of the simulated application does, from the spec at (re)start.
struct Workload {
  gtsim::CuptiSpec spec;
  uint32_t version = 0, pid = 0, tid = 0;
  Rng rng{1};
  uint64_t lastNs = 0, lagNs = 0;
  double kernelDebt = 0, memcpyDebt = 0, memsetDebt = 0;
  uint64_t floodLeft = 0;
  size_t kernelIndex = 0;
  std::vector<const char*> kernelNames;
  const char* stepRangeName = nullptr;
  uint64_t rangeEveryNs = 0, nextRangeNs = 0, rangeEndNs = 0;
  bool rangeOpen = false;
  uint32_t rangeId = 0;

  void reset() {
    CuptiSim& s = sim();
    {
      std::lock_guard<std::mutex> lock(s.configMutex);
      spec = s.spec;
    }
    if (spec.kernels.empty()) spec.kernels.push_back(gtsim::CuptiKernelSpec());
    version = spec.version;
    pid = static_cast<uint32_t>(getpid());
    tid = static_cast<uint32_t>(syscall(SYS_gettid));
    rng = Rng{spec.seed * 0x9e3779b97f4a7c15ull + 1};
    lastNs = simNowNs();
    lagNs = static_cast<uint64_t>(spec.recordCompletionLagMs * 1e6);
    kernelDebt = memcpyDebt = memsetDebt = 0;
    floodLeft = spec.flood ? static_cast<uint64_t>(spec.floodRecords) : 0;
    kernelIndex = 0;
    kernelNames.clear();
    for (const auto& k : spec.kernels) kernelNames.push_back(permanentName(k.name));
    stepRangeName = permanentName(spec.stepRangeName);
    rangeEveryNs = static_cast<uint64_t>(spec.stepRangeEveryMs * 1e6);
    nextRangeNs = lastNs + rangeEveryNs;
    rangeOpen = false;
    rangeId = 0;
    rangeEndNs = 0;
  }

  // A kernel of the scenario launched at `now` (see launchKernel).
  void kernel(uint64_t now) {
    const size_t which = kernelIndex++ % spec.kernels.size();
    const uint32_t stream = 7 + static_cast<uint32_t>(rng.next() % 2);
    launchKernel(spec.kernels[which], kernelNames[which], stream, version, now, lagNs, pid, tid);
  }

  // One MARKER record of the current NVTX range: its start (with the name) or its end (no name).
  void marker(uint32_t flags, uint64_t now, uint64_t timestamp, const char* name) {
    emit(SIM_CUPTI_KIND_MARKER, version, now, now, [&](uint8_t* at) {
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
  }

  // Everything due by now. Returns whether a flood is still running (no pause wanted).
  bool tick() {
    CuptiSim& s = sim();
    const uint64_t now = simNowNs();
    const double elapsedS = static_cast<double>(now - lastNs) / 1e9;
    lastNs = now;
    if (spec.flood && floodLeft > 0) {
      for (int i = 0; i < 512 && floodLeft > 0; ++i, --floodLeft) kernel(now);
      return floodLeft > 0;
    }
    // NVTX step ranges (MARKER records), back to back, each 90% of the period.
    if (rangeEveryNs > 0 && kindEnabled(SIM_CUPTI_KIND_MARKER)) {
      if (rangeOpen && now >= rangeEndNs) {
        marker(SIM_CUPTI_MARKER_END, now, rangeEndNs, nullptr);
        rangeOpen = false;
      }
      if (!rangeOpen && now >= nextRangeNs) {
        rangeId = ++s.markerId;
        const uint64_t startNs = nextRangeNs;
        rangeEndNs = startNs + rangeEveryNs * 9 / 10;
        nextRangeNs += rangeEveryNs;
        if (nextRangeNs < now) nextRangeNs = now + rangeEveryNs;  // fell behind: skip, never burst
        marker(SIM_CUPTI_MARKER_START, now, startNs, stepRangeName);
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
      emit(SIM_CUPTI_KIND_MEMCPY, version, now, now + lagNs, [&](uint8_t* at) {
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
      emit(SIM_CUPTI_KIND_MEMSET, version, now, now + lagNs, [&](uint8_t* at) {
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
    return false;
  }
};

void produce() {
  CuptiSim& s = sim();
  Workload w;
  w.reset();
  bool busy = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(s.threadMutex);
      if (!busy) s.threadCv.wait_for(lock, std::chrono::milliseconds(1), [&] { return s.producerStop || s.producerRestart; });
      if (s.producerStop) {
        s.producerRunning = false;
        break;
      }
      if (s.producerRestart) {
        s.producerRestart = false;
        w.reset();
      }
      // Every kind disabled and nothing in flight: the GPU is idle, the producer ends (decided
      // with threadMutex held, so an enable that comes now starts a new one).
      if (s.enabledMask.load() == 0 && s.inFlightCount.load() == 0) {
        s.producerRunning = false;
        break;
      }
    }
    busy = s.enabledMask.load() != 0 && w.tick();
    std::lock_guard<std::mutex> lock(s.bufferMutex);
    completeDueLocked(simNowNs());
  }
}

// Starts the producer, or, for the first kind a session enables (`newSession`), has the running
// one (still completing the last session's records) take the current spec afresh. A later kind of
// the same session leaves the workload running: a real application does not start its work over
// because a profiler enabled one more activity kind (restarting it here re-ran a flood's first
// batches whenever the producer ticked between two enables: more records than the scenario says).
void startProducer(bool newSession) {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.threadMutex);
  if (s.producerRunning) {
    if (newSession) {
      s.producerRestart = true;
      s.threadCv.notify_all();
    }
    return;
  }
  if (s.producer.joinable()) s.producer.join();  // it has ended (producerRunning is false)
  s.producerStop = false;
  s.producerRestart = false;
  s.producerRunning = true;
  s.producer = std::thread(produce);
}

[[maybe_unused]] const char* resultString(simCuptiResult r) {
  switch (r) {
    case SIM_CUPTI_SUCCESS: return "CUPTI_SUCCESS";
    case SIM_CUPTI_ERROR_INVALID_PARAMETER: return "CUPTI_ERROR_INVALID_PARAMETER";
    case SIM_CUPTI_ERROR_INVALID_OPERATION: return "CUPTI_ERROR_INVALID_OPERATION";
    case SIM_CUPTI_ERROR_MAX_LIMIT_REACHED: return "CUPTI_ERROR_MAX_LIMIT_REACHED";
    case SIM_CUPTI_ERROR_NOT_INITIALIZED: return "CUPTI_ERROR_NOT_INITIALIZED";
    case SIM_CUPTI_ERROR_INVALID_KIND: return "CUPTI_ERROR_INVALID_KIND";
    case SIM_CUPTI_ERROR_NOT_SUPPORTED: return "CUPTI_ERROR_NOT_SUPPORTED";
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
  s.incompleteRecordsReturned = 0;
  s.kernelRecordsCompleted = 0;
  s.kernelsLaunched = 0;
  s.enableStalledMs = 0;
  s.v2Subscriptions = 0;
  s.sharedSubscriptions = 0;
  s.globalCallsWhileShared = 0;
  s.dropped = 0;
  std::lock_guard<std::mutex> incompleteLock(s.incompleteMutex);
  s.incomplete.clear();
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

// Since the last gtsim_cupti_configure: [recordsProduced (complete records written),
// recordsDropped (no buffer to write into), nullBuffers, unsafeNullBuffers (null buffers handed to
// a CUPTI older than API 27), buffersCompleted (handed back), buffersHeld (buffers CUPTI holds
// now), incompleteRecordsReturned (records handed back still in flight: INVALID_KIND),
// recordsInFlight (now), kernelRecordsCompleted, kernelsLaunched (with a kernel kind enabled),
// enableStalledMs (how long a cuptiActivityEnable stalled: the library's first, firstEnableDelayMs),
// v2Subscriptions (through cuptiSubscribe_v2), sharedSubscriptions (allowing other subscribers),
// globalCallsWhileShared (global activity calls — enable, disable, register, next record,
// timestamp — made while the client shares CUPTI with another subscriber: a contract violation,
// the subscriber-scoped _v2 calls are the ones for that mode)].
// Returns how many counters there are.
SIM_EXPORT int gtsim_cupti_counters(double* out, unsigned int n) {
  CuptiSim& s = sim();
  size_t held = 0;
  {
    std::lock_guard<std::mutex> lock(s.bufferMutex);
    held = s.lent.size();
  }
  const double v[] = {static_cast<double>(s.recordsProduced.load()), static_cast<double>(s.recordsDropped.load()),
                      static_cast<double>(s.nullBuffers.load()), static_cast<double>(s.unsafeNullBuffers.load()),
                      static_cast<double>(s.buffersCompleted.load()), static_cast<double>(held),
                      static_cast<double>(s.incompleteRecordsReturned.load()), static_cast<double>(s.inFlightCount.load()),
                      static_cast<double>(s.kernelRecordsCompleted.load()), static_cast<double>(s.kernelsLaunched.load()),
                      static_cast<double>(s.enableStalledMs.load()), static_cast<double>(s.v2Subscriptions.load()),
                      static_cast<double>(s.sharedSubscriptions.load()), static_cast<double>(s.globalCallsWhileShared.load())};
  constexpr unsigned int kCount = sizeof(v) / sizeof(v[0]);
  for (unsigned int i = 0; out != nullptr && i < n && i < kCount; ++i) out[i] = v[i];
  return static_cast<int>(kCount);
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

namespace {

// With configMutex held: the client shares CUPTI with another subscriber right now.
bool sharedWithOtherLocked() {
  CuptiSim& s = sim();
  return s.subscribed && s.clientShared && s.spec.otherSubscriber;
}

// A call of the global activity API: counted when the client shares CUPTI (multi-subscriber mode
// wants the subscriber-scoped calls; whose subscriber a global call configures is not defined).
void noteGlobalCall() {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  if (sharedWithOtherLocked()) s.globalCallsWhileShared.fetch_add(1);
}

[[maybe_unused]] bool isClient(void* subscriber) {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  return subscriber == &s && s.subscribed;
}

[[maybe_unused]] uint32_t versionNow() { return currentVersion(); }

simCuptiResult enableKind(int kind) {
  if (kind <= 0 || kind >= SIM_CUPTI_KIND_LIMIT) return SIM_CUPTI_ERROR_INVALID_KIND;
  CuptiSim& s = sim();
  double stallMs = 0;
  {
    std::lock_guard<std::mutex> lock(s.configMutex);
    if (!s.firstEnableDone) {
      s.firstEnableDone = true;
      stallMs = s.spec.firstEnableDelayMs;
    }
  }
  // CUPTI's lazy initialisation: the first enable of the library's life blocks its caller.
  if (stallMs > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(stallMs * 1000)));
    s.enableStalledMs.fetch_add(static_cast<uint64_t>(stallMs));
  }
  uint64_t before = 0;
  {
    std::lock_guard<std::mutex> lock(s.configMutex);
    before = s.enabledMask.fetch_or(uint64_t{1} << kind);
  }
  startProducer(before == 0);
  return SIM_CUPTI_SUCCESS;
}

simCuptiResult disableKind(int kind) {
  if (kind <= 0 || kind >= SIM_CUPTI_KIND_LIMIT) return SIM_CUPTI_ERROR_INVALID_KIND;
  CuptiSim& s = sim();
  // No new work is recorded for this kind; what is in flight still completes (the producer ends
  // by itself once every kind is disabled and nothing is in flight).
  std::lock_guard<std::mutex> lock(s.configMutex);
  s.enabledMask.fetch_and(~(uint64_t{1} << kind));
  return SIM_CUPTI_SUCCESS;
}

// INVALID_KIND for a record that was handed back still in flight; *record then points at it
// (invalidKindAdvances, so a client can step past it) or stays where it was.
simCuptiResult nextRecord(uint8_t* buffer, size_t validBufferSizeBytes, void** record) {
  if (buffer == nullptr || record == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  CuptiSim& s = sim();
  uint32_t version = 0;
  bool advances = true;
  {
    std::lock_guard<std::mutex> lock(s.configMutex);
    version = s.spec.version;
    advances = s.spec.invalidKindAdvances;
  }
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
  {
    std::lock_guard<std::mutex> lock(s.incompleteMutex);
    auto it = s.incomplete.find(buffer);
    if (it != s.incomplete.end() && it->second.count(offset) != 0) {
      if (advances) *record = buffer + offset;
      return SIM_CUPTI_ERROR_INVALID_KIND;
    }
  }
  *record = buffer + offset;
  return SIM_CUPTI_SUCCESS;
}

}  // namespace

SIM_EXPORT simCuptiResult cuptiGetTimestamp(uint64_t* timestamp) {
  if (timestamp == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  noteGlobalCall();
  *timestamp = simNowNs();
  return SIM_CUPTI_SUCCESS;
}

// One subscriber per process, as before CUDA 13.3 (and, from 13.3, whenever a subscriber did not
// allow others: cuptiSubscribe cannot say it does).
SIM_EXPORT simCuptiResult cuptiSubscribe(void** subscriber, simCuptiCallbackFn, void*) {
  if (subscriber == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  if (s.spec.multipleSubscribers || s.spec.otherSubscriber || s.subscribed) return SIM_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  s.subscribed = true;
  s.clientShared = false;
  *subscriber = &s;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiUnsubscribe(void* subscriber) {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  if (subscriber != &s || !s.subscribed) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  s.subscribed = false;
  s.clientShared = false;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityRegisterCallbacks(simCuptiRequestFn request, simCuptiCompleteFn complete) {
  if (request == nullptr || complete == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  noteGlobalCall();
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.bufferMutex);
  s.request = request;
  s.complete = complete;
  s.request2 = nullptr;
  s.complete2 = nullptr;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityEnable(int kind) {
  noteGlobalCall();
  return enableKind(kind);
}

SIM_EXPORT simCuptiResult cuptiActivityDisable(int kind) {
  noteGlobalCall();
  return disableKind(kind);
}

SIM_EXPORT simCuptiResult cuptiActivityGetNextRecord(uint8_t* buffer, size_t validBufferSizeBytes, void** record) {
  noteGlobalCall();
  return nextRecord(buffer, validBufferSizeBytes, record);
}

// The subscriber-scoped API of CUPTI 13.x (absent from the legacy build, as from CUPTI 12 and
// older): cuptiSubscribe_v2 from 13.0, the _v2 activity calls a shared subscriber uses from 13.3.
#ifndef GTSIM_LEGACY_DRIVER
SIM_EXPORT simCuptiResult cuptiSubscribe_v2(void** subscriber, simCuptiCallbackFn, void*, simCuptiSubscriberParams* params) {
  if (subscriber == nullptr) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.configMutex);
  const gtsim::CuptiSpec& spec = s.spec;
  if (spec.version < 130000) return SIM_CUPTI_ERROR_NOT_SUPPORTED;  // no such entry point before 13.0
  if (params != nullptr && params->structSize < SIM_CUPTI_SUBSCRIBER_PARAMS_SIZE_13_0) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  // A CUPTI older than 13.3 does not know allowMultipleSubscribers: it reads only what it knows.
  const bool allow = spec.version >= SIM_CUPTI_VERSION_MULTI_SUBSCRIBER && params != nullptr &&
                     params->structSize >= SIM_CUPTI_SUBSCRIBER_PARAMS_SIZE_13_2 && params->allowMultipleSubscribers != 0;
  auto refuse = [&](const std::string& holder) {
    if (params != nullptr && params->oldSubscriberName != nullptr && params->oldSubscriberSize > 0) {
      const size_t n = std::min(holder.size(), params->oldSubscriberSize - 1);
      std::memcpy(params->oldSubscriberName, holder.data(), n);
      params->oldSubscriberName[n] = '\0';
    }
    return SIM_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  };
  const std::string other = spec.otherSubscriber ? spec.otherSubscriberName : spec.multipleSubscribers ? "another CUPTI client" : "";
  if (allow && !spec.sharingSupported) return refuse(other);  // the request cannot be fulfilled (driver)
  if (s.subscribed) return refuse("CUPTI for gpu-telemetry");
  if (spec.multipleSubscribers) return refuse(other);
  if (spec.otherSubscriber && !(allow && spec.otherSubscriberAllowsSharing)) return refuse(other);
  if (spec.otherSubscriber) refuse(other);  // shared: oldSubscriberName is the first subscriber's name
  s.subscribed = true;
  s.clientShared = allow;
  s.v2Subscriptions.fetch_add(1);
  if (allow) s.sharedSubscriptions.fetch_add(1);
  *subscriber = &s;
  return SIM_CUPTI_SUCCESS;
}

SIM_EXPORT simCuptiResult cuptiActivityRegisterCallbacks_v2(void* subscriber, simCuptiRequestFnV2 request, simCuptiCompleteFnV2 complete) {
  if (request == nullptr || complete == nullptr || !isClient(subscriber)) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  if (versionNow() < 130200) return SIM_CUPTI_ERROR_NOT_SUPPORTED;
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.bufferMutex);
  s.request2 = request;
  s.complete2 = complete;
  s.request = nullptr;
  s.complete = nullptr;
  return SIM_CUPTI_SUCCESS;
}

// The trailing config (CUpti_ActivityConfig: user-defined records) is not played: NULL or not, the
// predefined record layouts are written.
SIM_EXPORT simCuptiResult cuptiActivityEnable_v2(void* subscriber, int kind, void* /*config*/) {
  if (!isClient(subscriber)) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  if (versionNow() < 130200) return SIM_CUPTI_ERROR_NOT_SUPPORTED;
  return enableKind(kind);
}

SIM_EXPORT simCuptiResult cuptiActivityDisable_v2(void* subscriber, int kind, void* /*config*/) {
  if (!isClient(subscriber)) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  if (versionNow() < 130200) return SIM_CUPTI_ERROR_NOT_SUPPORTED;
  return disableKind(kind);
}

SIM_EXPORT simCuptiResult cuptiActivityGetNextRecord_v2(void* subscriber, uint8_t* buffer, size_t validBufferSizeBytes, void** record) {
  // The subscriber may have unsubscribed already (buffers come back after the end): any handle
  // this library gave out is accepted.
  if (subscriber != &sim()) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  if (versionNow() < SIM_CUPTI_VERSION_MULTI_SUBSCRIBER) return SIM_CUPTI_ERROR_NOT_SUPPORTED;
  return nextRecord(buffer, validBufferSizeBytes, record);
}

SIM_EXPORT simCuptiResult cuptiGetTimestamp_v2(void* subscriber, uint64_t* timestamp) {
  if (timestamp == nullptr || subscriber != &sim()) return SIM_CUPTI_ERROR_INVALID_PARAMETER;
  if (versionNow() < SIM_CUPTI_VERSION_MULTI_SUBSCRIBER) return SIM_CUPTI_ERROR_NOT_SUPPORTED;
  *timestamp = simNowNs();
  return SIM_CUPTI_SUCCESS;
}
#endif

SIM_EXPORT simCuptiResult cuptiActivityFlushAll(uint32_t flag) {
  CuptiSim& s = sim();
  std::lock_guard<std::mutex> lock(s.bufferMutex);
  const bool forced = (flag & SIM_CUPTI_FLUSH_FORCED) != 0;
  const bool allDisabled = s.enabledMask.load() == 0;
  completeDueLocked(simNowNs());  // whatever the GPU has finished by now, however busy the producer
  if (s.spec.holdBuffers && !allDisabled) return SIM_CUPTI_SUCCESS;  // the pool-exhaustion mode
  if (keepingBuffers(s.spec)) {  // CUPTI keeps every buffer, even the last partial one
    if (forced || allDisabled) closeCurrentLocked();
    return SIM_CUPTI_SUCCESS;
  }
  // Default flush: the buffers whose records are all complete (full or not); forced: every buffer.
  if (s.current != nullptr && (forced || s.lent[s.current].inFlight == 0)) closeCurrentLocked();
  std::vector<uint8_t*> back;
  for (uint8_t* b : s.closed) {
    if (forced || s.lent[b].inFlight == 0) back.push_back(b);
  }
  for (uint8_t* b : back) handBackLocked(b);
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

// ---- the simulated application's CUDA work (not part of CUPTI) ---------------------------------------
// A program that plays a CUDA application (the injection tests' test/native/fake_cuda_app.c) runs
// its own kernels through these, on its own threads, as the CUDA runtime would: while CUPTI's
// kinds are enabled each launch writes its runtime (and driver) API record and its kernel record,
// exactly as the scenario's producer does for its kernels. A scenario with kernelsPerSecond 0 and
// no stepRange then leaves only the application's work in the trace.

namespace gtsim {

bool cuptiMarkersEnabled() { return kindEnabled(SIM_CUPTI_KIND_MARKER); }

uint32_t cuptiNextMarkerId() { return ++sim().markerId; }

// One MARKER record written now by the calling thread (CUPTI writes NVTX records on the thread
// that made the NVTX call). `name` and `domain` must live as long as the process (permanentName).
void cuptiMarker(uint32_t flags, uint32_t id, const char* name, const char* domain) {
  if (!kindEnabled(SIM_CUPTI_KIND_MARKER)) return;
  const uint32_t version = currentVersion();
  const uint64_t now = simNowNs();
  const uint32_t pid = static_cast<uint32_t>(getpid());
  const uint32_t tid = static_cast<uint32_t>(syscall(SYS_gettid));
  emit(SIM_CUPTI_KIND_MARKER, version, now, now, [&](uint8_t* at) {
    auto* m = reinterpret_cast<simCuptiMarkerRecord*>(at);
    m->kind = SIM_CUPTI_KIND_MARKER;
    m->flags = flags;
    m->timestamp = now;
    m->id = id;
    m->objectKind = SIM_CUPTI_OBJECT_THREAD;
    m->objectId[0] = pid;
    m->objectId[1] = tid;
    m->name = name;
    m->domain = domain;
  });
}

const char* cuptiPermanentName(const char* name) { return name == nullptr ? nullptr : permanentName(name); }

}  // namespace gtsim

// Launches a kernel named `name` (a mangled or plain name, kept for the life of the process) that
// runs `durationUs` on `streamId`. Returns its correlation id (0: no kernel kind was enabled, so
// CUPTI recorded nothing; the launch still "ran").
SIM_EXPORT unsigned int gtsim_cuda_launch_kernel(const char* name, double durationUs, unsigned int streamId) {
  CuptiSim& s = sim();
  gtsim::CuptiKernelSpec k;
  double lagMs = 0;
  uint32_t version = 0;
  {
    std::lock_guard<std::mutex> lock(s.configMutex);
    lagMs = s.spec.recordCompletionLagMs;
    version = s.spec.version;
  }
  if (!(durationUs >= 0 && durationUs <= 60e6)) durationUs = 0;
  k.durationUs = durationUs;
  const bool recorded = kindEnabled(SIM_CUPTI_KIND_CONCURRENT_KERNEL) || kindEnabled(SIM_CUPTI_KIND_KERNEL);
  uint32_t corr = 0;
  const uint64_t end = launchKernel(k, permanentName(name != nullptr ? name : "(unnamed kernel)"), streamId, version, simNowNs(),
                                    static_cast<uint64_t>(lagMs * 1e6), static_cast<uint32_t>(getpid()),
                                    static_cast<uint32_t>(syscall(SYS_gettid)), &corr);
  uint64_t last = s.appKernelsEndNs.load();
  while (end > last && !s.appKernelsEndNs.compare_exchange_weak(last, end)) {
  }
  return recorded ? corr : 0;
}

// Returns once every kernel the application launched has ended on the simulated GPU (what
// cudaDeviceSynchronize waits for). The records themselves complete recordCompletionLagMs later.
SIM_EXPORT void gtsim_cuda_synchronize() {
  const uint64_t until = sim().appKernelsEndNs.load();
  for (uint64_t now = simNowNs(); now < until; now = simNowNs()) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(until - now, 1'000'000)));
  }
}
