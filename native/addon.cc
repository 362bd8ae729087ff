// The N-API surface and nothing else: converts options in, events and snapshots out. All vendor
// work happens in plain C++ (sampler/, sources/, vendor/) on the instance's own thread.
//
// Threading contract:
//  - JS calls are on the JS thread; the sampler thread only reaches JS through EventChannel, a
//    thread-safe function guarded so no call is made after Node finalized it (env teardown).
//  - Every instance registers with its environment's AddonState; the environment's cleanup hook
//    stops the threads (worker exit, process exit) with a bounded wait.
//  - Some native threads outlive their environment on purpose: the XID event thread finishing its
//    last bounded wait after close(), a sampler stuck in a driver call that never returns. Node
//    unloads an addon (dlclose) when the worker that loaded it ends, so the addon pins itself in
//    memory at load (pinThisLibrary): those threads never run code that has been unmapped.
#include <dlfcn.h>
#include <napi.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "capture/capture.h"
#include "sampler/sampler.h"

namespace gt {
namespace {

// The sampler thread's only way into JS.
class EventChannel {
 public:
  static std::shared_ptr<EventChannel> create(Napi::Env env, Napi::Function callback) {
    auto channel = std::make_shared<EventChannel>();
    auto* finalizeData = new std::weak_ptr<EventChannel>(channel);
    channel->tsfn_ = Napi::ThreadSafeFunction::New(
        env, callback, "gpu-telemetry-events", 0, 1, finalizeData,
        [](Napi::Env, std::weak_ptr<EventChannel>* weak) {
          if (auto ch = weak->lock()) {
            std::lock_guard<std::mutex> lock(ch->mutex_);
            ch->finalized_ = true;
          }
          delete weak;
        });
    return channel;
  }

  // From any thread. Dropped once Node has finalized the function (environment going away).
  void post(SamplerEvent event) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finalized_ || released_) return;
    tsfn_.NonBlockingCall([event](Napi::Env env, Napi::Function fn) {
      if (env == nullptr || fn.IsEmpty()) return;
      // Plain Node-API calls, not node-addon-api's throwing wrappers: while a worker is being
      // terminated these calls fail, and node-addon-api turns that failure into Error::New, which
      // cannot create an error object then and aborts the whole process ("FATAL ERROR:
      // Error::Error napi_define_properties", seen in CI). A failed call is simply dropped; an
      // exception thrown by the listener stays pending and is reported by Node as uncaught.
      napi_value arg = nullptr;
      napi_value recv = nullptr;
      napi_value result = nullptr;
      if (napi_create_int32(env, static_cast<int32_t>(event), &arg) != napi_ok) return;
      if (napi_get_undefined(env, &recv) != napi_ok) return;
      napi_call_function(env, recv, fn, 1, &arg, &result);
    });
  }

  // From the sampler thread, after its last post.
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finalized_ || released_) return;
    released_ = true;
    tsfn_.Release();
  }

  // From the JS thread: whether a pending event keeps the process alive.
  void setRef(Napi::Env env, bool ref) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finalized_) return;
    if (ref) {
      tsfn_.Ref(env);
    } else {
      tsfn_.Unref(env);
    }
  }

 private:
  std::mutex mutex_;
  bool finalized_ = false;
  bool released_ = false;
  Napi::ThreadSafeFunction tsfn_;
};

// A capture's events into JS, from the capture thread: 'started', then 'stopped' (reason); or
// 'failed' alone. Same guards as EventChannel: nothing is called after Node finalized the
// function; the last event releases it.
class CaptureChannel {
 public:
  static std::shared_ptr<CaptureChannel> create(Napi::Env env, Napi::Function callback) {
    auto channel = std::make_shared<CaptureChannel>();
    auto* finalizeData = new std::weak_ptr<CaptureChannel>(channel);
    channel->tsfn_ = Napi::ThreadSafeFunction::New(
        env, callback, "gpu-telemetry-capture", 0, 1, finalizeData,
        [](Napi::Env, std::weak_ptr<CaptureChannel>* weak) {
          if (auto ch = weak->lock()) {
            std::lock_guard<std::mutex> lock(ch->mutex_);
            ch->finalized_ = true;
          }
          delete weak;
        });
    return channel;
  }

