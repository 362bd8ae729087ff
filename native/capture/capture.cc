#include "capture.h"

#include <cxxabi.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

namespace gt::capture {

namespace {

constexpr size_t kStrideKernel = 16, kStrideMemcpy = 10, kStrideMemset = 8, kStrideApi = 8, kStrideRange = 8,
                 kStrideStep = 2;
constexpr size_t kMaxOpenRanges = 65536;
constexpr size_t kFreeBuffersKept = 2;
// Records parsed per hold of the engine's lock: step()/progress() on the JS thread wait at most
// this many records' worth of parsing (well under a millisecond).
constexpr int kParseChunk = 1024;
// While draining, how long the capture thread waits for CUPTI to hand a buffer back between two
// default flushes.
constexpr auto kDrainPoll = std::chrono::milliseconds(5);
constexpr uint64_t kStringOverhead = 48;  // per interned string: map node + vector slot, roughly

// ---- loaded CUPTI libraries -------------------------------------------------------------------
// A CUPTI library is never unloaded once loaded: it hooks into the CUDA driver and NVIDIA does not
// support unloading it while CUDA is alive; keeping it also lets captureCuptiState() ask it later.
struct Loaded {
  DynLib lib;
  cupti::Api api;
  bool resolved = false;
  std::string missing;
  bool configured = false;
};

struct Libraries {
  std::mutex mutex;
  std::vector<std::unique_ptr<Loaded>> loaded;
  Loaded* last = nullptr;
  // What our captures have enabled and not yet disabled, for libraries that cannot say.
  std::multiset<int> trackedKinds;
  int trackedSubscribers = 0;
};

Libraries& libraries() {
  static Libraries* l = new Libraries();  // immortal: CUPTI may call back during process exit
  return *l;
}

// ---- the CUPTI callback router ------------------------------------------------------------------
// CUPTI's buffer callbacks carry no user pointer: they reach the live engine through this table,
// and a buffer comes back to the engine that lent it even after a newer capture started.
struct Router {
  std::mutex mutex;
  std::shared_ptr<Engine> active;
  std::unordered_map<uint8_t*, std::shared_ptr<Engine>> owners;
};

Router& router() {
  static Router* r = new Router();  // immortal, see above
  return *r;
}

void bufferRequested(uint8_t** buffer, size_t* size, size_t* maxNumRecords) {
  *buffer = nullptr;
  *size = 0;
  if (maxNumRecords) *maxNumRecords = 0;
  std::shared_ptr<Engine> engine;
  {
    std::lock_guard<std::mutex> lock(router().mutex);
    engine = router().active;
  }
  if (!engine) return;
  engine->requestBuffer(buffer, size);
  if (*buffer != nullptr) {
    std::lock_guard<std::mutex> lock(router().mutex);
    router().owners[*buffer] = engine;
  }
}

void bufferCompleted(cupti::Context ctx, uint32_t streamId, uint8_t* buffer, size_t /*size*/, size_t validSize) {
  std::shared_ptr<Engine> engine;
  {
    std::lock_guard<std::mutex> lock(router().mutex);
    auto it = router().owners.find(buffer);
    if (it != router().owners.end()) {
      engine = std::move(it->second);
      router().owners.erase(it);
    } else {
      engine = router().active;  // a null-buffer completion (drop report) or a foreign buffer
    }
  }
  if (engine) engine->completeBuffer(ctx, streamId, buffer, validSize);
}

// The subscriber-scoped callbacks (multi-subscriber mode): the same routing, no context/stream.
void bufferRequestedV2(uint8_t** buffer, size_t* size, size_t* maxNumRecords, void* /*requestInfo*/) {
  bufferRequested(buffer, size, maxNumRecords);
}

void bufferCompletedV2(uint8_t* buffer, size_t size, size_t validSize, void* /*completeInfo*/) {
  bufferCompleted(nullptr, 0, buffer, size, validSize);
}

void noopCallback(void*, cupti::CallbackDomain, cupti::CallbackId, const void*) {}

// Multi-subscriber mode is on unless GPU_TELEMETRY_CUPTI_SHARED=0 (an escape hatch: NVIDIA calls
// the mode beta, and its calls could not be checked against a header here).
bool sharingWanted() {
  const char* v = std::getenv("GPU_TELEMETRY_CUPTI_SHARED");
  return v == nullptr || std::string(v) != "0";
}

std::string demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status == 0 && out != nullptr) {
    std::string s(out);
    std::free(out);
    return s;
  }
  std::free(out);
  return name;
}

}  // namespace

const char* stateName(State s) {
  switch (s) {
    case State::Idle:
    case State::Waiting: return "waiting";
    case State::Starting: return "starting";
    case State::Capturing: return "capturing";
    case State::Stopping: return "stopping";
    case State::Finished: return "finished";
  }
  return "finished";
}

// ---- Columns ----------------------------------------------------------------------------------

double* Columns::append() {
  const size_t inChunk = rows_ % rowsPerChunk_;
  if (inChunk == 0) chunks_.emplace_back(new double[rowsPerChunk_ * stride_]);
  double* row = chunks_.back().get() + inChunk * stride_;
  ++rows_;
  return row;
}

void Columns::drainInto(double* out) {
  size_t left = rows_;
  for (auto& chunk : chunks_) {
    const size_t n = std::min(left, rowsPerChunk_);
    std::memcpy(out, chunk.get(), n * stride_ * sizeof(double));
    out += n * stride_;
    left -= n;
    chunk.reset();
  }
  chunks_.clear();
  rows_ = 0;
}

void Columns::clear() {
  chunks_.clear();
  rows_ = 0;
}

// ---- state as the library sees it ----------------------------------------------------------------

namespace {
// Process-wide: see buffersWithCupti().
std::atomic<uint64_t> gLentCount{0};
std::atomic<uint64_t> gLentBytes{0};

void noteLent(size_t bytes) {
  gLentCount.fetch_add(1, std::memory_order_relaxed);
  gLentBytes.fetch_add(bytes, std::memory_order_relaxed);
}
void noteReturned(size_t bytes) {
  gLentCount.fetch_sub(1, std::memory_order_relaxed);
  gLentBytes.fetch_sub(bytes, std::memory_order_relaxed);
}
}  // namespace

LentBuffers buffersWithCupti() {
  return {gLentCount.load(std::memory_order_relaxed), gLentBytes.load(std::memory_order_relaxed)};
}

