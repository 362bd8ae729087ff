#include "sampler.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace gt {

namespace {

int64_t threadCpuNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// What the simulator library exports so our loader can hand it a scenario. A real NVML has no
// such symbol, which is how `simulate` refuses a library that is not the simulator.
using SimConfigureFn = int (*)(const char* scenarioJson, char* error, unsigned int errorLength);
constexpr const char* kSimConfigureSymbol = "gtsim_configure";

size_t align8(size_t n) { return (n + 7) & ~size_t{7}; }

}  // namespace

const char* fieldName(Field f) {
  static constexpr const char* kNames[] = {
#define GT_FIELD(id, name) name,
#include "fields.def"
#undef GT_FIELD
  };
  return kNames[idx(f)];
}

namespace {
// A count kept as a double in the device meta, as a number of slots (0 for NaN or negative).
size_t countIn(double v, size_t most) {
  if (!(v > 0)) return 0;
  return v >= static_cast<double>(most) ? most : static_cast<size_t>(v);
}

// The process and MIG sections are sized for the most a device can have (64 processes, 8 MIG
// devices: 78% of a frame) and mostly empty. Publishing and readSnapshot copy only each device's
// entries that its meta counts: every reader stops at those counts (snapshot-fleet.ts, the
// per-process utilisation), so what an earlier sample left past them is never seen. Calls
// visit(member, offset of the section in a SnapshotLayout, first element, element count).
template <typename Visit>
void forCountedEntries(const SampleFrame& frame, const SnapshotLayout& layout, Visit&& visit) {
  for (size_t d = 0; d < frame.devices; d++) {
    const double* meta = &frame.deviceMeta[d * kDevMetaStride];
    const size_t processes = countIn(meta[kDevProcessCount], kMaxProcesses);
    visit(&SampleFrame::processes, layout.processesOffset, d * kMaxProcesses * kProcessStride, processes * kProcessStride);
    const size_t mig = countIn(meta[kDevMigCount], kMaxMigDevices);
    const size_t migFirst = d * kMaxMigDevices;
    visit(&SampleFrame::migValues, layout.migValuesOffset, migFirst * kMigFieldCount, mig * kMigFieldCount);
    visit(&SampleFrame::migMeta, layout.migMetaOffset, migFirst * kMigMetaStride, mig * kMigMetaStride);
    visit(&SampleFrame::migCodes, layout.migCodesOffset, migFirst * kMigFieldCount, mig * kMigFieldCount);
    visit(&SampleFrame::migStatus, layout.migStatusOffset, migFirst * kMigFieldCount, mig * kMigFieldCount);
    visit(&SampleFrame::migSource, layout.migSourceOffset, migFirst * kMigFieldCount, mig * kMigFieldCount);
  }
}
}  // namespace

SnapshotLayout SnapshotLayout::forDevices(size_t devices) {
  SnapshotLayout l;
  l.devices = devices;
  size_t off = 0;
  l.valuesOffset = off;
  off += devices * kFieldCount * sizeof(double);
  l.linksOffset = off;
  off += devices * kMaxLinks * kLinkStride * sizeof(double);
  l.processesOffset = off;
  off += devices * kMaxProcesses * kProcessStride * sizeof(double);
  l.deviceMetaOffset = off;
  off += devices * kDevMetaStride * sizeof(double);
  l.codesOffset = off;
  off += align8(devices * kFieldCount * sizeof(int32_t));
  l.statusOffset = off;
  off += align8(devices * kFieldCount);
  l.sourceOffset = off;
  off += align8(devices * kFieldCount);
  l.migValuesOffset = off;
  off += devices * kMaxMigDevices * kMigFieldCount * sizeof(double);
  l.migMetaOffset = off;
  off += devices * kMaxMigDevices * kMigMetaStride * sizeof(double);
  l.migCodesOffset = off;
  off += align8(devices * kMaxMigDevices * kMigFieldCount * sizeof(int32_t));
  l.migStatusOffset = off;
  off += align8(devices * kMaxMigDevices * kMigFieldCount);
  l.migSourceOffset = off;
  off += align8(devices * kMaxMigDevices * kMigFieldCount);
  l.byteLength = off;
  return l;
}

