// The kernel-trace capture engine: CUPTI activity records for kernels, memcpy/memset, runtime and
// driver API calls and NVTX markers, collected into bounded columnar storage. Plain C++ (no
// napi.h): native/addon.cc wraps it.
//
// Life cycle: constructed dormant (nothing is called on CUPTI); start() returns at once (it only
// reserves the process's one capture slot and starts the capture thread: CUPTI's first enable can
// stall its caller for seconds, so no vendor call is made on the caller's thread); the capture
// thread loads the library, checks its version, subscribes, registers the buffer callbacks and
// enables the kinds (at once, or when the startAfterSteps-th step boundary has passed), then
// reports Started or Failed through the event function; it parses the buffers CUPTI hands
// back and asks CUPTI for the completed ones every flushIntervalMs (a default flush: NVIDIA's
// cuptiActivityFlushAll(0) returns only buffers whose records are all complete); a stop (steps
// reached, a cap, or stop(reason)) disables every kind it enabled, drains (default flushes until
// CUPTI has handed back every buffer it was lent, at most drainTimeoutMs), then forces ONE flush
// (every buffer comes back, records still in flight included: each counted in droppedIncomplete),
// unsubscribes and then reports Stopped(reason) from the capture thread. Nothing ever joins the
// capture thread (it may be stuck in CUPTI): close() only asks it to stop; waitFinished() waits,
// bounded; the thread keeps its engine alive until it ends.
//
// Threads and locks: CUPTI's buffer-completed callback only queues the buffer (queueMutex_) for the
// capture thread, which parses it in bounded chunks under mutex_ (the lock step()/progress() take),
// so neither callback ever waits on a parse; the buffer-requested callback takes only poolMutex_.
// Order, where nested: mutex_ -> poolMutex_, mutex_ -> queueMutex_. No lock is held while calling
// a CUPTI function that can call back (enable/disable, flush, subscribe).
//
// Memory: CUPTI buffers come from a byte-budgeted pool of fixed-size buffers (kineto style); the
// budget `maxBytes` covers the buffers, the normalized columns and the strings together, and the
// buffers may take at most half of it. When the
// pool is exhausted CUPTI gets no buffer (API version >= 27, where that is safe: CUPTI counts the
// drops) or, on older CUPTI, a discard buffer whose records are counted as our drops; either way
// the capture stops with reason max_bytes and `truncated`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../vendor/cupti_api.h"

namespace gt::capture {

struct Kinds {
  bool kernels = true, memcpy = true, memset = true, runtimeApi = true, driverApi = false, nvtx = true;
};

struct Options {
  std::vector<std::string> cuptiCandidates;
  bool hasScenario = false;
  std::string simulatorScenario;
  uint64_t maxBytes = 64ull << 20;
  uint64_t bufferBytes = 4ull << 20;
  uint64_t maxRecords = 1'000'000;
  uint64_t steps = 1;
  uint64_t startAfterSteps = 0;
  bool hasStepRange = false;
  std::string stepRange;
  // With hasStepRange: only ranges of this NVTX domain count as steps (default: any domain; an
  // empty name is the default domain, whose ranges CUPTI reports without a domain name).
  bool hasStepDomain = false;
  std::string stepDomain;
  Kinds kinds;
  int64_t flushIntervalMs = 100;
  int64_t drainTimeoutMs = 1000;
  // Pre-warm: enable the kinds once and stop at once (CUPTI's first-enable cost, paid ahead).
  bool prewarm = false;
};

struct StartResult {
  bool ok = false;
  std::string code, message;
  bool hasVendorCode = false;
  int vendorCode = 0;
  std::string vendorMessage, libraryPath;
  uint32_t cuptiVersion = 0;
  double startMs = 0;  // how long the set-up took on the capture thread (load, subscribe, enable)
  bool sharedSubscriber = false;  // subscribed allowing other subscribers (CUPTI 13.3+)
};

enum class State { Idle, Starting, Waiting, Capturing, Stopping, Finished };
const char* stateName(State s);

struct Progress {
  State state = State::Idle;
  uint64_t steps = 0, records = 0, bytes = 0, droppedByCupti = 0, droppedByUs = 0, droppedIncomplete = 0;
};

// Fixed-stride rows of doubles in fixed-size chunks: growth never over-allocates past one chunk,
// and the rows move out chunk by chunk (drainInto frees as it copies).
class Columns {
 public:
  static constexpr size_t kChunkBytes = 64 << 10;
  explicit Columns(size_t stride) : stride_(stride), rowsPerChunk_(kChunkBytes / sizeof(double) / stride) {}
  size_t stride() const { return stride_; }
  size_t rows() const { return rows_; }
  size_t bytes() const { return chunks_.size() * rowsPerChunk_ * stride_ * sizeof(double); }
  // Bytes appending one more row would add (0 when the current chunk has room).
  size_t growthForOneRow() const { return rows_ % rowsPerChunk_ == 0 ? rowsPerChunk_ * stride_ * sizeof(double) : 0; }
  double* append();
  void drainInto(double* out);  // copies every row, frees the chunks
  // Hands every chunk's rows to fn(rows, rowCount) in order and frees each chunk after it.
  template <typename Fn>
  void drainChunks(Fn fn) {
    size_t left = rows_;
    for (auto& chunk : chunks_) {
      const size_t n = left < rowsPerChunk_ ? left : rowsPerChunk_;
      if (n > 0) fn(static_cast<const double*>(chunk.get()), n);
      left -= n;
      chunk.reset();
    }
    chunks_.clear();
    rows_ = 0;
  }
  void clear();