CuptiState cuptiState() {
  CuptiState out;
  Libraries& libs = libraries();
  std::lock_guard<std::mutex> lock(libs.mutex);
  if (libs.last != nullptr) {
    out.libraryPath = libs.last->lib.path();
    using StateFn = int (*)(int*, unsigned int, unsigned int*, int*);
    if (auto fn = reinterpret_cast<StateFn>(libs.last->lib.symbol("gtsim_cupti_state"))) {
      int kinds[64];
      unsigned int count = 0;
      int subscribed = 0;
      using CountersFn = int (*)(double*, unsigned int);
      if (auto counters = reinterpret_cast<CountersFn>(libs.last->lib.symbol("gtsim_cupti_counters"))) {
        out.hasSimulatorCounters = counters(out.simulatorCounters, kSimulatorCounterCount) >= 0;
      }
      if (fn(kinds, 64, &count, &subscribed) == 0) {
        out.enabledKinds.assign(kinds, kinds + std::min<unsigned int>(count, 64));
        out.subscribed = subscribed != 0;
        out.source = "library";
        return out;
      }
    }
  }
  std::set<int> unique(libs.trackedKinds.begin(), libs.trackedKinds.end());
  out.enabledKinds.assign(unique.begin(), unique.end());
  out.subscribed = libs.trackedSubscribers > 0;
  out.source = "tracked";
  return out;
}

// ---- Engine ----------------------------------------------------------------------------------------

std::shared_ptr<Engine> Engine::create(Options options, EventFn onEvent) {
  return std::shared_ptr<Engine>(new Engine(std::move(options), std::move(onEvent)));
}

Engine::Engine(Options options, EventFn onEvent) : options_(std::move(options)), onEvent_(std::move(onEvent)) {
  kernels_ = std::make_unique<Columns>(kStrideKernel);
  memcpys_ = std::make_unique<Columns>(kStrideMemcpy);
  memsets_ = std::make_unique<Columns>(kStrideMemset);
  apiCalls_ = std::make_unique<Columns>(kStrideApi);
  ranges_ = std::make_unique<Columns>(kStrideRange);
  steps_ = std::make_unique<Columns>(kStrideStep);
  if (options_.bufferBytes < 64 * 1024) options_.bufferBytes = 64 * 1024;
  options_.bufferBytes = (options_.bufferBytes + 7) & ~uint64_t{7};
  if (options_.flushIntervalMs < 1) options_.flushIntervalMs = 1;
  if (options_.drainTimeoutMs < 0) options_.drainTimeoutMs = 0;
}

Engine::~Engine() {
  close();
  // Buffers still lent are freed with the engine (the router keeps an engine alive while CUPTI
  // holds its buffers, so this happens only at process teardown): they are no longer lent.
  std::lock_guard<std::mutex> lock(poolMutex_);
  for (size_t i = 0; i < lent_.size() + discard_.size(); ++i) noteReturned(options_.bufferBytes);
}

// On the capture thread: the start has failed (nothing is left enabled or subscribed).
StartResult Engine::fail(const char* code, const std::string& message, cupti::Result vendor) {
  StartResult r;
  r.ok = false;
  r.code = code;
  r.message = message;
  if (vendor >= 0) {
    r.hasVendorCode = true;
    r.vendorCode = vendor;
    r.vendorMessage = api_.describe(vendor);
  }
  r.libraryPath = libraryPath_;
  r.cuptiVersion = version_;
  return r;
}

// On the JS thread: no vendor call (CUPTI's first enable can stall its caller for seconds).
StartResult Engine::start() {
  auto refuse = [](const char* code, const std::string& message) {
    StartResult r;
    r.code = code;
    r.message = message;
    return r;
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return refuse("CLOSED", "this capture was closed");
    if (started_) return refuse("CAPTURE_BUSY", "this capture was already started");
  }
  {
    // One capture at a time in this process (CUPTI has one subscriber): the slot is taken here, so
    // a second start() is refused at once, before anything touches CUPTI.
    std::lock_guard<std::mutex> lock(router().mutex);
    if (router().active) return refuse("CAPTURE_BUSY", "another kernel-trace capture is live in this process");
    router().active = shared_from_this();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    started_ = true;
    threadRunning_ = true;
    state_ = State::Starting;
  }
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    accepting_ = true;
  }
  // Never joined: the thread holds the engine until it ends, whatever happens to its owner.
  std::thread([self = shared_from_this()] {
    pthread_setname_np(pthread_self(), "gt-capture");
    self->threadMain();
  }).detach();
  StartResult r;
  r.ok = true;
  return r;
}

bool Engine::startResult(StartResult* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!hasStartResult_) return false;
  *out = startResult_;
  return true;
}

bool Engine::waitFinished(int64_t timeoutNs) {
  std::unique_lock<std::mutex> lock(mutex_);
  return doneCv_.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(timeoutNs, 0)), [this] { return !threadRunning_; });
}

void Engine::threadMain() {
  const auto t0 = std::chrono::steady_clock::now();
  bool armed = false;
  StartResult r = setUp(&armed);
  r.startMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok) {
    {
      std::lock_guard<std::mutex> lock(router().mutex);
      if (router().active.get() == this) router().active.reset();
    }
    {
      std::lock_guard<std::mutex> lock(queueMutex_);
      accepting_ = false;
    }
    processQueue();  // nothing normally: a failed start leaves no buffer with CUPTI
    finished_ = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      startResult_ = r;
      hasStartResult_ = true;
      state_ = State::Finished;
      reason_ = "error";
    }
    if (onEvent_) onEvent_(Event::Failed, "error");
  } else {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      startResult_ = r;
      hasStartResult_ = true;
      if (options_.prewarm) requestStopLocked("prewarm", false);  // warmed: nothing to capture
    }
    if (armed && onEvent_) onEvent_(Event::Started, "");
    run();  // ends with finish(): Stopped
  }
  std::lock_guard<std::mutex> lock(mutex_);
  threadRunning_ = false;
  doneCv_.notify_all();
}