  // From the capture thread. `last` (failed, stopped): the function is released after it.
  void post(const char* event, const std::string& reason, bool last) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finalized_ || released_) return;
    // Raw Node-API, statuses ignored: node-addon-api's Call would build a JS Error when the
    // environment is going away (a worker terminated mid-delivery), and that aborts the process.
    std::string name = event;
    tsfn_.NonBlockingCall([name, reason](Napi::Env env, Napi::Function fn) {
      if (env == nullptr || fn.IsEmpty()) return;
      napi_value args[2];
      napi_value recv;
      napi_value ignored;
      if (napi_create_string_utf8(env, name.data(), name.size(), &args[0]) != napi_ok ||
          napi_create_string_utf8(env, reason.data(), reason.size(), &args[1]) != napi_ok ||
          napi_get_undefined(env, &recv) != napi_ok) {
        return;
      }
      napi_call_function(env, recv, fn, 2, args, &ignored);
    });
    if (last) {
      released_ = true;
      tsfn_.Release();
    }
  }

  // Referenced (keeps the process alive) only while a capture is live: a constructed but never
  // started capture must not hold the event loop open.
  void setRef(Napi::Env env, bool ref) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finalized_ || released_) return;
    if (ref) {
      tsfn_.Ref(env);
    } else {
      tsfn_.Unref(env);
    }
  }

  // A capture that never started: nothing will be posted.
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finalized_ || released_) return;
    released_ = true;
    tsfn_.Release();
  }

 private:
  std::mutex mutex_;
  bool finalized_ = false;
  bool released_ = false;
  Napi::ThreadSafeFunction tsfn_;
};

// Per-environment state: the live instances, so the cleanup hook can stop their threads.
struct AddonState {
  std::mutex mutex;
  std::set<std::shared_ptr<Sampler>> live;
  std::set<std::shared_ptr<capture::Engine>> captures;
};

void cleanupEnvironment(void* arg) {
  auto* state = static_cast<AddonState*>(arg);
  std::set<std::shared_ptr<Sampler>> live;
  std::set<std::shared_ptr<capture::Engine>> captures;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    live.swap(state->live);
    captures.swap(state->captures);
  }
  // A live capture is asked to stop (it disables every CUPTI kind and releases the subscriber on
  // its own thread) and its records are freed.
  for (const auto& c : captures) c->close();
  for (const auto& s : live) s->requestStop();
  // Bounded: a thread stuck in a hung driver call, or a capture thread inside a CUPTI call that
  // stalls (the first enable can take seconds), is never joined: it finishes on its own (it owns
  // what it uses); everything else is waited for so a worker or the process exits cleanly.
  const int64_t deadline = monoNowNs() + 2'000'000'000;
  for (const auto& c : captures) {
    const int64_t left = deadline - monoNowNs();
    c->waitFinished(left > 0 ? left : 0);
  }
  for (const auto& s : live) {
    const int64_t left = deadline - monoNowNs();
    s->waitFinished(left > 0 ? left : 0);
  }
}

std::vector<std::string> stringArray(const Napi::Value& v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value item = a.Get(i);
    if (item.IsString()) out.push_back(item.As<Napi::String>().Utf8Value());
  }
  return out;
}