 private:
  size_t stride_, rowsPerChunk_;
  size_t rows_ = 0;
  std::vector<std::unique_ptr<double[]>> chunks_;
};

struct Result {
  std::string baseNs;
  uint32_t cuptiVersion = 0;
  std::string layout, libraryPath;
  bool simulated = false;
  std::string reason;
  bool truncated = false;
  std::unique_ptr<Columns> kernels, memcpys, memsets, apiCalls, ranges, steps;
  std::vector<std::string> strings;
  // drain(): the index of strings[0] in the capture's whole string table (result(): always 0).
  uint64_t stringBase = 0;
  uint64_t droppedByCupti = 0, droppedByUs = 0, droppedIncomplete = 0, peakBytes = 0, buffersCompleted = 0;
  bool sharedSubscriber = false;
};

// What the loaded CUPTI says is enabled (the simulator's gtsim_cupti_state), else what this
// process's captures enabled and have not disabled.
struct CuptiState {
  std::vector<int> enabledKinds;
  bool subscribed = false;
  std::string source;  // "library" | "tracked"
  std::string libraryPath;
  // The simulator's counters (gtsim_cupti_counters), named by kSimulatorCounterNames.
  bool hasSimulatorCounters = false;
  double simulatorCounters[16] = {};
};
// gtsim_cupti_counters, in its order (see native/sim/cupti_exports.cc).
inline constexpr const char* kSimulatorCounterNames[] = {
    "recordsProduced", "recordsDropped", "nullBuffers", "unsafeNullBuffers", "buffersCompleted",
    "buffersHeld", "incompleteRecordsReturned", "recordsInFlight", "kernelRecordsCompleted", "kernelsLaunched",
    "enableStalledMs", "v2Subscriptions", "sharedSubscriptions", "globalCallsWhileShared"};
inline constexpr size_t kSimulatorCounterCount = sizeof(kSimulatorCounterNames) / sizeof(kSimulatorCounterNames[0]);
static_assert(kSimulatorCounterCount <= 16, "CuptiState::simulatorCounters");
CuptiState cuptiState();

// Buffers this process has lent to CUPTI and not had back, across every capture (a finished
// capture's buffers stay lent until CUPTI returns them: it may still write into them).
struct LentBuffers {
  uint64_t count = 0;
  uint64_t bytes = 0;
};
LentBuffers buffersWithCupti();

// Always close() an engine (the addon does, from its finalizer and the environment cleanup hook):
// a started engine is also referenced by the CUPTI callback router until it stops.
class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Started: CUPTI is set up (startResult() is ok). Failed: it could not be (startResult() says
  // why; nothing follows). Stopped(reason): the capture ended, result() is ready (the last event;
  // a capture stopped before CUPTI was enabled sends it without Started).
  enum class Event { Started, Failed, Stopped };
  using EventFn = std::function<void(Event event, const std::string& reason)>;
  static std::shared_ptr<Engine> create(Options options, EventFn onEvent);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Returns at once: ok (the capture thread is starting), or a refusal known without touching
  // CUPTI (CLOSED, CAPTURE_BUSY: started before, or another capture is live in the process).
  StartResult start();
  // The start's outcome once the capture thread knows it; false while starting (or never started).
  bool startResult(StartResult* out);
  // Manual step boundary; returns its CUPTI timestamp relative to baseNs (ns).
  double step();
  double timestamp();
  Progress progress();
  void stop(const std::string& reason);
  // Valid once stopped; moves the data out (a second call returns empty columns).
  Result result();
  // Live or stopped: moves out the rows parsed since the last drain and the strings interned
  // since (Result::stringBase says where they go in the whole table; indices in the rows are
  // whole-table indices), with the meta fields as result() fills them. A remote capture (the
  // injection library) streams its records this way while capturing, so a target that dies
  // mid-capture still leaves what was parsed. Drained rows stay counted in the budget: maxBytes
  // bounds the whole trace, as in process. Use either drain() or result() on an engine, not both.
  Result drain();
  // Stops (reason "cancelled") if live and frees the records; never waits for the capture thread
  // (which may be stuck in CUPTI: it unwinds by itself when CUPTI returns). Idempotent.
  void close();
  // Waits up to timeoutNs for the capture thread to end; true when it has (or never ran).
  bool waitFinished(int64_t timeoutNs);

  // Called by the CUPTI callback router, on CUPTI's threads.
  void requestBuffer(uint8_t** buffer, size_t* size);
  void completeBuffer(cupti::Context ctx, uint32_t streamId, uint8_t* buffer, size_t validSize);

 private:
  struct OpenRange {
    uint64_t start;
    int name, domain;
    uint32_t pid, tid;
    bool isStep;
  };
  struct Completed {
    uint8_t* buffer;
    size_t validSize;
  };

  Engine(Options options, EventFn onEvent);
  void threadMain();
  // The set-up on the capture thread; `armed` says whether it enabled what it had to (false when a
  // stop came before the enable).
  StartResult setUp(bool* armedOut);
  StartResult fail(const char* code, const std::string& message, cupti::Result vendor = -1);
  bool enableKinds(bool all, std::string* error, cupti::Result* code);
  void disableAll();
  void requestStopLocked(const std::string& reason, bool truncated);
  // The activity calls of this capture's subscription (subscriber-scoped when shared_).
  cupti::Result enableKind(cupti::ActivityKind kind);
  cupti::Result disableKind(cupti::ActivityKind kind);
  cupti::Result nextRecord(uint8_t* buffer, size_t validSize, cupti::Activity** record);
  cupti::Result clock(uint64_t* timestamp);
  void wake();
  void run();
  void finish();
  // Parses (or, for a discard buffer, counts) every queued buffer; returns how many it took.
  size_t processQueue();
  void processBuffer(const Completed& c);
  size_t lentCount();
  void releaseLate(uint8_t* buffer);
  uint64_t heldLocked() const;
  Result summaryLocked() const;  // the header of result() and drain(), no rows (mutex_ held)
  uint64_t recordBytesLocked() const;
  uint64_t poolLimit() const;
  void noteHeldLocked();
  void notePeak(uint64_t bytes);
  bool roomForRowLocked(Columns& c);
  double rel(uint64_t ts) const { return static_cast<double>(static_cast<int64_t>(ts - baseNs_)); }
  int intern(const std::string& s);
  int kernelName(const char* mangled);
  int apiName(int domain, uint32_t cbid);
  // Reads the records of one buffer, a bounded chunk per hold of mutex_. A record CUPTI answers
  // INVALID_KIND for (incomplete) is counted in droppedIncomplete and stepped past when CUPTI moved
  // *record onto it; when it did not, the rest of the buffer cannot be read (the record is still
  // counted). Returns the records read (for a discard buffer: counted, not kept).
  template <typename KernelT, typename MemcpyT>
  void parse(uint8_t* buffer, size_t validSize, bool discard);
  template <typename KernelT, typename MemcpyT>
  void recordLocked(const cupti::Activity* rec, const uint8_t* limit);
  void onMarker(const cupti::Marker2& m);
  void stepBoundaryLocked(uint64_t start, uint64_t end);

  Options options_;
  EventFn onEvent_;
  // Written by the capture thread during the set-up; read by the JS thread only once apiReady_ is
  // set (step(), timestamp()) or under mutex_ (result(), startResult()).
  cupti::Api api_;
  std::string libraryPath_;
  bool simulated_ = false;
  uint32_t version_ = 0;
  cupti::Layout layout_ = cupti::Layout::Unsupported;
  cupti::SubscriberHandle subscriber_ = nullptr;  // while subscribed (the capture thread's)
  // Set once during the set-up (before apiReady_ / the callbacks): whether this capture shares
  // CUPTI (multi-subscriber mode: the subscriber-scoped calls), and the subscription they name.
  std::atomic<bool> shared_{false};
  cupti::SubscriberHandle sessionSubscriber_ = nullptr;
  uint64_t baseNs_ = 0;
  std::atomic<bool> apiReady_{false};

  // Guards CUPTI enable/disable/subscribe so a step() enabling kinds cannot race the stop.
  std::mutex ctlMutex_;
  std::vector<cupti::ActivityKind> enabled_;
  bool ctlStopped_ = false;

  // Guards everything below up to the pool. Never held while calling CUPTI functions that may call back.
  std::mutex mutex_;
  State state_ = State::Idle;
  bool stopRequested_ = false;
  bool enableRequested_ = false;
  std::string reason_;
  bool truncated_ = false;
  uint64_t captureStartNs_ = 0;
  uint64_t stepStartNs_ = 0;
  uint64_t boundariesWhileWaiting_ = 0;
  uint64_t stepsDone_ = 0;
  uint64_t records_ = 0;
  uint64_t droppedByCupti_ = 0, droppedByUs_ = 0, droppedIncomplete_ = 0;
  std::unique_ptr<Columns> kernels_, memcpys_, memsets_, apiCalls_, ranges_, steps_;
  std::vector<std::string> strings_;
  std::unordered_map<std::string, int> stringIndex_;
  uint64_t stringBytes_ = 0;
  uint64_t drainedRowBytes_ = 0;  // bytes of the rows drain() moved out (still in the budget)
  size_t stringsDrained_ = 0;     // strings_[0, stringsDrained_) went out with earlier drains
  std::unordered_map<const char*, int> kernelNameByPointer_;
  std::unordered_map<uint64_t, int> apiNameIndex_;
  std::unordered_map<uint32_t, OpenRange> openRanges_;
  bool resultTaken_ = false;
  bool hasStartResult_ = false;
  StartResult startResult_;
  bool started_ = false;        // start() accepted
  bool threadRunning_ = false;  // the capture thread has not ended
  bool closed_ = false;
  std::condition_variable doneCv_;

  // The buffer pool (poolMutex_; the buffer-requested callback takes only this lock).
  std::mutex poolMutex_;
  std::vector<std::unique_ptr<uint8_t[]>> freeBuffers_;
  std::unordered_map<uint8_t*, std::unique_ptr<uint8_t[]>> lent_;  // buffers CUPTI holds
  std::unordered_map<uint8_t*, std::unique_ptr<uint8_t[]>> discard_;  // old-CUPTI overflow buffers
  std::atomic<size_t> buffersAllocated_{0};  // pool buffers in existence (free, with CUPTI, or being parsed)
  std::atomic<uint64_t> recordBytes_{0};     // heldLocked() minus the buffers, as of the last parse chunk
  std::atomic<uint64_t> peakBytes_{0};
  std::atomic<uint64_t> buffersCompleted_{0};
  std::atomic<bool> poolExhausted_{false};
  std::atomic<bool> finished_{false};

  // Buffers CUPTI handed back, for the capture thread (queueMutex_; the buffer-completed callback
  // takes only this lock). While !accepting_ (no capture thread to parse them) a returned buffer
  // is freed at once.
  std::mutex queueMutex_;
  std::condition_variable queueCv_;
  std::deque<Completed> queue_;
  bool wake_ = false;
  bool accepting_ = false;
  uint64_t droppedReported_ = 0;  // CUPTI's drop counts read in the callbacks, not yet added
};

}  // namespace gt::capture