StartResult Engine::setUp(bool* armedOut) {
  *armedOut = false;
  // Load (or reuse) the library.
  Loaded* loaded = nullptr;
  {
    Libraries& libs = libraries();
    auto candidate = std::make_unique<Loaded>();
    if (!candidate->lib.open(options_.cuptiCandidates)) {
      return fail("LIBRARY_NOT_FOUND", "CUPTI could not be loaded: " + candidate->lib.error());
    }
    std::lock_guard<std::mutex> lock(libs.mutex);
    for (auto& l : libs.loaded) {
      if (l->lib.path() == candidate->lib.path()) loaded = l.get();
    }
    if (loaded == nullptr) {
      candidate->resolved = candidate->api.resolve(candidate->lib, &candidate->missing);
      libs.loaded.push_back(std::move(candidate));
      loaded = libs.loaded.back().get();
    }
    libs.last = loaded;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);  // result() reads these on the JS thread
    libraryPath_ = loaded->lib.path();
    simulated_ = loaded->lib.symbol("gtsim_cupti_state") != nullptr;
  }
  api_ = loaded->api;
  if (!loaded->resolved) {
    return fail("SYMBOL_MISSING", libraryPath_ + " is not a usable CUPTI library: it lacks " + loaded->missing);
  }
  using ConfigureFn = int (*)(const char*, char*, unsigned int);
  if (options_.hasScenario) {
    auto configure = reinterpret_cast<ConfigureFn>(loaded->lib.symbol("gtsim_cupti_configure"));
    if (configure == nullptr) {
      return fail("INVALID_SCENARIO", libraryPath_ + " is not the gpu-telemetry simulator (no gtsim_cupti_configure)");
    }
    char error[1024] = {0};
    if (configure(options_.simulatorScenario.c_str(), error, sizeof error) != 0) {
      return fail("INVALID_SCENARIO", std::string("simulator scenario rejected: ") + error);
    }
  }
  uint32_t version = 0;
  if (cupti::Result rc = api_.getVersion(&version); rc != cupti::kSuccess) {
    return fail("CUPTI_ERROR", "cuptiGetVersion failed: " + api_.describe(rc), rc);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    version_ = version;
    layout_ = cupti::layoutForVersion(version);
  }
  if (layout_ == cupti::Layout::Unsupported) {
    return fail("UNSUPPORTED_CUPTI_VERSION",
                "CUPTI API version " + std::to_string(version) + " (" + libraryPath_ +
                    ") is not supported: this build reads the activity record layouts of CUPTI API 18 (CUDA 11.8), "
                    "19-28 (CUDA 12.0-12.9) and 13xxyy (CUDA 13.x)");
  }
  // Subscribe. CUDA 13: cuptiSubscribe_v2, which names us to other tools and tells us who holds
  // CUPTI; from CUDA 13.3 asking to share CUPTI with other subscribers (multi-subscriber mode),
  // which then takes the subscriber-scoped activity calls. Older CUPTI: cuptiSubscribe.
  cupti::SubscriberHandle subscriber = nullptr;
  std::string holder;
  const bool v2 = api_.subscribeV2 != nullptr && version >= cupti::kApiVersionSubscribeV2;
  const bool tryShared = v2 && version >= cupti::kApiVersionMultiSubscriber && api_.hasSubscriberScopedActivity() && sharingWanted();
  auto subscribeV2 = [&](bool allowOthers) {
    char old[cupti::kOldSubscriberNameMinLen + 64] = {0};
    cupti::SubscriberParams params{};
    params.structSize = allowOthers ? cupti::kSubscriberParamsSize132 : cupti::kSubscriberParamsSize130;
    params.subscriberName = "gpu-telemetry";
    params.oldSubscriberName = old;
    params.oldSubscriberSize = sizeof old - 1;
    params.allowMultipleSubscribers = allowOthers ? 1 : 0;
    const cupti::Result rc = api_.subscribeV2(&subscriber, noopCallback, nullptr, &params);
    holder = old;
    return rc;
  };
  cupti::Result rc = cupti::kSuccess;
  bool shared = false;
  if (tryShared) {
    rc = subscribeV2(true);
    shared = rc == cupti::kSuccess;
    // Refused with nobody named as holding CUPTI: the request to share could not be fulfilled (a
    // driver without multi-subscriber support); alone, an exclusive subscription still works.
    if (rc == cupti::kErrorMultipleSubscribersNotSupported && holder.empty()) rc = subscribeV2(false);
  } else if (v2) {
    rc = subscribeV2(false);
  } else {
    rc = api_.subscribe(&subscriber, noopCallback, nullptr);
  }
  if (rc != cupti::kSuccess) {
    if (rc == cupti::kErrorMultipleSubscribersNotSupported) {
      // cuptiSubscribe_v2 names the holder; cuptiSubscribe cannot.
      const std::string who = holder.empty() ? "(Nsight Systems/Compute, PyTorch's Kineto, ...)" : "(\"" + holder + "\")";
      if (tryShared && !holder.empty()) {
        return fail("CUPTI_BUSY",
                    "CUPTI is held by another profiler in this process " + who +
                        " that did not allow other subscribers: CUDA 13.3's multi-subscriber mode needs every subscriber "
                        "to allow it; stop that profiler, or have it subscribe allowing others",
                    rc);
      }
      return fail("CUPTI_BUSY",
                  "CUPTI is already in use by another profiler in this process " + who +
                      ": CUPTI allows one subscriber per process before CUDA 13.3; stop that profiler first",
                  rc);
    }
    return fail("CUPTI_ERROR", std::string(v2 ? "cuptiSubscribe_v2" : "cuptiSubscribe") + " failed: " + api_.describe(rc), rc);
  }
  shared_ = shared;
  sessionSubscriber_ = subscriber;
  subscriber_ = subscriber;
  {
    std::lock_guard<std::mutex> lock(libraries().mutex);
    libraries().trackedSubscribers++;
  }
  auto unsubscribe = [this] {
    api_.unsubscribe(subscriber_);
    subscriber_ = nullptr;
    std::lock_guard<std::mutex> lock(libraries().mutex);
    libraries().trackedSubscribers--;
  };
  if (cupti::Result rc = shared_ ? api_.activityRegisterCallbacksV2(subscriber_, bufferRequestedV2, bufferCompletedV2)
                                 : api_.activityRegisterCallbacks(bufferRequested, bufferCompleted);
      rc != cupti::kSuccess) {
    unsubscribe();
    return fail("CUPTI_ERROR", std::string(shared_ ? "cuptiActivityRegisterCallbacks_v2" : "cuptiActivityRegisterCallbacks") +
                                   " failed: " + api_.describe(rc),
                rc);
  }
  const bool waiting = options_.startAfterSteps > 0;
  // The capture's clock zero, before anything is enabled: every record CUPTI writes from the
  // enable on ends after it (none is dropped as older than the capture).
  uint64_t base = 0;
  if (cupti::Result rc = clock(&base); rc != cupti::kSuccess) {
    unsubscribe();
    return fail("CUPTI_ERROR", std::string(shared_ ? "cuptiGetTimestamp_v2" : "cuptiGetTimestamp") + " failed: " + api_.describe(rc), rc);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    baseNs_ = base;
    captureStartNs_ = base;
    stepStartNs_ = base;
  }
  apiReady_ = true;  // step() and timestamp() may use the library from here (step() waits for 'capturing')
  // Enable: everything now, or (waiting) only the markers that count steps by NVTX range. The
  // first enable of CUPTI's life can take seconds: this is the capture thread, so nobody waits.
  bool stopFirst = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopFirst = stopRequested_;
  }
  if (!stopFirst) {
    std::string error;
    cupti::Result code = 0;
    bool ok = true;
    if (!waiting) ok = enableKinds(true, &error, &code);
    else if (options_.hasStepRange) ok = enableKinds(false, &error, &code);
    if (!ok) {
      disableAll();
      api_.activityFlushAll(cupti::kFlushForced);
      unsubscribe();
      return fail("CUPTI_ERROR", error, code);
    }
  }
  // Armed: the first step begins now (step() calls while starting were ignored).
  uint64_t armed = base;
  if (clock(&armed) != cupti::kSuccess) armed = base;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stepStartNs_ = armed;
    if (!stopRequested_) state_ = waiting ? State::Waiting : State::Capturing;
  }
  *armedOut = !stopFirst;
  StartResult r;
  r.ok = true;
  r.libraryPath = libraryPath_;
  r.cuptiVersion = version_;
  r.sharedSubscriber = shared_;
  return r;
}