std::shared_ptr<Sampler> Sampler::create(SamplerOptions options, EventSink sink) {
  return std::shared_ptr<Sampler>(new Sampler(std::move(options), std::move(sink)));
}

Sampler::Sampler(SamplerOptions options, EventSink sink) : options_(std::move(options)), sink_(std::move(sink)) {}

Sampler::~Sampler() {
  // The thread holds a reference to us while it runs, so by now it has finished or was detached
  // after finishing its work; a joinable handle here only needs reaping.
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
}

void Sampler::start() {
  running_.store(true);
  thread_ = std::thread([self = shared_from_this()]() mutable {
    pthread_setname_np(pthread_self(), "gt-sampler");  // what top -H, perf and gdb show
    self->run(self);
  });
}

void Sampler::requestStop() {
  {
    std::lock_guard<std::mutex> lock(stopMutex_);
    stopRequested_ = true;
  }
  stopCv_.notify_all();
}

bool Sampler::waitFinished(int64_t timeoutNs) {
  std::unique_lock<std::mutex> lock(finishedMutex_);
  const bool done = finishedCv_.wait_for(lock, std::chrono::nanoseconds(timeoutNs), [&] { return finished_; });
  lock.unlock();
  if (done && thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  return done;
}

void Sampler::failOpen(std::string code, std::string message) {
  openError_.code = std::move(code);
  openError_.message = std::move(message);
}

bool Sampler::openBackend() {
  const bool loaded = options_.privateLibraryCopy && options_.nvmlCandidates.size() == 1
                          ? session_->lib.openPrivateCopy(options_.nvmlCandidates[0])
                          : session_->lib.open(options_.nvmlCandidates);
  openError_.tried = session_->lib.tried();
  if (!loaded) {
    failOpen("LIBRARY_NOT_FOUND", "could not load NVML (" + session_->lib.error() +
                                      "); install the NVIDIA driver or set GPU_TELEMETRY_NVML_LIB / "
                                      "options.libraries.nvml to libnvidia-ml.so.1");
    return false;
  }
  openError_.libraryPath = session_->lib.path();
  system_.nvmlLibraryPath = session_->lib.path();

  if (!options_.simulatorScenario.empty()) {
    auto configure = reinterpret_cast<SimConfigureFn>(session_->lib.symbol(kSimConfigureSymbol));
    if (configure == nullptr) {
      failOpen("INVALID_OPTION", session_->lib.path() + " is not the gpu-telemetry simulator (no " +
                                     kSimConfigureSymbol + " symbol)");
      return false;
    }
    char error[512] = {};
    if (configure(options_.simulatorScenario.c_str(), error, sizeof error) != 0) {
      failOpen("INVALID_SCENARIO", std::string("simulator rejected the scenario: ") + error);
      return false;
    }
  }

  std::string missing;
  if (!session_->api.resolve(session_->lib, &missing)) {
    failOpen("SYMBOL_MISSING", session_->lib.path() + " does not export " + missing + ": it is not a usable NVML");
    return false;
  }
#define GT_NVML_RECORD(member, ret, params, ...) \
  system_.resolvedSymbols.emplace_back(#member, session_->api.member##Symbol ? session_->api.member##Symbol : "");
  GT_NVML_FUNCTIONS(GT_NVML_RECORD)
#undef GT_NVML_RECORD

  nvml::Return r;
  {
    TrackedCall tracked(tracker_, session_->api.initSymbol, -1);
    r = session_->api.init();
  }
  if (r != nvml::kSuccess) {
    openError_.hasVendorCode = true;
    openError_.vendorCode = r;
    openError_.vendorMessage = session_->api.describe(r);
    std::string code = "VENDOR_ERROR";
    std::string hint;
    switch (r) {
      case nvml::kErrorDriverNotLoaded:
        code = "DRIVER_NOT_LOADED";
        hint = ": the NVIDIA kernel driver is not loaded on this machine (no GPU, or the driver is not "
               "installed); use { simulate: 'h100-sxm-8' } to run without one";
        break;
      case nvml::kErrorNoPermission:
        code = "NO_PERMISSION";
        hint = ": this process may not open the NVIDIA device files (/dev/nvidia*)";
        break;
      case nvml::kErrorLibRmVersionMismatch:
        code = "DRIVER_VERSION_MISMATCH";
        hint = ": the NVML library and the kernel driver are different versions (reboot or reinstall)";
        break;
      case nvml::kErrorLibraryNotFound:
        code = "LIBRARY_NOT_FOUND";
        hint = ": NVML could not find a library it depends on";
        break;
      default:
        break;
    }
    failOpen(code, std::string(session_->api.initSymbol) + " failed with " + nvml::returnName(r) + " (" +
                       std::to_string(r) + ", \"" + openError_.vendorMessage + "\")" + hint);
    return false;
  }
  session_->initialized = true;

  NvmlSource::Options sourceOptions;
  sourceOptions.lostRetryNs = options_.lostRetryNs;
  sourceOptions.slowCallMinGapNs = options_.slowCallMinGapNs;
  nvmlSource_ = std::make_unique<NvmlSource>(session_->api, tracker_, sourceOptions);
  std::string failedCall;
  r = nvmlSource_->discover(devices_, system_, failedCall);
  if (r != nvml::kSuccess) {
    openError_.hasVendorCode = true;
    openError_.vendorCode = r;
    openError_.vendorMessage = session_->api.describe(r);
    failOpen(r == nvml::kErrorNoPermission ? "NO_PERMISSION" : "VENDOR_ERROR",
             failedCall + " failed with " + nvml::returnName(r) + " (" + std::to_string(r) + ", \"" +
                 openError_.vendorMessage + "\")");
    return false;
  }
  {
    std::vector<nvml::Device> handles;
    for (size_t d = 0; d < devices_.size(); ++d) handles.push_back(nvmlSource_->handle(d));
    auto watcher = XidWatcher::create(session_, std::move(handles), options_.lostRetryNs / 1'000'000);
    watcher->start([this] {
      if (!xidNotified_.exchange(true, std::memory_order_acq_rel)) sink_(SamplerEvent::XidReady);
    });
    std::lock_guard<std::mutex> lock(xidMutex_);
    xid_ = std::move(watcher);
  }
  if (!openDcgm()) return false;
  if (!openGpm()) return false;
  openFleet();
  planSources();
  working_.resize(devices_.size());
  {
    std::lock_guard<std::mutex> lock(publishMutex_);
    published_.resize(devices_.size());
  }
  return true;
}

bool Sampler::openGpm() {
  if (options_.gpm == SourceMode::Disabled) {
    gpmReport_ = {"disabled", "disabled by options.sources.gpm = false", ""};
    return true;
  }
  std::vector<nvml::Device> handles;
  for (size_t d = 0; d < devices_.size(); ++d) handles.push_back(nvmlSource_->handle(d));
  gpm_ = std::make_unique<GpmSource>(session_->api, tracker_, std::move(handles));
  gpm_->probe();
  if (gpm_->anySupported()) {
    gpmReport_ = {"active", "", "NVML GPM"};
    return true;
  }
  const int32_t code = devices_.empty() ? nvml::kErrorNotSupported : gpm_->code(0);
  gpmReport_ = {"unavailable",
                code == kCodeSymbolMissing ? "the loaded NVML has no GPM entry points (driver older than R520)"
                                           : std::string("no GPU supports GPM (Hopper or newer): ") + nvml::returnName(code),
                ""};
  if (options_.gpm == SourceMode::Required) {
    failOpen("SOURCE_UNAVAILABLE", "options.sources.gpm is true but GPM cannot be used: " + gpmReport_.reason);
    return false;
  }
  gpm_.reset();
  return true;
}

bool Sampler::openDcgm() {
  if (options_.dcgm == SourceMode::Disabled) {
    dcgmReport_ = {"disabled", "disabled by options.sources.dcgm = false", ""};
    return true;
  }
  DcgmOptions o;
  o.candidates = options_.dcgmCandidates;
  o.sharedLibrary = options_.dcgmFromNvmlLibrary ? &session_->lib : nullptr;
  o.absentReason = options_.dcgmAbsentReason;
  o.engine = options_.dcgmEngine;
  o.host = options_.dcgmHost;
  o.hostIsUnixSocket = options_.dcgmHostIsUnixSocket;
  // The simulator says which addresses its nv-hostengine listens on (no real socket exists).
  if (options_.dcgmFromNvmlLibrary) o.listening = reinterpret_cast<ListenerCheck>(session_->lib.symbol("gtsim_dcgm_listening"));
  o.connectTimeoutMs = options_.dcgmConnectTimeoutMs;
  // DCGM's profiling module samples no faster than every 100 ms.
  o.updateIntervalUs = std::max<int64_t>(options_.intervalNs / 1000, 100'000);
  o.reconnectNs = options_.lostRetryNs;
  auto source = std::make_unique<DcgmSource>(tracker_, std::move(o));
  std::vector<std::string> uuids;
  for (const DeviceInfo& info : devices_) uuids.push_back(info.uuid);
  if (source->open(uuids)) {
    dcgmReport_ = {"active", "", source->describeMode() + ", " + source->libraryPath()};
    dcgm_ = std::move(source);
    return true;
  }
  dcgmReport_ = {"unavailable", source->reason(), ""};
  if (options_.dcgm == SourceMode::Required) {
    if (source->vendorCode() != 0) {
      openError_.hasVendorCode = true;
      openError_.vendorCode = source->vendorCode();
      openError_.vendorMessage = dcgm::returnName(source->vendorCode());
    }
    if (!source->libraryPath().empty()) openError_.libraryPath = source->libraryPath();
    failOpen("SOURCE_UNAVAILABLE", "options.sources.dcgm is true but DCGM cannot be used: " + source->reason());
    return false;
  }
  return true;
}

// MIG devices and per-process utilisation: their own sources (mig_source, process_util).
void Sampler::openFleet() {
  std::vector<nvml::Device> handles;
  for (size_t d = 0; d < devices_.size(); ++d) handles.push_back(nvmlSource_->handle(d));
  MigSource::Options migOptions;
  {
    std::lock_guard<std::mutex> lock(migMutex_);
    mig_ = std::make_unique<MigSource>(session_->api, tracker_, handles, migOptions);
  }
  if (options_.processUtilization) {
    processUtil_ = ProcessUtilWatcher::create(session_, handles, options_.intervalNs, options_.staleAfterNs);
    processUtil_->start();
  }
}

void Sampler::sampleFleet(size_t d, DeviceRow& row, int64_t nowNs) {
  const int migMode = static_cast<int>(row.meta(kDevMigMode));
  mig_->sample(d, row, migMode, nvmlSource_->deviceLost(d), nowNs);
  migListings_.store(mig_->listings(), std::memory_order_relaxed);
  if (processUtil_) {
    processUtil_->setMigMode(d, migMode);
    processUtil_->apply(d, row);
  } else {
    row.meta(kDevProcessUtilCode) = kCodeNotProbed;
    row.meta(kDevProcessUtilMs) = 0;
  }
}

MigSource::Names Sampler::migNames(size_t device) const {
  std::lock_guard<std::mutex> lock(migMutex_);
  return mig_ ? mig_->names(device) : MigSource::Names{};
}

void Sampler::planSources() {
  meminfo_ = std::make_unique<MeminfoSource>(options_.meminfoPath);
  const MeminfoReading system = meminfo_->read();
  const size_t n = devices_.size();
  nvmlMask_.assign(n, NvmlSource::provides());
  meminfoMask_.assign(n, FieldMask());
  gpmMask_.assign(n, FieldMask());
  dcgmMask_.assign(n, FieldMask());
  fixed_.assign(n, {});
  notes_.assign(n, std::vector<std::string>(kFieldCount));
  anyUnified_ = false;
  static constexpr Field kMemoryFields[] = {Field::MemoryTotalBytes, Field::MemoryUsedBytes, Field::MemoryFreeBytes};
  // On NVLink-C2C unified-memory parts the PCIe figures describe no real link (gen 1 x1) and
  // there is no NVLink: these are reported not_supported with that reason, never as readings.
  static constexpr Field kLinkFields[] = {Field::PcieTxBytesPerSecond, Field::PcieRxBytesPerSecond,
                                          Field::PcieLinkGeneration,   Field::PcieLinkWidth,
                                          Field::PcieReplayErrors,     Field::NvlinkActiveLinks,
                                          Field::NvlinkTxBytesPerSecond, Field::NvlinkRxBytesPerSecond,
                                          Field::MemoryReservedBytes};
  for (size_t d = 0; d < n; ++d) {
    DeviceInfo& info = devices_[d];
    UnifiedMemoryInput in;
    in.name = info.name;
    in.memoryCallSupported = info.memoryTotalBytes >= 0;
    in.memoryTotalBytes = info.memoryTotalBytes;
    in.systemMemTotalBytes = system.ok ? system.totalBytes : 0;
    in.addressingMode = info.addressingMode;
    info.unifiedMemory = detectUnifiedMemory(in, &info.unifiedMemoryReason);
    if (info.unifiedMemory) {
      anyUnified_ = true;
      if (system.ok) info.memoryTotalBytes = system.totalBytes;
      for (Field f : kMemoryFields) {
        nvmlMask_[d].reset(idx(f));
        meminfoMask_[d].set(idx(f));
      }
      for (Field f : kLinkFields) nvmlMask_[d].reset(idx(f));
    }
    // Profiling signals and PCIe/NVLink rates: DCGM first, then GPM where the GPU supports it
    // (both preferred over NVML's counters), never where a unified-memory part has no such links.
    if (dcgm_) {
      dcgmMask_[d] = dcgm_->provides(d);
      if (info.unifiedMemory) {
        for (Field f : kLinkFields) dcgmMask_[d].reset(idx(f));
      }
      nvmlMask_[d] &= ~dcgmMask_[d];
    }
    if (gpm_ && gpm_->supported(d)) {
      gpmMask_[d] = GpmSource::provides() & ~dcgmMask_[d];
      if (info.unifiedMemory) {
        for (Field f : kLinkFields) gpmMask_[d].reset(idx(f));
      }
      nvmlMask_[d] &= ~gpmMask_[d];
    }
    // A GPU that NVML says has no NVLink has no NVLink traffic, whatever the profiling sources
    // answer (DCGM reports 0 on PCIe cards): its rates are NVML's not_supported, not a 0.
    if (nvmlSource_->linkCount(d) == 0) {
      for (Field f : {Field::NvlinkTxBytesPerSecond, Field::NvlinkRxBytesPerSecond}) {
        dcgmMask_[d].reset(idx(f));
        gpmMask_[d].reset(idx(f));
        if (!info.unifiedMemory) nvmlMask_[d].set(idx(f));
      }
    }
    const std::string gpmWhy = gpm_ ? std::string("GPM: ") + (gpm_->code(d) == kCodeSymbolMissing
                                                                    ? "the driver has no GPM"
                                                                    : nvml::returnName(gpm_->code(d)))
                                    : "GPM: " + gpmReport_.reason;
    const std::string dcgmWhy = dcgm_ ? (dcgm_->deviceReason(d).empty() ? std::string("does not give it here") : dcgm_->deviceReason(d))
                                      : dcgmReport_.reason;
    for (Field f : {Field::GrEngineActiveRatio, Field::SmActiveRatio, Field::SmOccupancyRatio, Field::TensorActiveRatio,
                    Field::DramActiveRatio, Field::Fp64ActiveRatio, Field::Fp32ActiveRatio, Field::Fp16ActiveRatio}) {
      notes_[d][idx(f)] = "needs DCGM or a Hopper-or-newer GPU with NVML GPM (DCGM: " + dcgmWhy + "; " + gpmWhy + ")";
    }
    FieldMask covered = nvmlMask_[d] | meminfoMask_[d] | gpmMask_[d] | dcgmMask_[d];
    if (xid_->supported(d)) {
      covered.set(idx(Field::XidErrors));
      covered.set(idx(Field::LastXid));
    } else {
      fixed_[d].emplace_back(Field::XidErrors, xid_->deviceCode(d));
      fixed_[d].emplace_back(Field::LastXid, xid_->deviceCode(d));
      covered.set(idx(Field::XidErrors));
      covered.set(idx(Field::LastXid));
    }
    for (size_t f = 0; f < kFieldCount; ++f) {
      if (covered.test(f)) continue;
      const Field field = static_cast<Field>(f);
      bool linkField = false;
      for (Field lf : kLinkFields) linkField = linkField || lf == field;
      fixed_[d].emplace_back(field, info.unifiedMemory && linkField ? kCodeUnifiedMemory : kCodeNotProbed);
    }
  }
}

void Sampler::applyFixed(size_t device, DeviceRow& row) {
  for (const auto& [field, code] : fixed_[device]) {
    const bool xidField = field == Field::XidErrors || field == Field::LastXid;
    row.fail(field, Status::NotSupported, xidField ? Source::Nvml : Source::None, code);
  }
}

uint64_t Sampler::drainXids(std::vector<XidEvent>& out, size_t max) {
  xidNotified_.store(false, std::memory_order_release);
  std::lock_guard<std::mutex> lock(xidMutex_);
  return xid_ ? xid_->drain(out, max) : 0;
}

void Sampler::sampleMeminfo(DeviceRow& row, const FieldMask& mask, const MeminfoReading& m) {
  if (!m.ok) {
    for (size_t f = 0; f < kFieldCount; ++f) {
      if (mask.test(f)) row.fail(static_cast<Field>(f), Status::Error, Source::Meminfo, kCodeMeminfoError);
    }
    return;
  }
  // MemAvailable, not MemFree: page cache is reclaimable, and the CUDA runtime's own "free" on
  // these parts follows MemFree and collapses after a large file write while memory is available.
  if (mask.test(idx(Field::MemoryTotalBytes))) row.set(Field::MemoryTotalBytes, m.totalBytes, Source::Meminfo);
  if (mask.test(idx(Field::MemoryFreeBytes))) row.set(Field::MemoryFreeBytes, m.availableBytes, Source::Meminfo);
  if (mask.test(idx(Field::MemoryUsedBytes))) {
    row.set(Field::MemoryUsedBytes, m.totalBytes - m.availableBytes, Source::Meminfo);
  }
}

void Sampler::sampleOnce() {
  const int64_t now = monoNowNs();
  MeminfoReading meminfo;
  if (anyUnified_) meminfo = meminfo_->read();
  if (dcgm_) dcgm_->beginSample(now);
  for (size_t d = 0; d < devices_.size(); ++d) {
    DeviceRow row(working_, d);
    applyFixed(d, row);
    nvmlSource_->sample(d, row, nvmlMask_[d], now);
    if (meminfoMask_[d].any()) sampleMeminfo(row, meminfoMask_[d], meminfo);
    if (gpmMask_[d].any()) {
      if (nvmlSource_->deviceLost(d)) {
        gpm_->deviceLost(d);
      } else if (row.meta(kDevState) == static_cast<double>(DeviceState::Error)) {
        // Every NVML call on the device failed (the driver went away): GPM would re-publish its
        // last pair between two samples as if nothing happened. Nothing from this device is a
        // reading now; GPM starts a new pair when it answers again.
        gpm_->deviceLost(d);
        const int32_t code = static_cast<int32_t>(row.meta(kDevLostCode));
        for (size_t f = 0; f < kFieldCount; ++f) {
          if (gpmMask_[d].test(f)) row.fail(static_cast<Field>(f), Status::Error, Source::Gpm, code);
        }
      } else {
        gpm_->sample(d, row, gpmMask_[d]);
      }
    }
    if (dcgmMask_[d].any() && !nvmlSource_->deviceLost(d)) dcgm_->sample(d, row, dcgmMask_[d], now);
    if (xid_->supported(d)) {
      row.set(Field::XidErrors, static_cast<double>(xid_->count(d)), Source::Nvml);
      row.set(Field::LastXid, static_cast<double>(xid_->lastXid(d)), Source::Nvml);
    }
    if (nvmlSource_->deviceLost(d)) {
      // A lost GPU has no valid reading from any source...
      const int32_t code = static_cast<int32_t>(row.meta(kDevLostCode));
      for (size_t f = 0; f < kFieldCount; ++f) row.fail(static_cast<Field>(f), Status::GpuLost, Source::None, code);
      // ...but its XID count comes from the driver's event stream, not from reading the device:
      // the XID 79 that announced the loss is its last word, and must stay visible (the count
      // only grows; an alert on it must be able to fire after the GPU is gone).
      if (xid_->supported(d)) {
        row.set(Field::XidErrors, static_cast<double>(xid_->count(d)), Source::Nvml);
        row.set(Field::LastXid, static_cast<double>(xid_->lastXid(d)), Source::Nvml);
      }
    }
    sampleFleet(d, row, now);
    // Whatever a source answered, a number that is not finite is never published as a reading.
    for (size_t f = 0; f < kFieldCount; ++f) {
      const Field field = static_cast<Field>(f);
      if (row.status(field) == Status::Ok && !std::isfinite(row.value(field))) {
        row.fail(field, Status::Error, Source::None, kCodeNotFinite);
      }
    }
  }
}

void Sampler::publish(int64_t durationNs) {
  {
    std::lock_guard<std::mutex> lock(publishMutex_);
    published_.values = working_.values;  // same sizes: copies in place, no allocation
    published_.codes = working_.codes;
    published_.status = working_.status;
    published_.source = working_.source;
    published_.links = working_.links;
    published_.deviceMeta = working_.deviceMeta;
    forCountedEntries(working_, SnapshotLayout{}, [&](auto member, size_t, size_t first, size_t count) {
      const auto& from = working_.*member;
      std::copy_n(from.begin() + first, count, (published_.*member).begin() + first);
    });
    ++seq_;
    takenAtWallMs_ = wallNowMs();
    takenAtMonoNs_ = monoNowNs();
    sampleDurationNs_ = durationNs;
  }
  samples_.fetch_add(1, std::memory_order_relaxed);
}

void Sampler::readSnapshot(double knownSeq, uint8_t* dest, size_t destLength, SnapshotHeader& header) {
  const CallTracker::InFlight inflight = tracker_.current();
  const int64_t now = monoNowNs();
  header.running = running_.load() ? 1 : 0;
  header.inFlightMs = inflight.sinceNs != 0 ? static_cast<double>(now - inflight.sinceNs) / 1e6 : 0;
  header.inFlightDevice = inflight.sinceNs != 0 ? inflight.device : -1;
  header.inFlightCall = inflight.sinceNs != 0 ? inflight.name : "";

  std::lock_guard<std::mutex> lock(publishMutex_);
  header.seq = static_cast<double>(seq_);
  header.takenAtEpochMs = static_cast<double>(takenAtWallMs_);
  header.ageMs = seq_ == 0 ? 0 : static_cast<double>(now - takenAtMonoNs_) / 1e6;
  header.sampleDurationMs = static_cast<double>(sampleDurationNs_) / 1e6;
  if (seq_ == 0 || static_cast<double>(seq_) == knownSeq) return;
  const SnapshotLayout layout = SnapshotLayout::forDevices(published_.devices);
  if (dest == nullptr || destLength < layout.byteLength) return;
  auto copy = [&](size_t offset, const auto& vec) {
    std::memcpy(dest + offset, vec.data(), vec.size() * sizeof(vec[0]));
  };
  copy(layout.valuesOffset, published_.values);
  copy(layout.linksOffset, published_.links);
  copy(layout.deviceMetaOffset, published_.deviceMeta);
  copy(layout.codesOffset, published_.codes);
  copy(layout.statusOffset, published_.status);
  copy(layout.sourceOffset, published_.source);
  // Half the cost of the first snapshot() after a sample was copying the empty process and MIG
  // entries, memory the sampler thread had just written (bench/ANALYSIS.md).
  forCountedEntries(published_, layout, [&](auto member, size_t offset, size_t first, size_t count) {
    const auto& from = published_.*member;
    std::memcpy(dest + offset + first * sizeof(from[0]), from.data() + first, count * sizeof(from[0]));
  });
}

SamplerStats Sampler::stats() const {
  SamplerStats s;
  s.samples = samples_.load(std::memory_order_relaxed);
  s.vendorCalls = tracker_.calls();
  s.threadCpuNs = threadCpuNs_.load(std::memory_order_relaxed);
  s.lastSampleNs = lastSampleNs_.load(std::memory_order_relaxed);
  s.migListings = migListings_.load(std::memory_order_relaxed);
  return s;
}

void Sampler::closeBackend() {
  // The event thread may be inside nvmlEventSetWait for up to its timeout: it is told to stop and
  // not waited for. It holds its own share of the NVML session, so NVML is shut down (and a
  // private simulator copy released) by whichever of us lets go last, never under its wait.
  if (xid_) xid_->requestStop();
  if (processUtil_) processUtil_->requestStop();  // like the XID thread: not waited for
  processUtil_.reset();
  {
    std::lock_guard<std::mutex> lock(migMutex_);
    mig_.reset();  // frees its GPM buffers while NVML is still up
  }
  gpm_.reset();  // frees its sample buffers while NVML is still up
  dcgm_.reset();  // may use the NVML library's handle (the simulator): before it closes
  nvmlSource_.reset();
  session_->privateCopy = options_.privateLibraryCopy;
  {
    std::lock_guard<std::mutex> lock(xidMutex_);
    xid_.reset();
  }
  session_.reset();
}

void Sampler::run(std::shared_ptr<Sampler> self) {
  if (!openBackend()) {
    closeBackend();
    running_.store(false);
    sink_(SamplerEvent::OpenFailed);
  } else {
    // The first sample is taken before reporting Opened, so snapshot() has data right away.
    int64_t cpu0 = threadCpuNowNs();
    int64_t t0 = monoNowNs();
    sampleOnce();
    publish(monoNowNs() - t0);
    threadCpuNs_.fetch_add(threadCpuNowNs() - cpu0, std::memory_order_relaxed);
    sink_(SamplerEvent::Opened);

    int64_t next = t0 + options_.intervalNs;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(stopMutex_);
        const auto deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next));
        stopCv_.wait_until(lock, deadline, [&] { return stopRequested_; });
        if (stopRequested_) break;
      }
      cpu0 = threadCpuNowNs();
      t0 = monoNowNs();
      sampleOnce();
      const int64_t t1 = monoNowNs();
      publish(t1 - t0);
      threadCpuNs_.fetch_add(threadCpuNowNs() - cpu0, std::memory_order_relaxed);
      lastSampleNs_.store(t1 - t0, std::memory_order_relaxed);
      // Fixed rate; after a slow sample (a hung call), start again from now instead of bursting.
      next += options_.intervalNs;
      if (next <= t1) next = t1 + options_.intervalNs;
      if (subscribed_.load(std::memory_order_relaxed) && !notifyPending_.exchange(true, std::memory_order_acq_rel)) {
        sink_(SamplerEvent::SampleReady);
      }
    }
    closeBackend();
    running_.store(false);
  }
  sink_(SamplerEvent::Closed);
  {
    std::lock_guard<std::mutex> lock(finishedMutex_);
    finished_ = true;
  }
  finishedCv_.notify_all();
  // `self` goes out of scope here; if it was the last reference the Sampler is destroyed on this
  // thread, and the destructor detaches its own std::thread handle.
  self.reset();
}

}  // namespace gt