double numberOr(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

class Handle : public Napi::ObjectWrap<Handle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeHandle",
                       {
                           InstanceMethod<&Handle::devices>("devices"),
                           InstanceMethod<&Handle::system>("system"),
                           InstanceMethod<&Handle::openError>("openError"),
                           InstanceMethod<&Handle::layout>("layout"),
                           InstanceMethod<&Handle::readSnapshot>("readSnapshot"),
                           InstanceMethod<&Handle::setSubscribed>("setSubscribed"),
                           InstanceMethod<&Handle::acknowledgeSample>("acknowledgeSample"),
                           InstanceMethod<&Handle::setRef>("setRef"),
                           InstanceMethod<&Handle::close>("close"),
                           InstanceMethod<&Handle::stats>("stats"),
                           InstanceMethod<&Handle::drainXids>("drainXids"),
                           InstanceMethod<&Handle::migNames>("migNames"),
                       });
  }

  // new NativeHandle(options, onEvent): starts the instance's thread; events arrive as numbers.
  explicit Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "NativeHandle(options, onEvent)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    SamplerOptions options;
    options.nvmlCandidates = stringArray(o.Get("nvmlCandidates"));
    Napi::Value scenario = o.Get("simulatorScenario");
    if (scenario.IsString()) options.simulatorScenario = scenario.As<Napi::String>().Utf8Value();
    options.privateLibraryCopy = o.Get("privateLibraryCopy").ToBoolean().Value();
    options.intervalNs = static_cast<int64_t>(numberOr(o, "intervalMs", 1000) * 1e6);
    options.lostRetryNs = static_cast<int64_t>(numberOr(o, "lostRetryMs", 5000) * 1e6);
    options.slowCallMinGapNs = static_cast<int64_t>(numberOr(o, "slowCallMinGapMs", 1000) * 1e6);
    options.gpm = static_cast<SourceMode>(static_cast<int>(numberOr(o, "gpmMode", 0)));
    options.dcgm = static_cast<SourceMode>(static_cast<int>(numberOr(o, "dcgmMode", 0)));
    options.dcgmCandidates = stringArray(o.Get("dcgmCandidates"));
    options.dcgmFromNvmlLibrary = o.Get("dcgmFromNvmlLibrary").ToBoolean().Value();
    Napi::Value absent = o.Get("dcgmAbsentReason");
    if (absent.IsString()) options.dcgmAbsentReason = absent.As<Napi::String>().Utf8Value();
    Napi::Value host = o.Get("dcgmHost");
    if (host.IsString()) options.dcgmHost = host.As<Napi::String>().Utf8Value();
    options.dcgmHostIsUnixSocket = o.Get("dcgmHostIsUnixSocket").ToBoolean().Value();
    options.dcgmEngine = static_cast<DcgmEngine>(static_cast<int>(numberOr(o, "dcgmEngine", 0)));
    options.dcgmConnectTimeoutMs = static_cast<unsigned int>(numberOr(o, "dcgmConnectTimeoutMs", 5000));
    Napi::Value meminfo = o.Get("meminfoPath");
    if (meminfo.IsString()) options.meminfoPath = meminfo.As<Napi::String>().Utf8Value();
    options.processUtilization = o.Get("processUtilization").ToBoolean().Value();
    options.staleAfterNs = static_cast<int64_t>(numberOr(o, "staleAfterMs", 3000) * 1e6);

    channel_ = EventChannel::create(env, info[1].As<Napi::Function>());
    std::weak_ptr<EventChannel> weakChannel = channel_;
    sampler_ = Sampler::create(std::move(options), [weakChannel](SamplerEvent event) {
      if (auto ch = weakChannel.lock()) {
        ch->post(event);
        if (event == SamplerEvent::Closed) ch->release();
      }
    });
    state_ = *env.GetInstanceData<std::shared_ptr<AddonState>>();
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->live.insert(sampler_);
    }
    sampler_->start();
  }

  ~Handle() override {
    if (!sampler_) return;
    sampler_->requestStop();
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->live.erase(sampler_);
  }

 private:
  Napi::Value devices(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& devices = sampler_->devices();
    Napi::Array out = Napi::Array::New(env, devices.size());
    for (size_t i = 0; i < devices.size(); ++i) {
      const DeviceInfo& d = devices[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("uuid", d.uuid);
      o.Set("name", d.name);
      o.Set("pciBusId", d.pciBusId);
      o.Set("pciDeviceId", d.pciDeviceId);
      o.Set("memoryTotalBytes", d.memoryTotalBytes);
      o.Set("computeCapabilityMajor", d.computeCapabilityMajor);
      o.Set("computeCapabilityMinor", d.computeCapabilityMinor);
      o.Set("unifiedMemory", d.unifiedMemory);
      o.Set("unifiedMemoryReason", d.unifiedMemoryReason);
      o.Set("nvlinkCount", d.nvlinkCount);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  Napi::Value system(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const SystemInfo& s = sampler_->system();
    Napi::Object o = Napi::Object::New(env);
    o.Set("driverVersion", s.driverVersion);
    o.Set("nvmlVersion", s.nvmlVersion);
    o.Set("cudaDriverVersion", s.cudaDriverVersion);
    o.Set("nvmlLibraryPath", s.nvmlLibraryPath);
    Napi::Object symbols = Napi::Object::New(env);
    for (const auto& [member, symbol] : s.resolvedSymbols) {
      symbols.Set(member, symbol.empty() ? env.Null() : Napi::String::New(env, symbol));
    }
    o.Set("resolvedSymbols", symbols);
    Napi::Object backends = Napi::Object::New(env);
    auto report = [&](const BackendReport& r) {
      Napi::Object b = Napi::Object::New(env);
      b.Set("state", r.state);
      b.Set("reason", r.reason);
      b.Set("detail", r.detail);
      return b;
    };
    backends.Set("gpm", report(sampler_->gpmReport()));
    backends.Set("dcgm", report(sampler_->dcgmReport()));
    o.Set("backends", backends);
    // Static notes for fields no source covers on a device: [device][field] -> text or null.
    Napi::Array notes = Napi::Array::New(env, sampler_->devices().size());
    for (size_t d = 0; d < sampler_->devices().size(); ++d) {
      Napi::Array row = Napi::Array::New(env, kFieldCount);
      for (size_t f = 0; f < kFieldCount; ++f) {
        const std::string& note = sampler_->fieldNote(d, static_cast<Field>(f));
        row.Set(static_cast<uint32_t>(f), note.empty() ? env.Null() : Napi::String::New(env, note));
      }
      notes.Set(static_cast<uint32_t>(d), row);
    }
    o.Set("fieldNotes", notes);
    return o;
  }

  Napi::Value openError(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const OpenError& e = sampler_->openError();
    Napi::Object o = Napi::Object::New(env);
    o.Set("code", e.code);
    o.Set("message", e.message);
    o.Set("vendorCode", e.hasVendorCode ? Napi::Value(Napi::Number::New(env, e.vendorCode)) : env.Null());
    o.Set("vendorMessage", e.vendorMessage);
    o.Set("libraryPath", e.libraryPath);
    Napi::Array tried = Napi::Array::New(env, e.tried.size());
    for (size_t i = 0; i < e.tried.size(); ++i) tried.Set(static_cast<uint32_t>(i), e.tried[i]);
    o.Set("tried", tried);
    return o;
  }

  Napi::Value layout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const SnapshotLayout l = SnapshotLayout::forDevices(sampler_->devices().size());
    Napi::Object o = Napi::Object::New(env);
    o.Set("devices", static_cast<double>(l.devices));
    o.Set("byteLength", static_cast<double>(l.byteLength));
    o.Set("valuesOffset", static_cast<double>(l.valuesOffset));
    o.Set("linksOffset", static_cast<double>(l.linksOffset));
    o.Set("processesOffset", static_cast<double>(l.processesOffset));
    o.Set("deviceMetaOffset", static_cast<double>(l.deviceMetaOffset));
    o.Set("codesOffset", static_cast<double>(l.codesOffset));
    o.Set("statusOffset", static_cast<double>(l.statusOffset));
    o.Set("sourceOffset", static_cast<double>(l.sourceOffset));
    o.Set("migValuesOffset", static_cast<double>(l.migValuesOffset));
    o.Set("migMetaOffset", static_cast<double>(l.migMetaOffset));
    o.Set("migCodesOffset", static_cast<double>(l.migCodesOffset));
    o.Set("migStatusOffset", static_cast<double>(l.migStatusOffset));
    o.Set("migSourceOffset", static_cast<double>(l.migSourceOffset));
    return o;
  }

  // readSnapshot(buffer: ArrayBuffer, knownSeq: number, header: Float64Array) -> in-flight call name
  // (a string while the sampler is inside a vendor call, else undefined). The hot path: no
  // allocation unless a call is in flight, and three Node-API calls (each argument is checked by
  // the call that reads it) rather than one wrapper call per check: the first snapshot() after a
  // new sample runs this with cold caches, where every call counts (bench/ANALYSIS.md).
  Napi::Value readSnapshot(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    void* data = nullptr;
    size_t length = 0;
    double knownSeq = 0;
    napi_typedarray_type type = napi_int8_array;
    size_t headerLength = 0;
    void* headerData = nullptr;
    if (info.Length() < 3 || napi_get_arraybuffer_info(env, info[0], &data, &length) != napi_ok ||
        napi_get_value_double(env, info[1], &knownSeq) != napi_ok ||
        napi_get_typedarray_info(env, info[2], &type, &headerLength, &headerData, nullptr, nullptr) != napi_ok ||
        type != napi_float64_array || headerLength < 8) {
      Napi::TypeError::New(env, "readSnapshot(ArrayBuffer, number, Float64Array of at least 8)").ThrowAsJavaScriptException();
      return Napi::Value();
    }
    SnapshotHeader h;
    sampler_->readSnapshot(knownSeq, static_cast<uint8_t*>(data), length, h);
    auto* out = static_cast<double*>(headerData);  // napi_get_typedarray_info's data includes the byte offset
    out[0] = h.seq;
    out[1] = h.takenAtEpochMs;
    out[2] = h.ageMs;
    out[3] = h.sampleDurationMs;
    out[4] = h.inFlightMs;
    out[5] = h.inFlightDevice;
    out[6] = h.running;
    out[7] = 0;
    if (h.inFlightMs > 0) return Napi::String::New(env, h.inFlightCall);
    return Napi::Value();
  }

  void setSubscribed(const Napi::CallbackInfo& info) { sampler_->setSubscribed(info[0].ToBoolean().Value()); }
  void acknowledgeSample(const Napi::CallbackInfo&) { sampler_->acknowledgeSample(); }
  void setRef(const Napi::CallbackInfo& info) { channel_->setRef(info.Env(), info[0].ToBoolean().Value()); }

  void close(const Napi::CallbackInfo&) {
    sampler_->requestStop();
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->live.erase(sampler_);
  }

  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const SamplerStats s = sampler_->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("samples", static_cast<double>(s.samples));
    o.Set("vendorCalls", static_cast<double>(s.vendorCalls));
    o.Set("threadCpuNs", static_cast<double>(s.threadCpuNs));
    o.Set("lastSampleNs", static_cast<double>(s.lastSampleNs));
    o.Set("migListings", static_cast<double>(s.migListings));
    return o;
  }

  // migNames(device) -> { generation, uuids: string[], profiles: string[] } (slot order; JS asks
  // again only when the frame's kDevMigGeneration changed).
  Napi::Value migNames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const size_t device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
    const MigSource::Names n = sampler_->migNames(device);
    Napi::Object o = Napi::Object::New(env);
    o.Set("generation", static_cast<double>(n.generation));
    Napi::Array uuids = Napi::Array::New(env, n.uuids.size());
    Napi::Array profiles = Napi::Array::New(env, n.profiles.size());
    for (size_t i = 0; i < n.uuids.size(); ++i) uuids.Set(static_cast<uint32_t>(i), n.uuids[i]);
    for (size_t i = 0; i < n.profiles.size(); ++i) profiles.Set(static_cast<uint32_t>(i), n.profiles[i]);
    o.Set("uuids", uuids);
    o.Set("profiles", profiles);
    return o;
  }

  // drainXids(max) -> { events: [{device, xid, atEpochMs, gpuInstanceId, computeInstanceId}], dropped }
  Napi::Value drainXids(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const size_t max = info.Length() > 0 && info[0].IsNumber() ? static_cast<size_t>(info[0].As<Napi::Number>().Uint32Value()) : 1024;
    std::vector<XidEvent> events;
    const uint64_t dropped = sampler_->drainXids(events, max);
    Napi::Array arr = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("device", events[i].device);
      o.Set("xid", static_cast<double>(events[i].xid));
      o.Set("atEpochMs", static_cast<double>(events[i].atEpochMs));
      o.Set("gpuInstanceId", events[i].gpuInstanceId);
      o.Set("computeInstanceId", events[i].computeInstanceId);
      arr.Set(static_cast<uint32_t>(i), o);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("events", arr);
    out.Set("dropped", static_cast<double>(dropped));
    return out;
  }

  std::shared_ptr<Sampler> sampler_;
  std::shared_ptr<EventChannel> channel_;
  std::shared_ptr<AddonState> state_;  // shared: finalizers may run after the environment's data is gone
};