// The activity calls of this capture's subscription: the subscriber-scoped ones when it shares
// CUPTI with other subscribers (multi-subscriber mode), else the global ones.
cupti::Result Engine::enableKind(cupti::ActivityKind kind) {
  return shared_ ? api_.activityEnableV2(sessionSubscriber_, kind, nullptr) : api_.activityEnable(kind);
}
cupti::Result Engine::disableKind(cupti::ActivityKind kind) {
  return shared_ ? api_.activityDisableV2(sessionSubscriber_, kind, nullptr) : api_.activityDisable(kind);
}
cupti::Result Engine::nextRecord(uint8_t* buffer, size_t validSize, cupti::Activity** record) {
  return shared_ ? api_.activityGetNextRecordV2(sessionSubscriber_, buffer, validSize, record)
                 : api_.activityGetNextRecord(buffer, validSize, record);
}
cupti::Result Engine::clock(uint64_t* timestamp) {
  return shared_ ? api_.getTimestampV2(sessionSubscriber_, timestamp) : api_.getTimestamp(timestamp);
}

// all = every requested kind; else only MARKER (step counting by NVTX range while waiting).
bool Engine::enableKinds(bool all, std::string* error, cupti::Result* code) {
  std::lock_guard<std::mutex> ctl(ctlMutex_);
  if (ctlStopped_) return true;
  std::vector<cupti::ActivityKind> want;
  const Kinds& k = options_.kinds;
  if (options_.hasStepRange || k.nvtx) want.push_back(cupti::kKindMarker);
  if (all) {
    if (k.kernels) want.push_back(cupti::kKindConcurrentKernel);
    if (k.memcpy) want.push_back(cupti::kKindMemcpy);
    if (k.memset) want.push_back(cupti::kKindMemset);
    if (k.runtimeApi) want.push_back(cupti::kKindRuntime);
    if (k.driverApi) want.push_back(cupti::kKindDriver);
  }
  for (cupti::ActivityKind kind : want) {
    if (std::find(enabled_.begin(), enabled_.end(), kind) != enabled_.end()) continue;
    const cupti::Result rc = enableKind(kind);
    if (rc != cupti::kSuccess) {
      if (error) *error = "cuptiActivityEnable(" + std::to_string(kind) + ") failed: " + api_.describe(rc);
      if (code) *code = rc;
      return false;
    }
    enabled_.push_back(kind);
    std::lock_guard<std::mutex> lock(libraries().mutex);
    libraries().trackedKinds.insert(kind);
  }
  return true;
}

void Engine::disableAll() {
  std::lock_guard<std::mutex> ctl(ctlMutex_);
  ctlStopped_ = true;
  for (cupti::ActivityKind kind : enabled_) {
    disableKind(kind);  // a failure leaves nothing we could do better; the state query shows it
    std::lock_guard<std::mutex> lock(libraries().mutex);
    auto it = libraries().trackedKinds.find(kind);
    if (it != libraries().trackedKinds.end()) libraries().trackedKinds.erase(it);
  }
  enabled_.clear();
}

void Engine::requestStopLocked(const std::string& reason, bool truncated) {
  if (!stopRequested_) {
    stopRequested_ = true;
    reason_ = reason;
    if (state_ == State::Starting || state_ == State::Waiting || state_ == State::Capturing) state_ = State::Stopping;
  }
  if (truncated) truncated_ = true;
  wake();
}

// Wakes the capture thread (stop or enable requested, pool exhausted).
void Engine::wake() {
  std::lock_guard<std::mutex> lock(queueMutex_);
  wake_ = true;
  queueCv_.notify_all();
}

void Engine::stop(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::Finished || state_ == State::Idle) return;
  requestStopLocked(reason, false);
}

void Engine::run() {
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(options_.flushIntervalMs);
  auto nextFlush = Clock::now() + interval;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queueMutex_);
      queueCv_.wait_until(lock, nextFlush, [this] { return wake_ || !queue_.empty(); });
      wake_ = false;
    }
    bool stop = false, enable = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (poolExhausted_.exchange(false) && state_ != State::Finished) requestStopLocked("max_bytes", true);
      stop = stopRequested_;
      enable = enableRequested_ && !stop;
      enableRequested_ = false;
    }
    if (enable) {
      std::string error;
      cupti::Result code = 0;
      if (!enableKinds(true, &error, &code)) {
        std::lock_guard<std::mutex> lock(mutex_);
        requestStopLocked("error", false);
        stop = true;
      }
    }
    processQueue();
    if (stop) break;
    if (Clock::now() >= nextFlush) {
      // A default flush (as kineto does periodically): CUPTI hands back the buffers whose records
      // are all complete. A forced flush here would hand back records still in flight: lost.
      api_.activityFlushAll(0);
      nextFlush = Clock::now() + interval;
    }
  }
  finish();
}

