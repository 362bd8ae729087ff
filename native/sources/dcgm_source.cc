#include "dcgm_source.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "hostengine_probe.h"

namespace gt {

namespace {

struct DcgmField {
  Field field;
  unsigned short id;
};

// DCGM reports the activities as ratios (0-1) and the link figures as bytes per second: already
// our base units.
constexpr DcgmField kDcgmFields[] = {
    {Field::GrEngineActiveRatio, dcgm::kFieldProfGrEngineActive},
    {Field::SmActiveRatio, dcgm::kFieldProfSmActive},
    {Field::SmOccupancyRatio, dcgm::kFieldProfSmOccupancy},
    {Field::TensorActiveRatio, dcgm::kFieldProfTensorActive},
    {Field::DramActiveRatio, dcgm::kFieldProfDramActive},
    {Field::Fp64ActiveRatio, dcgm::kFieldProfFp64Active},
    {Field::Fp32ActiveRatio, dcgm::kFieldProfFp32Active},
    {Field::Fp16ActiveRatio, dcgm::kFieldProfFp16Active},
    {Field::PcieTxBytesPerSecond, dcgm::kFieldProfPcieTxBytes},
    {Field::PcieRxBytesPerSecond, dcgm::kFieldProfPcieRxBytes},
    {Field::NvlinkTxBytesPerSecond, dcgm::kFieldProfNvlinkTxBytes},
    {Field::NvlinkRxBytesPerSecond, dcgm::kFieldProfNvlinkRxBytes},
};
constexpr size_t kDcgmFieldCount = sizeof(kDcgmFields) / sizeof(kDcgmFields[0]);

int64_t wallNowUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

// What a DCGM value means. A value at or above the type's BLANK sentinel is never a reading.
struct Reading {
  Status status = Status::Ok;
  int32_t code = 0;
  double value = 0;
};

Reading interpret(const dcgm::FieldValueV1& v) {
  Reading out;
  if (v.status != dcgm::kOk) {
    out.code = v.status;
    switch (v.status) {
      case dcgm::kNoData:
      case dcgm::kNotWatched: out.status = Status::Pending; break;
      case dcgm::kNotSupported:
      case dcgm::kProfilingNotSupported: out.status = Status::NotSupported; break;
      case dcgm::kNoPermission:
      case dcgm::kRequiresRoot: out.status = Status::NoPermission; break;
      case dcgm::kGpuIsLost: out.status = Status::GpuLost; break;
      case dcgm::kStaleData: out.status = Status::Stale; break;
      default: out.status = Status::Error; break;
    }
    return out;
  }
  // Sentinels: BLANK (no update cycle yet) → pending; NOT_FOUND / NOT_SUPPORTED → not supported;
  // NOT_PERMISSIONED → no permission. Codes kCodeDcgmBlank + offset say which.
  int offset = -1;
  if (v.fieldType == dcgm::kTypeInt64) {
    if (v.value.i64 >= dcgm::kInt64Blank) offset = static_cast<int>(std::min<int64_t>(v.value.i64 - dcgm::kInt64Blank, 4));
    else out.value = static_cast<double>(v.value.i64);
  } else if (v.fieldType == dcgm::kTypeDouble) {
    if (v.value.dbl >= dcgm::kFp64Blank) offset = static_cast<int>(std::min(v.value.dbl - dcgm::kFp64Blank, 4.0));
    else out.value = v.value.dbl;
  } else {
    out.status = Status::Error;
    out.code = kCodeDcgmWrongType;
    return out;
  }
  if (offset >= 0) {
    out.code = kCodeDcgmBlank + offset;
    out.status = offset == 0 ? Status::Pending
                 : offset == 3 ? Status::NoPermission
                 : offset == 4 ? Status::Pending  // above the known sentinels: still not a reading
                               : Status::NotSupported;
  }
  return out;
}

}  // namespace

DcgmSource::DcgmSource(CallTracker& tracker, DcgmOptions options) : tracker_(tracker), options_(std::move(options)) {}

DcgmSource::~DcgmSource() { tearDown(); }

FieldMask DcgmSource::allFields() {
  FieldMask m;
  for (const DcgmField& f : kDcgmFields) m.set(idx(f.field));
  return m;
}

FieldMask DcgmSource::provides(size_t d) const { return d < devices_.size() ? devices_[d].fields : FieldMask(); }

std::string DcgmSource::describeMode() const {
  std::string notes = address_.unixSocket && hostEngine_ ? "unix socket" : "";
  if (!modeNote_.empty()) notes += (notes.empty() ? "" : ", ") + modeNote_;
  if (!notes.empty()) notes = " (" + notes + ")";
  return (hostEngine_ ? "nv-hostengine at " + address_.address : std::string("embedded host engine")) + notes;
}

bool DcgmSource::fail(const std::string& what, dcgm::Return r) {
  vendorCode_ = r;
  reason_ = what + " failed with " + dcgm::returnName(r) + " (" + std::to_string(r) + ", \"" + api_.describe(r) + "\")";
  return false;
}

bool DcgmSource::load() {
  if (options_.sharedLibrary != nullptr) {
    library_ = options_.sharedLibrary;
  } else {
    if (options_.candidates.empty()) {
      reason_ = options_.absentReason.empty() ? "no DCGM library to try" : options_.absentReason;
      return false;
    }
    if (!ownLibrary_.open(options_.candidates)) {
      reason_ = "DCGM is not installed (" + ownLibrary_.error() + ")";
      return false;
    }
    library_ = &ownLibrary_;
  }
  libraryPath_ = library_->path();
  std::string missing;
  if (!api_.resolve(*library_, &missing)) {
    reason_ = libraryPath_ + " does not export " + missing + ": not a usable DCGM";
    return false;
  }
  return true;
}

int DcgmSource::listening(const HostEngineAddress& a) const {
  if (options_.listening != nullptr) return options_.listening(a.address.c_str(), a.unixSocket ? 1 : 0);
  return static_cast<int>(probeListener(a.address, a.unixSocket, kListenCheckTimeoutMs));
}

// Once, at the first connect: which host engine. Called with DCGM initialised.
bool DcgmSource::chooseEngine() {
  engineChosen_ = true;
  if (options_.engine == DcgmEngine::Embedded) {
    hostEngine_ = false;
    modeNote_ = "dcgm.mode 'embedded'";
    return true;
  }
  if (!options_.host.empty()) {
    // A given host keeps meaning that host engine: never an embedded one instead.
    hostEngine_ = true;
    address_ = {options_.host, options_.hostIsUnixSocket};
    return true;
  }
  const bool autoMode = options_.engine == DcgmEngine::Auto;
  std::string looked;
  for (const HostEngineAddress& a : options_.localHostEngines) looked += (looked.empty() ? "" : " or ") + a.address;
  for (const HostEngineAddress& a : options_.localHostEngines) {
    const int heard = listening(a);
    if (heard == 0) continue;  // nothing there: no need to wait for DCGM's connect timeout
    dcgm::ConnectParamsV2 params{};
    params.version = dcgm::kConnectParamsVersion2;
    params.persistAfterDisconnect = 0;
    params.timeoutMs = autoMode ? std::min(options_.connectTimeoutMs, kAutoConnectTimeoutMs) : options_.connectTimeoutMs;
    params.addressIsUnixSocket = a.unixSocket ? 1 : 0;
    dcgm::Return r;
    {
      TrackedCall tracked(tracker_, "dcgmConnect_v2", -1);
      r = api_.connectV2(a.address.c_str(), &params, &handle_);
    }
    if (r == dcgm::kOk) {
      // Found it: keep the connection (connect() uses it).
      hostEngine_ = true;
      address_ = a;
      modeNote_ = "found running";
      connected_ = true;
      return true;
    }
    if (heard == 1 && autoMode) {
      // Something listens where nv-hostengine does, but DCGM could not connect: most likely a
      // host engine that is busy. Starting an embedded engine beside it is what must not happen.
      fail("dcgmConnect_v2 to " + a.address + " (something listens there: an nv-hostengine?)", r);
      reason_ += "; not starting an embedded host engine beside it (dcgm: { mode: 'embedded' } forces one)";
      return false;
    }
  }
  if (!autoMode) {
    vendorCode_ = dcgm::kConnectionNotValid;
    reason_ = "no nv-hostengine answers at " + looked + " (dcgm.mode 'hostengine' never starts an embedded one)";
    return false;
  }
  hostEngine_ = false;
  modeNote_ = "no nv-hostengine running at " + looked;
  return true;
}

bool DcgmSource::connect() {
  dcgm::Return r;
  {
    TrackedCall tracked(tracker_, "dcgmInit", -1);
    r = api_.init();
  }
  if (r != dcgm::kOk) return fail("dcgmInit", r);
  initialized_ = true;
  if (!engineChosen_) {
    if (!chooseEngine()) return false;
    if (connected_) return true;  // connected to the nv-hostengine it found
  }
  if (!hostEngine_) {
    TrackedCall tracked(tracker_, "dcgmStartEmbedded", -1);
    r = api_.startEmbedded(dcgm::kOperationModeAuto, &handle_);
    if (r != dcgm::kOk) return fail("dcgmStartEmbedded", r);
  } else {
    dcgm::ConnectParamsV2 params{};
    params.version = dcgm::kConnectParamsVersion2;
    params.persistAfterDisconnect = 0;  // the host engine drops our watches when we go
    params.timeoutMs = options_.connectTimeoutMs;
    params.addressIsUnixSocket = address_.unixSocket ? 1 : 0;
    TrackedCall tracked(tracker_, "dcgmConnect_v2", -1);
    r = api_.connectV2(address_.address.c_str(), &params, &handle_);
    if (r != dcgm::kOk) return fail("dcgmConnect_v2 to " + address_.address, r);
  }
  connected_ = true;
  return true;
}

bool DcgmSource::watchDevice(Device& dev) {
  dcgm::Return r;
  {
    TrackedCall tracked(tracker_, "dcgmGroupCreate", -1);
    const std::string name = "gpu-telemetry-" + std::to_string(dev.gpuId);
    r = api_.groupCreate(handle_, dcgm::kGroupEmpty, name.c_str(), &dev.group);
  }
  if (r != dcgm::kOk) {
    dev.reason = std::string("dcgmGroupCreate: ") + dcgm::returnName(r);
    return false;
  }
  dev.groupCreated = true;
  {
    TrackedCall tracked(tracker_, "dcgmGroupAddDevice", -1);
    r = api_.groupAddDevice(handle_, dev.group, static_cast<unsigned int>(dev.gpuId));
  }
  if (r == dcgm::kOk) {
    // Keep a few samples, a minute at most: we only ever read the latest.
    TrackedCall tracked(tracker_, "dcgmWatchFields", -1);
    r = api_.watchFields(handle_, dev.group, fieldGroup_, options_.updateIntervalUs, 60.0, 4);
  }
  if (r != dcgm::kOk) {
    dev.code = r;
    if (r == dcgm::kProfilingNotSupported) {
      dev.reason = "DCGM cannot watch this GPU's profiling fields (DCGM_ST_PROFILING_NOT_SUPPORTED)";
    } else if (dcgm::isProfilingLock(r)) {
      dev.reason = std::string("the GPU's profiling counters are held by another DCGM host engine or a profiler (dcgmWatchFields: ") +
                   dcgm::returnName(r) + ")" +
                   (hostEngine_ ? ""
                                : "; if an nv-hostengine runs on this machine, use it: dcgm: { host: '<its address>' } (or "
                                  "--dcgm-host)");
    } else {
      dev.reason = std::string("dcgmWatchFields: ") + dcgm::returnName(r);
    }
    return false;
  }
  dev.watched = true;
  return true;
}

bool DcgmSource::setUp(const std::vector<std::string>& nvmlUuids) {
  if (!connect()) return false;
  unsigned int ids[dcgm::kMaxNumDevices] = {};
  int count = 0;
  dcgm::Return r;
  {
    TrackedCall tracked(tracker_, "dcgmGetAllSupportedDevices", -1);
    r = api_.getAllSupportedDevices(handle_, ids, &count);
  }
  if (r != dcgm::kOk) return fail("dcgmGetAllSupportedDevices", r);
  if (count < 0) count = 0;
  if (count > static_cast<int>(dcgm::kMaxNumDevices)) count = dcgm::kMaxNumDevices;

  // The UUID field, watched on a group of every GPU DCGM supports, maps its ids to NVML's.
  dcgm::GroupId all = 0;
  dcgm::FieldGroupId uuidGroup = 0;
  unsigned short uuidField = dcgm::kFieldUuid;
  std::vector<std::string> dcgmUuids(static_cast<size_t>(count));
  {
    TrackedCall tracked(tracker_, "dcgmGroupCreate", -1);
    r = api_.groupCreate(handle_, dcgm::kGroupEmpty, "gpu-telemetry-uuids", &all);
  }
  if (r != dcgm::kOk) return fail("dcgmGroupCreate", r);
  for (int i = 0; i < count && r == dcgm::kOk; ++i) r = api_.groupAddDevice(handle_, all, ids[i]);
  if (r == dcgm::kOk) r = api_.fieldGroupCreate(handle_, 1, &uuidField, "gpu-telemetry-uuid", &uuidGroup);
  bool uuidGroupCreated = r == dcgm::kOk;
  if (r == dcgm::kOk) r = api_.watchFields(handle_, all, uuidGroup, options_.updateIntervalUs, 60.0, 1);
  if (r == dcgm::kOk) {
    TrackedCall tracked(tracker_, "dcgmUpdateAllFields", -1);
    r = api_.updateAllFields(handle_, 1);
  }
  values_.resize(kDcgmFieldCount);
  for (int i = 0; i < count && r == dcgm::kOk; ++i) {
    TrackedCall tracked(tracker_, "dcgmGetLatestValuesForFields", -1);
    std::memset(&values_[0], 0, sizeof(dcgm::FieldValueV1));
    if (api_.getLatestValuesForFields(handle_, static_cast<int>(ids[i]), &uuidField, 1, values_.data()) == dcgm::kOk &&
        values_[0].status == dcgm::kOk && values_[0].fieldType == dcgm::kTypeString) {
      values_[0].value.str[dcgm::kMaxStrLength - 1] = '\0';
      dcgmUuids[static_cast<size_t>(i)] = values_[0].value.str;
    }
  }
  const dcgm::Return uuidResult = r;
  if (uuidGroupCreated) {
    api_.unwatchFields(handle_, all, uuidGroup);
    api_.fieldGroupDestroy(handle_, uuidGroup);
  }
  api_.groupDestroy(handle_, all);
  if (uuidResult != dcgm::kOk) return fail("reading GPU UUIDs from DCGM", uuidResult);

  unsigned short fieldIds[kDcgmFieldCount];
  for (size_t f = 0; f < kDcgmFieldCount; ++f) fieldIds[f] = kDcgmFields[f].id;
  {
    TrackedCall tracked(tracker_, "dcgmFieldGroupCreate", -1);
    r = api_.fieldGroupCreate(handle_, static_cast<int>(kDcgmFieldCount), fieldIds, "gpu-telemetry-profiling", &fieldGroup_);
  }
  if (r != dcgm::kOk) return fail("dcgmFieldGroupCreate", r);
  fieldGroupCreated_ = true;

  devices_.assign(nvmlUuids.size(), Device());
  bool any = false;
  std::string firstReason;
  int firstCode = 0;
  for (size_t d = 0; d < nvmlUuids.size(); ++d) {
    Device& dev = devices_[d];
    for (int i = 0; i < count; ++i) {
      if (!dcgmUuids[static_cast<size_t>(i)].empty() && dcgmUuids[static_cast<size_t>(i)] == nvmlUuids[d]) dev.gpuId = static_cast<int>(ids[i]);
    }
    if (dev.gpuId < 0) {
      dev.reason = "DCGM does not list this GPU (UUID " + nvmlUuids[d] + ")";
    } else if (watchDevice(dev)) {
      dev.fields = allFields();
      any = true;
    }
    if (!dev.fields.any() && firstReason.empty()) {
      firstReason = dev.reason;
      firstCode = dev.code;
    }
  }
  if (!any) {
    reason_ = nvmlUuids.empty() ? "no GPUs" : "DCGM watches no GPU: " + firstReason;
    vendorCode_ = firstCode != 0 ? firstCode : dcgm::kProfilingNotSupported;
    return false;
  }
  // One forced update so the probe below sees real answers; fields DCGM says it cannot give
  // on a GPU (NOT_SUPPORTED sentinel) are left to the next source in the chain.
  {
    TrackedCall tracked(tracker_, "dcgmUpdateAllFields", -1);
    api_.updateAllFields(handle_, 1);
  }
  for (Device& dev : devices_) {
    if (!dev.watched) continue;
    TrackedCall tracked(tracker_, "dcgmGetLatestValuesForFields", -1);
    if (api_.getLatestValuesForFields(handle_, dev.gpuId, fieldIds, kDcgmFieldCount, values_.data()) != dcgm::kOk) continue;
    for (size_t f = 0; f < kDcgmFieldCount; ++f) {
      const Reading reading = interpret(values_[f]);
      if (reading.status == Status::NotSupported) dev.fields.reset(idx(kDcgmFields[f].field));
    }
  }
  return true;
}

bool DcgmSource::open(const std::vector<std::string>& nvmlUuids) {
  uuids_ = nvmlUuids;
  if (!load()) return false;
  if (!setUp(nvmlUuids)) {
    tearDown();
    return false;
  }
  return true;
}

void DcgmSource::tearDown() {
  if (connected_) {
    for (Device& dev : devices_) {
      if (dev.watched) api_.unwatchFields(handle_, dev.group, fieldGroup_);
      if (dev.groupCreated) api_.groupDestroy(handle_, dev.group);
      dev.watched = dev.groupCreated = false;
    }
    if (fieldGroupCreated_) api_.fieldGroupDestroy(handle_, fieldGroup_);
    fieldGroupCreated_ = false;
    if (hostEngine_) api_.disconnect(handle_);
    else api_.stopEmbedded(handle_);
    connected_ = false;
  }
  if (initialized_) {
    api_.shutdown();
    initialized_ = false;
  }
}

void DcgmSource::tryReconnect(int64_t nowNs) {
  if (nowNs - lastReconnectNs_ < options_.reconnectNs) return;
  lastReconnectNs_ = nowNs;
  // Keep which fields each device had: a reconnect must not change the source plan.
  std::vector<FieldMask> planned;
  for (const Device& dev : devices_) planned.push_back(dev.fields);
  tearDown();
  if (setUp(uuids_)) {
    broken_ = false;
    for (size_t d = 0; d < devices_.size() && d < planned.size(); ++d) devices_[d].fields = planned[d];
  } else {
    devices_.resize(planned.size());
    for (size_t d = 0; d < devices_.size(); ++d) devices_[d].fields = planned[d];
  }
}

void DcgmSource::beginSample(int64_t nowNs) {
  if (broken_) tryReconnect(nowNs);
}

void DcgmSource::sample(size_t d, DeviceRow& row, const FieldMask& want, int64_t nowNs) {
  auto failWanted = [&](Status st, int32_t code) {
    for (const DcgmField& f : kDcgmFields) {
      if (want.test(idx(f.field))) row.fail(f.field, st, Source::Dcgm, code);
    }
  };
  (void)nowNs;
  Device& dev = devices_[d];
  if (broken_ || !connected_ || !dev.watched) {
    failWanted(Status::Error, dcgm::kConnectionNotValid);
    return;
  }
  unsigned short ids[kDcgmFieldCount];
  size_t slot[kDcgmFieldCount];
  unsigned int n = 0;
  for (size_t f = 0; f < kDcgmFieldCount; ++f) {
    if (!want.test(idx(kDcgmFields[f].field))) continue;
    slot[f] = n;
    ids[n++] = kDcgmFields[f].id;
  }
  if (n == 0) return;
  dcgm::Return r;
  {
    TrackedCall tracked(tracker_, "dcgmGetLatestValuesForFields", static_cast<int>(d));
    r = api_.getLatestValuesForFields(handle_, dev.gpuId, ids, n, values_.data());
  }
  if (r != dcgm::kOk) {
    if (r == dcgm::kConnectionNotValid && hostEngine_) {
      broken_ = true;
      lastReconnectNs_ = nowNs;
    }
    failWanted(r == dcgm::kGpuIsLost ? Status::GpuLost : Status::Error, r);
    return;
  }
  // A value DCGM has not refreshed for several update cycles is stale, not current.
  const int64_t staleAfterUs = std::max<int64_t>(5 * options_.updateIntervalUs, 5'000'000);
  const int64_t nowUs = wallNowUs();
  for (size_t f = 0; f < kDcgmFieldCount; ++f) {
    const DcgmField& df = kDcgmFields[f];
    if (!want.test(idx(df.field))) continue;
    const dcgm::FieldValueV1& v = values_[slot[f]];
    const Reading reading = interpret(v);
    if (reading.status != Status::Ok) {
      row.fail(df.field, reading.status, Source::Dcgm, reading.code);
    } else if (v.ts > 0 && nowUs - v.ts > staleAfterUs) {
      row.fail(df.field, Status::Stale, Source::Dcgm, kCodeDcgmOld);
    } else {
      row.set(df.field, reading.value, Source::Dcgm);
    }
  }
}

}  // namespace gt