// new NativeCapture(options, onEvent): dormant until start(); see native/capture/capture.h.
class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeCapture",
                       {
                           InstanceMethod<&Capture::start>("start"),
                           InstanceMethod<&Capture::startResult>("startResult"),
                           InstanceMethod<&Capture::step>("step"),
                           InstanceMethod<&Capture::timestamp>("timestamp"),
                           InstanceMethod<&Capture::progress>("progress"),
                           InstanceMethod<&Capture::stop>("stop"),
                           InstanceMethod<&Capture::result>("result"),
                           InstanceMethod<&Capture::close>("close"),
                       });
  }

  explicit Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "NativeCapture(options, onEvent)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    capture::Options options;
    options.cuptiCandidates = stringArray(o.Get("cuptiCandidates"));
    Napi::Value scenario = o.Get("simulatorScenario");
    if (scenario.IsString()) {
      options.hasScenario = true;
      options.simulatorScenario = scenario.As<Napi::String>().Utf8Value();
    }
    auto count = [&](const char* key, double fallback) {
      const double d = numberOr(o, key, fallback);
      return d > 0 ? static_cast<uint64_t>(d) : uint64_t{0};
    };
    options.maxBytes = count("maxBytes", 64.0 * 1024 * 1024);
    options.bufferBytes = count("bufferBytes", 4.0 * 1024 * 1024);
    options.maxRecords = count("maxRecords", 1e6);
    options.steps = count("steps", 1);
    options.startAfterSteps = count("startAfterSteps", 0);
    options.flushIntervalMs = static_cast<int64_t>(numberOr(o, "flushIntervalMs", 100));
    options.drainTimeoutMs = static_cast<int64_t>(numberOr(o, "drainTimeoutMs", 1000));
    Napi::Value stepRange = o.Get("stepRange");
    if (stepRange.IsString()) {
      options.hasStepRange = true;
      options.stepRange = stepRange.As<Napi::String>().Utf8Value();
    }
    Napi::Value stepDomain = o.Get("stepDomain");
    if (stepDomain.IsString()) {
      options.hasStepDomain = true;
      options.stepDomain = stepDomain.As<Napi::String>().Utf8Value();
    }
    Napi::Value kinds = o.Get("kinds");
    if (kinds.IsObject()) {
      Napi::Object k = kinds.As<Napi::Object>();
      auto flag = [&](const char* key, bool fallback) {
        Napi::Value v = k.Get(key);
        return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
      };
      options.kinds.kernels = flag("kernels", true);
      options.kinds.memcpy = flag("memcpy", true);
      options.kinds.memset = flag("memset", true);
      options.kinds.runtimeApi = flag("runtimeApi", true);
      options.kinds.driverApi = flag("driverApi", false);
      options.kinds.nvtx = flag("nvtx", true);
    }
    options.prewarm = o.Get("prewarm").IsBoolean() && o.Get("prewarm").As<Napi::Boolean>().Value();
    channel_ = CaptureChannel::create(env, info[1].As<Napi::Function>());
    channel_->setRef(env, false);
    std::weak_ptr<CaptureChannel> weakChannel = channel_;
    engine_ = capture::Engine::create(std::move(options), [weakChannel](capture::Engine::Event event, const std::string& reason) {
      auto ch = weakChannel.lock();
      if (!ch) return;
      switch (event) {
        case capture::Engine::Event::Started: ch->post("started", reason, false); break;
        case capture::Engine::Event::Failed: ch->post("failed", reason, true); break;
        case capture::Engine::Event::Stopped: ch->post("stopped", reason, true); break;
      }
    });
    state_ = *env.GetInstanceData<std::shared_ptr<AddonState>>();
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->captures.insert(engine_);
  }

  ~Capture() override { shutdown(); }

 private:
  // Never waits for the capture thread (the finalizer and close() run on the JS thread).
  void shutdown() {
    if (!engine_) return;
    engine_->close();
    if (channel_) channel_->release();
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->captures.erase(engine_);
  }

  static Napi::Object startResultObject(Napi::Env env, const capture::StartResult& r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", r.ok);
    if (!r.libraryPath.empty()) o.Set("libraryPath", r.libraryPath);
    if (r.cuptiVersion != 0) o.Set("cuptiVersion", static_cast<double>(r.cuptiVersion));
    if (r.ok && !r.libraryPath.empty()) {  // the set-up's outcome (startResult()), not start()'s
      o.Set("startMs", r.startMs);
      o.Set("subscriberMode", r.sharedSubscriber ? "shared" : "exclusive");
    }
    if (!r.ok) {
      o.Set("code", r.code);
      o.Set("message", r.message);
      if (r.hasVendorCode) {
        o.Set("vendorCode", r.vendorCode);
        o.Set("vendorMessage", r.vendorMessage);
      }
    }
    return o;
  }

  // Returns at once; the capture thread reports 'started' or 'failed'.
  Napi::Value start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const bool first = !startCalled_;
    startCalled_ = true;
    const capture::StartResult r = engine_->start();
    if (r.ok) channel_->setRef(env, true);  // until the last event
    if (!r.ok && first) channel_->release();  // refused at once: no event follows
    return startResultObject(env, r);
  }

  Napi::Value startResult(const Napi::CallbackInfo& info) {
    capture::StartResult r;
    if (!engine_->startResult(&r)) return info.Env().Null();
    return startResultObject(info.Env(), r);
  }

  Napi::Value step(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), engine_->step()); }
  Napi::Value timestamp(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), engine_->timestamp()); }

  Napi::Value progress(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const capture::Progress p = engine_->progress();
    Napi::Object o = Napi::Object::New(env);
    o.Set("state", capture::stateName(p.state));
    o.Set("steps", static_cast<double>(p.steps));
    o.Set("records", static_cast<double>(p.records));
    o.Set("bytes", static_cast<double>(p.bytes));
    o.Set("droppedByCupti", static_cast<double>(p.droppedByCupti));
    o.Set("droppedByUs", static_cast<double>(p.droppedByUs));
    o.Set("droppedIncomplete", static_cast<double>(p.droppedIncomplete));
    return o;
  }

  void stop(const Napi::CallbackInfo& info) {
    std::string reason = "cancelled";
    if (info.Length() > 0 && info[0].IsString()) reason = info[0].As<Napi::String>().Utf8Value();
    engine_->stop(reason);
  }

  static Napi::Value columns(Napi::Env env, capture::Columns* c) {
    const size_t doubles = c ? c->rows() * c->stride() : 0;
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, doubles * sizeof(double));
    if (doubles > 0) c->drainInto(static_cast<double*>(buffer.Data()));
    return Napi::Float64Array::New(env, doubles, buffer, 0);
  }

  Napi::Value result(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    capture::Result r = engine_->result();
    Napi::Object o = Napi::Object::New(env);
    o.Set("baseNs", r.baseNs);
    o.Set("cuptiVersion", static_cast<double>(r.cuptiVersion));
    o.Set("layout", r.layout);
    o.Set("libraryPath", r.libraryPath);
    o.Set("simulated", r.simulated);
    o.Set("reason", r.reason);
    o.Set("truncated", r.truncated);
    o.Set("kernels", columns(env, r.kernels.get()));
    o.Set("memcpys", columns(env, r.memcpys.get()));
    o.Set("memsets", columns(env, r.memsets.get()));
    o.Set("apiCalls", columns(env, r.apiCalls.get()));
    o.Set("ranges", columns(env, r.ranges.get()));
    o.Set("steps", columns(env, r.steps.get()));
    Napi::Array strings = Napi::Array::New(env, r.strings.size());
    for (size_t i = 0; i < r.strings.size(); ++i) strings.Set(static_cast<uint32_t>(i), r.strings[i]);
    o.Set("strings", strings);
    o.Set("droppedByCupti", static_cast<double>(r.droppedByCupti));
    o.Set("droppedByUs", static_cast<double>(r.droppedByUs));
    o.Set("droppedIncomplete", static_cast<double>(r.droppedIncomplete));
    o.Set("subscriberMode", r.sharedSubscriber ? "shared" : "exclusive");
    o.Set("peakBytes", static_cast<double>(r.peakBytes));
    o.Set("buffersCompleted", static_cast<double>(r.buffersCompleted));
    return o;
  }

  void close(const Napi::CallbackInfo&) { shutdown(); }

  std::shared_ptr<capture::Engine> engine_;
  std::shared_ptr<CaptureChannel> channel_;
  bool startCalled_ = false;
  std::shared_ptr<AddonState> state_;
};