size_t Engine::lentCount() {
  std::lock_guard<std::mutex> lock(poolMutex_);
  return lent_.size() + discard_.size();
}

void Engine::finish() {
  using Clock = std::chrono::steady_clock;
  disableAll();
  // Drain: CUPTI still holds buffers whose records may be in flight (kernels still running). Ask
  // with default flushes until it has handed every one back, or drainTimeoutMs has passed.
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.drainTimeoutMs);
  for (;;) {
    processQueue();
    if (lentCount() == 0 || Clock::now() >= deadline) break;
    api_.activityFlushAll(0);
    if (processQueue() > 0) continue;
    std::unique_lock<std::mutex> lock(queueMutex_);
    queueCv_.wait_until(lock, std::min(deadline, Clock::now() + kDrainPoll), [this] { return !queue_.empty(); });
  }
  // Then ONE forced flush: whatever CUPTI still holds comes back now, records still in flight
  // included (CUPTI answers INVALID_KIND for each: counted in droppedIncomplete).
  api_.activityFlushAll(cupti::kFlushForced);
  processQueue();
  size_t dropped = 0;  // drops on the global queue since the last completed buffer
  // Shared: the global count is every subscriber's (and reading it resets it): not ours to take.
  if (shared_ || api_.activityGetNumDroppedRecords(nullptr, 0, &dropped) != cupti::kSuccess) dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    droppedByCupti_ += dropped;
  }
  api_.unsubscribe(subscriber_);
  subscriber_ = nullptr;
  {
    std::lock_guard<std::mutex> lock(libraries().mutex);
    libraries().trackedSubscribers--;
  }
  {
    std::lock_guard<std::mutex> lock(router().mutex);
    if (router().active.get() == this) router().active.reset();
  }
  // From here a buffer CUPTI hands back (a CUPTI that kept some) is freed by its callback.
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    accepting_ = false;
  }
  processQueue();
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::Finished;
    reason = reason_;
    openRanges_.clear();
  }
  finished_ = true;
  {
    std::lock_guard<std::mutex> lock(poolMutex_);
    buffersAllocated_ -= freeBuffers_.size();
    freeBuffers_.clear();
  }
  if (onEvent_) onEvent_(Event::Stopped, reason);
}

void Engine::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    if (state_ != State::Finished && state_ != State::Idle) requestStopLocked("cancelled", false);
    // No join: the capture thread may be inside CUPTI for seconds; it sees the stop when CUPTI
    // returns, disables, unsubscribes and ends on its own (it holds this engine until then).
    for (Columns* c : {kernels_.get(), memcpys_.get(), memsets_.get(), apiCalls_.get(), ranges_.get(), steps_.get()}) {
      if (c) c->clear();
    }
    strings_.clear();
    stringIndex_.clear();
    kernelNameByPointer_.clear();
  }
  std::lock_guard<std::mutex> lock(poolMutex_);
  buffersAllocated_ -= freeBuffers_.size();
  freeBuffers_.clear();
}

double Engine::timestamp() {
  uint64_t now = 0;
  if (!apiReady_ || clock(&now) != cupti::kSuccess) return 0;
  return rel(now);
}

// On the JS thread: reads the clock, never enables anything itself (the startAfterSteps boundary
// asks the capture thread to: CUPTI's first enable can stall its caller). Ignored while starting.
double Engine::step() {
  if (!apiReady_) return 0;
  uint64_t now = 0;
  if (clock(&now) != cupti::kSuccess) now = baseNs_;
  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.hasStepRange) return rel(now);  // steps are NVTX ranges; step() only reads the clock
  if (state_ == State::Waiting) {
    if (++boundariesWhileWaiting_ >= options_.startAfterSteps) {
      state_ = State::Capturing;
      captureStartNs_ = now;
      stepStartNs_ = now;
      enableRequested_ = true;
      wake();
    }
  } else if (state_ == State::Capturing) {
    stepBoundaryLocked(stepStartNs_, now);
    stepStartNs_ = now;
  }
  return rel(now);
}

// A completed step [start, end] while capturing.
void Engine::stepBoundaryLocked(uint64_t start, uint64_t end) {
  if (stepsDone_ >= options_.steps) return;
  double* row = steps_->append();
  row[0] = rel(start);
  row[1] = rel(end);
  noteHeldLocked();
  if (++stepsDone_ >= options_.steps) requestStopLocked("steps", false);
}

Progress Engine::progress() {
  std::lock_guard<std::mutex> lock(mutex_);
  Progress p;
  p.state = state_;
  p.steps = stepsDone_;
  p.records = records_;
  p.bytes = heldLocked();
  p.droppedByCupti = droppedByCupti_;
  p.droppedByUs = droppedByUs_;
  p.droppedIncomplete = droppedIncomplete_;
  return p;
}

// What result() and drain() both report besides the rows: the capture's identity and its counts.
Result Engine::summaryLocked() const {
  Result r;
  r.baseNs = std::to_string(baseNs_);
  r.cuptiVersion = version_;
  r.layout = cupti::layoutName(layout_);
  r.libraryPath = libraryPath_;
  r.simulated = simulated_;
  r.reason = reason_;
  r.truncated = truncated_;
  r.droppedByCupti = droppedByCupti_;
  r.droppedByUs = droppedByUs_;
  r.droppedIncomplete = droppedIncomplete_;
  r.sharedSubscriber = shared_;
  r.peakBytes = peakBytes_.load();
  r.buffersCompleted = buffersCompleted_.load();
  return r;
}

Result Engine::result() {
  std::lock_guard<std::mutex> lock(mutex_);
  Result r = summaryLocked();
  if (state_ != State::Finished || resultTaken_) {
    r.kernels = std::make_unique<Columns>(kStrideKernel);
    r.memcpys = std::make_unique<Columns>(kStrideMemcpy);
    r.memsets = std::make_unique<Columns>(kStrideMemset);
    r.apiCalls = std::make_unique<Columns>(kStrideApi);
    r.ranges = std::make_unique<Columns>(kStrideRange);
    r.steps = std::make_unique<Columns>(kStrideStep);
    return r;
  }
  resultTaken_ = true;
  r.kernels = std::move(kernels_);
  r.memcpys = std::move(memcpys_);
  r.memsets = std::move(memsets_);
  r.apiCalls = std::move(apiCalls_);
  r.ranges = std::move(ranges_);
  r.steps = std::move(steps_);
  r.strings = std::move(strings_);
  kernels_ = std::make_unique<Columns>(kStrideKernel);
  memcpys_ = std::make_unique<Columns>(kStrideMemcpy);
  memsets_ = std::make_unique<Columns>(kStrideMemset);
  apiCalls_ = std::make_unique<Columns>(kStrideApi);
  ranges_ = std::make_unique<Columns>(kStrideRange);
  steps_ = std::make_unique<Columns>(kStrideStep);
  strings_.clear();
  stringIndex_.clear();
  kernelNameByPointer_.clear();
  apiNameIndex_.clear();
  stringBytes_ = 0;
  recordBytes_ = 0;
  return r;
}

Result Engine::drain() {
  std::lock_guard<std::mutex> lock(mutex_);
  Result r = summaryLocked();
  auto take = [this](std::unique_ptr<Columns>& live, size_t stride) {
    // Counted at their exact size (not the chunks they sat in): a drain every few hundred ms must
    // not charge a whole chunk per column each time.
    drainedRowBytes_ += live->rows() * live->stride() * sizeof(double);
    std::unique_ptr<Columns> out = std::move(live);
    live = std::make_unique<Columns>(stride);
    return out;
  };
  r.kernels = take(kernels_, kStrideKernel);
  r.memcpys = take(memcpys_, kStrideMemcpy);
  r.memsets = take(memsets_, kStrideMemset);
  r.apiCalls = take(apiCalls_, kStrideApi);
  r.ranges = take(ranges_, kStrideRange);
  r.steps = take(steps_, kStrideStep);
  r.stringBase = stringsDrained_;
  if (stringsDrained_ < strings_.size()) {
    r.strings.assign(strings_.begin() + static_cast<std::ptrdiff_t>(stringsDrained_), strings_.end());
    stringsDrained_ = strings_.size();
  }
  return r;
}

// ---- memory ------------------------------------------------------------------------------------

// The memory of the records (columns, names, open ranges): the budget minus the pool's buffers.
uint64_t Engine::recordBytesLocked() const {
  uint64_t b = stringBytes_ + drainedRowBytes_ + openRanges_.size() * 64;
  for (const Columns* c : {kernels_.get(), memcpys_.get(), memsets_.get(), apiCalls_.get(), ranges_.get(), steps_.get()}) {
    b += c->bytes();
  }
  return b;
}

uint64_t Engine::heldLocked() const { return buffersAllocated_.load() * options_.bufferBytes + recordBytesLocked(); }

// The buffers may take at most half the budget (at least one buffer): the records parsed out of
// every buffer CUPTI holds must still fit in the other half (a normalized row is smaller than the
// CUPTI record it comes from).
uint64_t Engine::poolLimit() const { return std::max<uint64_t>(options_.bufferBytes, options_.maxBytes / 2); }

void Engine::notePeak(uint64_t bytes) {
  uint64_t peak = peakBytes_.load();
  while (bytes > peak && !peakBytes_.compare_exchange_weak(peak, bytes)) {
  }
}

void Engine::noteHeldLocked() {
  const uint64_t records = recordBytesLocked();
  recordBytes_ = records;
  notePeak(buffersAllocated_.load() * options_.bufferBytes + records);
}

bool Engine::roomForRowLocked(Columns& c) {
  if (records_ >= options_.maxRecords) {
    ++droppedByUs_;
    requestStopLocked("max_records", true);
    return false;
  }
  const size_t growth = c.growthForOneRow();
  if (growth == 0) return true;
  // One budget for the pool and the records: checked and reserved under the pool's lock, which
  // the buffer-requested callback holds while it checks the same budget.
  std::lock_guard<std::mutex> pool(poolMutex_);
  const uint64_t records = recordBytesLocked();
  auto total = [&] { return buffersAllocated_.load() * options_.bufferBytes + records + growth; };
  // Free pool buffers first: parsed records matter more than spare buffers.
  while (!freeBuffers_.empty() && total() > options_.maxBytes) {
    freeBuffers_.pop_back();
    --buffersAllocated_;
  }
  if (total() > options_.maxBytes) {
    ++droppedByUs_;
    requestStopLocked("max_bytes", true);
    return false;
  }
  recordBytes_ = records + growth;  // reserved: the row's chunk is appended right after this
  notePeak(total());
  return true;
}

// CUPTI's buffer-requested callback (any thread CUPTI likes): takes only poolMutex_.
void Engine::requestBuffer(uint8_t** buffer, size_t* size) {
  std::lock_guard<std::mutex> lock(poolMutex_);
  const uint64_t bufferBytes = options_.bufferBytes;
  std::unique_ptr<uint8_t[]> b;
  if (!freeBuffers_.empty()) {
    b = std::move(freeBuffers_.back());
    freeBuffers_.pop_back();
  } else if (!finished_ && (buffersAllocated_ + 1) * bufferBytes + recordBytes_ <= options_.maxBytes &&
             (buffersAllocated_ + 1) * bufferBytes <= poolLimit()) {
    b.reset(new uint8_t[bufferBytes]);
    ++buffersAllocated_;
  }
  if (b) {
    *buffer = b.get();
    *size = bufferBytes;
    lent_.emplace(b.get(), std::move(b));
    noteLent(bufferBytes);
    notePeak(buffersAllocated_ * bufferBytes + recordBytes_);
    return;
  }
  // The pool is exhausted: the capture thread stops the capture (max_bytes, truncated).
  if (!finished_) {
    poolExhausted_ = true;
    std::lock_guard<std::mutex> q(queueMutex_);
    wake_ = true;
    queueCv_.notify_all();
  }
  if (version_ >= cupti::kApiVersionNullBufferSafe) return;  // no buffer: CUPTI drops and counts
  // Older CUPTI must get a buffer: a discard buffer, whose records we count as dropped. Few of them,
  // recycled as they come back; the stop requested above ends the stream.
  std::unique_ptr<uint8_t[]> d(new uint8_t[bufferBytes]);
  *buffer = d.get();
  *size = bufferBytes;
  discard_.emplace(d.get(), std::move(d));
  noteLent(bufferBytes);
}