// captureCuptiState() -> what the loaded CUPTI has enabled (the simulator says so itself; for a
// real CUPTI, what this process's captures enabled and have not disabled).
Napi::Value captureCuptiState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const capture::CuptiState s = capture::cuptiState();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array kinds = Napi::Array::New(env, s.enabledKinds.size());
  for (size_t i = 0; i < s.enabledKinds.size(); ++i) kinds.Set(static_cast<uint32_t>(i), s.enabledKinds[i]);
  o.Set("enabledKinds", kinds);
  o.Set("subscribed", s.subscribed);
  o.Set("source", s.source);
  o.Set("libraryPath", s.libraryPath);
  if (s.hasSimulatorCounters) {
    Napi::Object c = Napi::Object::New(env);
    for (size_t i = 0; i < capture::kSimulatorCounterCount; ++i) c.Set(capture::kSimulatorCounterNames[i], s.simulatorCounters[i]);
    o.Set("simulator", c);
  }
  return o;
}

// captureBuffersWithCupti() -> { buffers, bytes } lent to CUPTI and not yet returned (every capture).
Napi::Value captureBuffersWithCupti(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const capture::LentBuffers lent = capture::buffersWithCupti();
  Napi::Object o = Napi::Object::New(env);
  o.Set("buffers", static_cast<double>(lent.count));
  o.Set("bytes", static_cast<double>(lent.bytes));
  return o;
}