// CUPTI's buffer-completed callback: queues the buffer for the capture thread and returns; it
// takes only queueMutex_ (never the lock step()/progress() take, never waits on a parse).
void Engine::completeBuffer(cupti::Context ctx, uint32_t streamId, uint8_t* buffer, size_t validSize) {
  size_t dropped = 0;
  if (shared_ || api_.activityGetNumDroppedRecords(ctx, streamId, &dropped) != cupti::kSuccess) {
    dropped = 0;
  }
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    droppedReported_ += dropped;
    if (buffer == nullptr) return;
    if (accepting_) {
      queue_.push_back({buffer, validSize});
      queueCv_.notify_all();
      return;
    }
  }
  releaseLate(buffer);
}

// A buffer CUPTI handed back after the capture thread finished: freed, never read.
void Engine::releaseLate(uint8_t* buffer) {
  std::lock_guard<std::mutex> lock(poolMutex_);
  if (auto it = discard_.find(buffer); it != discard_.end()) {
    discard_.erase(it);
    noteReturned(options_.bufferBytes);
    return;
  }
  auto it = lent_.find(buffer);
  if (it == lent_.end()) return;  // not ours: never touch it
  lent_.erase(it);
  noteReturned(options_.bufferBytes);
  ++buffersCompleted_;
  --buffersAllocated_;
}

size_t Engine::processQueue() {
  size_t n = 0;
  for (;;) {
    Completed c{nullptr, 0};
    uint64_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(queueMutex_);
      dropped = droppedReported_;
      droppedReported_ = 0;
      if (!queue_.empty()) {
        c = queue_.front();
        queue_.pop_front();
      }
    }
    if (dropped > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      droppedByCupti_ += dropped;
    }
    if (c.buffer == nullptr) return n;
    processBuffer(c);
    ++n;
  }
}

void Engine::processBuffer(const Completed& c) {
  std::unique_ptr<uint8_t[]> owned;
  bool discard = false;
  {
    std::lock_guard<std::mutex> lock(poolMutex_);
    if (auto it = discard_.find(c.buffer); it != discard_.end()) {
      owned = std::move(it->second);
      discard_.erase(it);
      discard = true;
    } else if (auto lt = lent_.find(c.buffer); lt != lent_.end()) {
      owned = std::move(lt->second);
      lent_.erase(lt);
      ++buffersCompleted_;
    } else {
      return;  // not ours: never touch it
    }
    noteReturned(options_.bufferBytes);
  }
  const size_t validSize = std::min<size_t>(c.validSize, options_.bufferBytes);
  switch (layout_) {
    case cupti::Layout::Cuda11: parse<cupti::Kernel8, cupti::Memcpy5>(owned.get(), validSize, discard); break;
    case cupti::Layout::Cuda12: parse<cupti::Kernel9, cupti::Memcpy5>(owned.get(), validSize, discard); break;
    case cupti::Layout::Cuda13: parse<cupti::Kernel10, cupti::Memcpy6>(owned.get(), validSize, discard); break;
    default: break;
  }
  if (discard) return;  // freed here (not part of the pool)
  std::lock_guard<std::mutex> lock(poolMutex_);
  if (!finished_ && freeBuffers_.size() < kFreeBuffersKept) {
    freeBuffers_.push_back(std::move(owned));
  } else {
    owned.reset();
    --buffersAllocated_;
  }
}

// ---- parsing -------------------------------------------------------------------------------------

int Engine::intern(const std::string& s) {
  auto it = stringIndex_.find(s);
  if (it != stringIndex_.end()) return it->second;
  const int index = static_cast<int>(strings_.size());
  strings_.push_back(s);
  stringIndex_.emplace(s, index);
  stringBytes_ += 2 * s.size() + kStringOverhead;
  return index;
}

int Engine::kernelName(const char* mangled) {
  if (mangled == nullptr) return intern("(unknown kernel)");
  auto it = kernelNameByPointer_.find(mangled);
  if (it != kernelNameByPointer_.end()) return it->second;
  const int index = intern(demangle(mangled));
  kernelNameByPointer_.emplace(mangled, index);
  return index;
}

int Engine::apiName(int domain, uint32_t cbid) {
  const uint64_t key = (static_cast<uint64_t>(domain) << 32) | cbid;
  auto it = apiNameIndex_.find(key);
  if (it != apiNameIndex_.end()) return it->second;
  const char* name = nullptr;
  std::string text;
  if (api_.getCallbackName != nullptr && api_.getCallbackName(domain, cbid, &name) == cupti::kSuccess && name) {
    text = name;
  } else {
    text = "cbid " + std::to_string(cbid);
  }
  const int index = intern(text);
  apiNameIndex_.emplace(key, index);
  return index;
}

template <typename KernelT, typename MemcpyT>
void Engine::parse(uint8_t* buffer, size_t validSize, bool discard) {
  const uint8_t* limit = buffer + validSize;
  auto inside = [&](const cupti::Activity* p) {
    return reinterpret_cast<const uint8_t*>(p) >= buffer && reinterpret_cast<const uint8_t*>(p) < limit;
  };
  cupti::Activity* rec = nullptr;
  bool more = validSize > 0;
  while (more) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int n = 0; n < kParseChunk && more; ++n) {
      cupti::Activity* before = rec;
      const cupti::Result rc = nextRecord(buffer, validSize, &rec);
      if (rc == cupti::kSuccess) {
        if (rec == nullptr || !inside(rec)) {
          more = false;
        } else if (discard) {
          ++droppedByUs_;
        } else if (state_ != State::Finished) {
          recordLocked<KernelT, MemcpyT>(rec, limit);
        }
      } else if (rc == cupti::kErrorInvalidKind) {
        // An incomplete record (CUPTI handed the buffer back while it was in flight): lost, counted.
        ++droppedIncomplete_;
        // Step past it when CUPTI moved *record onto it; else the rest cannot be read.
        more = rec != nullptr && rec != before && inside(rec);
      } else {
        more = false;  // MAX_LIMIT_REACHED: the end of the buffer (or an error: nothing more to read)
      }
    }
    noteHeldLocked();
  }
}

template <typename KernelT, typename MemcpyT>
void Engine::recordLocked(const cupti::Activity* rec, const uint8_t* limit) {
  const bool capturing = state_ == State::Capturing || state_ == State::Stopping;
  auto fits = [&](const void* p, size_t n) { return static_cast<const uint8_t*>(p) + n <= limit; };
  auto keep = [&](uint64_t end) { return capturing && end >= captureStartNs_; };
  switch (rec->kind) {
    case cupti::kKindKernel:
    case cupti::kKindConcurrentKernel: {
      if (!fits(rec, sizeof(KernelT))) break;
      const auto* k = reinterpret_cast<const KernelT*>(rec);
      if (!keep(k->end) || !roomForRowLocked(*kernels_)) break;
      const int name = kernelName(k->name);
      double* r = kernels_->append();
      r[0] = rel(k->start); r[1] = rel(k->end); r[2] = k->deviceId; r[3] = k->contextId; r[4] = k->streamId;
      r[5] = k->correlationId; r[6] = k->gridX; r[7] = k->gridY; r[8] = k->gridZ; r[9] = k->blockX;
      r[10] = k->blockY; r[11] = k->blockZ; r[12] = k->registersPerThread; r[13] = k->staticSharedMemory;
      r[14] = k->dynamicSharedMemory; r[15] = name;
      ++records_;
      break;
    }
    case cupti::kKindMemcpy: {
      if (!fits(rec, sizeof(MemcpyT))) break;
      const auto* m = reinterpret_cast<const MemcpyT*>(rec);
      if (!keep(m->end) || !roomForRowLocked(*memcpys_)) break;
      double* r = memcpys_->append();
      r[0] = rel(m->start); r[1] = rel(m->end); r[2] = m->deviceId; r[3] = m->contextId; r[4] = m->streamId;
      r[5] = m->correlationId; r[6] = static_cast<double>(m->bytes); r[7] = m->copyKind; r[8] = m->srcKind;
      r[9] = m->dstKind;
      ++records_;
      break;
    }
    case cupti::kKindMemset: {
      if (!fits(rec, sizeof(cupti::Memset4))) break;
      const auto* m = reinterpret_cast<const cupti::Memset4*>(rec);
      if (!keep(m->end) || !roomForRowLocked(*memsets_)) break;
      double* r = memsets_->append();
      r[0] = rel(m->start); r[1] = rel(m->end); r[2] = m->deviceId; r[3] = m->contextId; r[4] = m->streamId;
      r[5] = m->correlationId; r[6] = static_cast<double>(m->bytes); r[7] = m->value;
      ++records_;
      break;
    }
    case cupti::kKindRuntime:
    case cupti::kKindDriver: {
      if (!fits(rec, sizeof(cupti::ApiRecord))) break;
      const auto* a = reinterpret_cast<const cupti::ApiRecord*>(rec);
      if (!keep(a->end) || !roomForRowLocked(*apiCalls_)) break;
      const int domain = rec->kind == cupti::kKindDriver ? cupti::kDomainDriverApi : cupti::kDomainRuntimeApi;
      const int name = apiName(domain, a->cbid);
      double* r = apiCalls_->append();
      r[0] = rel(a->start); r[1] = rel(a->end); r[2] = a->processId; r[3] = a->threadId; r[4] = a->correlationId;
      r[5] = a->cbid; r[6] = rec->kind == cupti::kKindDriver ? 1 : 0; r[7] = name;
      ++records_;
      break;
    }
    case cupti::kKindMarker: {
      if (!fits(rec, sizeof(cupti::Marker2))) break;
      onMarker(*reinterpret_cast<const cupti::Marker2*>(rec));
      break;
    }
    default: break;
  }
}

void Engine::onMarker(const cupti::Marker2& m) {
  const bool thread = m.objectKind == cupti::kObjectThread || m.objectKind == cupti::kObjectProcess;
  const uint32_t pid = thread ? m.objectId.pt.processId : 0;
  const uint32_t tid = m.objectKind == cupti::kObjectThread ? m.objectId.pt.threadId : 0;
  if (m.flags & cupti::kFlagMarkerStart) {
    if (openRanges_.size() >= kMaxOpenRanges) {
      ++droppedByUs_;
      return;
    }
    const std::string name = m.name ? m.name : "";
    OpenRange r;
    r.start = m.timestamp;
    r.isStep = options_.hasStepRange && name == options_.stepRange &&
               (!options_.hasStepDomain || options_.stepDomain == (m.domain ? m.domain : ""));
    r.name = intern(name);
    r.domain = m.domain && *m.domain ? intern(m.domain) : -1;
    r.pid = pid;
    r.tid = tid;
    openRanges_[m.id] = r;
    return;
  }
  if (m.flags & cupti::kFlagMarkerEnd) {
    auto it = openRanges_.find(m.id);
    if (it == openRanges_.end()) return;  // started before the capture
    const OpenRange r = it->second;
    openRanges_.erase(it);
    const uint64_t end = m.timestamp;
    if (r.isStep) {
      if (state_ == State::Waiting) {
        if (++boundariesWhileWaiting_ >= options_.startAfterSteps) {
          state_ = State::Capturing;
          captureStartNs_ = end;
          enableRequested_ = true;  // the capture thread (this one: markers are parsed there) enables
          wake();
        }
      } else if (state_ == State::Capturing && r.start >= captureStartNs_) {
        stepBoundaryLocked(r.start, end);
      }
    }
    const bool capturing = state_ == State::Capturing || state_ == State::Stopping;
    if (options_.kinds.nvtx && capturing && end >= captureStartNs_ && roomForRowLocked(*ranges_)) {
      double* row = ranges_->append();
      row[0] = rel(r.start); row[1] = rel(end); row[2] = m.id; row[3] = 1; row[4] = r.name; row[5] = r.domain;
      row[6] = r.pid; row[7] = r.tid;
      ++records_;
    }
    return;
  }
  if (m.flags & cupti::kFlagMarkerInstantaneous) {
    const bool capturing = state_ == State::Capturing || state_ == State::Stopping;
    if (!options_.kinds.nvtx || !capturing || m.timestamp < captureStartNs_ || !roomForRowLocked(*ranges_)) return;
    double* row = ranges_->append();
    row[0] = rel(m.timestamp); row[1] = rel(m.timestamp); row[2] = m.id; row[3] = 0;
    row[4] = intern(m.name ? m.name : ""); row[5] = m.domain && *m.domain ? intern(m.domain) : -1;
    row[6] = pid; row[7] = tid;
    ++records_;
  }
}

}  // namespace gt::capture