Napi::Value fieldNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, kFieldCount);
  for (size_t i = 0; i < kFieldCount; ++i) out.Set(static_cast<uint32_t>(i), fieldName(static_cast<Field>(i)));
  return out;
}

Napi::Value constants(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("fieldCount", static_cast<double>(kFieldCount));
  o.Set("maxLinks", static_cast<double>(kMaxLinks));
  o.Set("linkStride", static_cast<double>(kLinkStride));
  o.Set("maxProcesses", static_cast<double>(kMaxProcesses));
  o.Set("processStride", static_cast<double>(kProcessStride));
  o.Set("deviceMetaStride", static_cast<double>(kDevMetaStride));
  o.Set("maxMigDevices", static_cast<double>(kMaxMigDevices));
  o.Set("migMetaStride", static_cast<double>(kMigMetaStride));
  Napi::Array migFields = Napi::Array::New(env, kMigFieldCount);
  uint32_t i = 0;
#define GT_MIG_NAME(f) migFields.Set(i++, fieldName(Field::f));
  GT_MIG_FIELDS(GT_MIG_NAME)
#undef GT_MIG_NAME
  o.Set("migFields", migFields);
  return o;
}

}  // namespace

// Marks this shared object "never unload" (RTLD_NODELETE on the copy already loaded). Found by the
// worker-termination test: a worker's environment teardown dlclosed the addon while a detached
// XID thread was still finishing its wait in it (SIGSEGV in unmapped code).
void pinThisLibrary() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&pinThisLibrary), &info) != 0 && info.dli_fname != nullptr) {
      // The handle is kept forever on purpose: it is the pin.
      (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    }
  });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  pinThisLibrary();
  auto* state = new std::shared_ptr<AddonState>(std::make_shared<AddonState>());
  env.SetInstanceData<std::shared_ptr<AddonState>>(state);  // deleted when the environment goes
  napi_add_env_cleanup_hook(env, cleanupEnvironment, state->get());
  exports.Set("NativeHandle", Handle::define(env));
  exports.Set("NativeCapture", Capture::define(env));
  exports.Set("captureCuptiState", Napi::Function::New(env, captureCuptiState));
  exports.Set("captureBuffersWithCupti", Napi::Function::New(env, captureBuffersWithCupti));
  exports.Set("fieldNames", Napi::Function::New(env, fieldNames));
  exports.Set("constants", Napi::Function::New(env, constants));
  return exports;
}

}  // namespace gt

static Napi::Object InitGpuTelemetry(Napi::Env env, Napi::Object exports) { return gt::init(env, exports); }

NODE_API_MODULE(gpu_telemetry, InitGpuTelemetry)
