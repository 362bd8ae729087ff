#include "nvml_source.h"

#include <algorithm>
#include <cstring>

namespace gt {

namespace {

constexpr double kMHz = 1e6;
constexpr double kMilli = 1e-3;
constexpr double kPercent = 1e-2;
constexpr double kKiB = 1024.0;
constexpr size_t kProcessBufferMax = 4096;  // hard cap on the per-call process list we accept

std::string fixedString(const char* buf, size_t cap) { return std::string(buf, strnlen(buf, cap)); }

}  // namespace

bool fieldValueNumber(const nvml::FieldValue& fv, double* value, int32_t* code) {
  switch (fv.valueType) {
    case nvml::kValueDouble: *value = fv.value.dVal; return true;
    case nvml::kValueUnsignedInt: *value = static_cast<double>(fv.value.uiVal); return true;
    case nvml::kValueUnsignedLong: *value = static_cast<double>(fv.value.ulVal); return true;
    case nvml::kValueUnsignedLongLong: *value = static_cast<double>(fv.value.ullVal); return true;
    case nvml::kValueSignedLongLong: *value = static_cast<double>(fv.value.sllVal); return true;
    case nvml::kValueSignedInt: *value = static_cast<double>(fv.value.siVal); return true;
    case nvml::kValueUnsignedShort: *value = static_cast<double>(fv.value.usVal); return true;
    default:
      *code = unknownValueTypeCode(fv.valueType);
      return false;
  }
}

bool fieldValueCounter(const nvml::FieldValue& fv, uint64_t* raw, unsigned* bits) {
  switch (fv.valueType) {
    case nvml::kValueUnsignedShort: *raw = fv.value.usVal; *bits = 16; return true;
    case nvml::kValueUnsignedInt: *raw = fv.value.uiVal; *bits = 32; return true;
    case nvml::kValueSignedInt: *raw = static_cast<uint32_t>(fv.value.siVal); *bits = 32; return true;
    case nvml::kValueUnsignedLong:
      *raw = fv.value.ulVal;
      *bits = sizeof(unsigned long) * 8;
      return true;
    case nvml::kValueUnsignedLongLong: *raw = fv.value.ullVal; *bits = 64; return true;
    case nvml::kValueSignedLongLong: *raw = static_cast<uint64_t>(fv.value.sllVal); *bits = 64; return true;
    default: return false;
  }
}

bool CounterRate::update(uint64_t raw, unsigned bits, int64_t atNs, double* rate) {
  const bool had = has_ && bits == bits_;
  const uint64_t prev = last_;
  const int64_t prevAt = atNs_;
  has_ = true;
  last_ = raw;
  bits_ = static_cast<uint8_t>(bits);
  atNs_ = atNs;
  if (!had || atNs <= prevAt) return false;
  // Modulo the counter's width: a wrap between the two readings is still the bytes moved.
  const uint64_t mask = bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  const uint64_t delta = (raw - prev) & mask;
  const double perSecond = static_cast<double>(delta) / (static_cast<double>(atNs - prevAt) * 1e-9);
  if (perSecond > maxPerSecond_) return false;  // not traffic: the counter was reset
  *rate = perSecond;
  return true;
}

Status statusForNvml(nvml::Return code) {
  switch (code) {
    case nvml::kSuccess: return Status::Ok;
    case nvml::kErrorNotSupported:
    case nvml::kErrorFunctionNotFound:
    case kCodeSymbolMissing: return Status::NotSupported;
    case nvml::kErrorNoPermission: return Status::NoPermission;
    case nvml::kErrorGpuIsLost: return Status::GpuLost;
    default: return Status::Error;
  }
}

NvmlSource::NvmlSource(const nvml::Api& api, CallTracker& tracker, Options options)
    : api_(api), tracker_(tracker), options_(options) {}

FieldMask NvmlSource::provides() {
  FieldMask m;
  m.set();
  // Profiling signals come from DCGM or GPM; XID counts from the event thread.
  for (Field f : {Field::XidErrors, Field::LastXid, Field::GrEngineActiveRatio, Field::SmActiveRatio,
                  Field::SmOccupancyRatio, Field::TensorActiveRatio, Field::DramActiveRatio, Field::Fp64ActiveRatio,
                  Field::Fp32ActiveRatio, Field::Fp16ActiveRatio}) {
    m.reset(idx(f));
  }
  return m;
}

template <typename Fn>
nvml::Return NvmlSource::invoke(Device& d, CallId id, const char* symbol, bool present, Fn&& fn) {
  if (!present) return kCodeSymbolMissing;
  if (d.unsupported.test(id)) return nvml::kErrorNotSupported;
  // Once a call said the GPU is lost, the others would only wait on it too: answer for them.
  if (d.lostThisSample) return nvml::kErrorGpuIsLost;
  nvml::Return r;
  {
    TrackedCall tracked(tracker_, symbol, d.index);
    r = fn();
  }
  if (r == nvml::kErrorNotSupported) d.unsupported.set(id);
  if (r == nvml::kErrorGpuIsLost) {
    d.lostThisSample = true;
    d.lostCode = r;
  }
  return r;
}

void NvmlSource::put(DeviceRow& row, Field f, nvml::Return code, double value) {
  if (code == nvml::kSuccess) {
    row.set(f, value, Source::Nvml);
  } else {
    row.fail(f, statusForNvml(code), Source::Nvml, code);
  }
}

void NvmlSource::putFieldValue(DeviceRow& row, Field f, const nvml::FieldValue& fv) {
  if (fv.nvmlReturn != nvml::kSuccess) {
    row.fail(f, statusForNvml(fv.nvmlReturn), Source::Nvml, fv.nvmlReturn);
    return;
  }
  double value = kNaN;
  int32_t code = 0;
  if (!fieldValueNumber(fv, &value, &code)) {
    row.fail(f, Status::Error, Source::Nvml, code);
    return;
  }
  row.set(f, value, Source::Nvml);
}

void NvmlSource::resetCounters(Device& d) {
  d.pcieTx.reset();
  d.pcieRx.reset();
  for (auto& link : d.nvlink) link.tx.reset(), link.rx.reset();
}

// MIG mode can be switched at run time (nvidia-smi -mig 1 and a GPU reset): read it every sample
// (a cheap query), and forget cached NOT_SUPPORTED answers when it changes, since they depend on it.
void NvmlSource::sampleMigMode(Device& d, DeviceRow& row) {
  int mode = -1;
  if (api_.deviceGetMigMode != nullptr && !d.unsupported.test(kCallMigMode)) {
    unsigned int current = 0, pending = 0;
    nvml::Return r;
    {
      TrackedCall tracked(tracker_, "nvmlDeviceGetMigMode", d.index);
      r = api_.deviceGetMigMode(d.handle, &current, &pending);
    }
    if (r == nvml::kSuccess) mode = current == nvml::kMigEnable ? 1 : 0;
    else if (r == nvml::kErrorNotSupported) d.unsupported.set(kCallMigMode);  // no MIG on this GPU
    else if (r == nvml::kErrorGpuIsLost) d.lostThisSample = true, d.lostCode = r;
  }
  if (mode != d.migMode && d.migMode != -1 && mode != -1) {
    const bool migSupported = !d.unsupported.test(kCallMigMode);
    d.unsupported.reset();
    if (!migSupported) d.unsupported.set(kCallMigMode);
  }
  if (mode != -1) d.migMode = mode;
  row.meta(kDevMigMode) = d.migMode;
}

nvml::Return NvmlSource::discover(std::vector<DeviceInfo>& infos, SystemInfo& system,
                                  std::string& failedCall) {
  char buf[nvml::kVersionBufferSize] = {};
  if (api_.systemGetDriverVersion && api_.systemGetDriverVersion(buf, sizeof buf) == nvml::kSuccess) {
    system.driverVersion = fixedString(buf, sizeof buf);
  }
  std::memset(buf, 0, sizeof buf);
  if (api_.systemGetNvmlVersion && api_.systemGetNvmlVersion(buf, sizeof buf) == nvml::kSuccess) {
    system.nvmlVersion = fixedString(buf, sizeof buf);
  }
  int cuda = -1;
  if (api_.systemGetCudaDriverVersion && api_.systemGetCudaDriverVersion(&cuda) == nvml::kSuccess) {
    system.cudaDriverVersion = cuda;
  }

  unsigned int count = 0;
  if (api_.deviceGetCount == nullptr) {
    failedCall = "nvmlDeviceGetCount_v2";
    return kCodeSymbolMissing;
  }
  nvml::Return r = api_.deviceGetCount(&count);
  if (r != nvml::kSuccess) {
    failedCall = api_.deviceGetCountSymbol;
    return r;
  }

  devices_.assign(count, Device{});
  infos.assign(count, DeviceInfo{});
  for (unsigned int i = 0; i < count; ++i) {
    Device& d = devices_[i];
    DeviceInfo& info = infos[i];
    d.index = static_cast<int>(i);
    info.index = i;
    r = api_.deviceGetHandleByIndex ? api_.deviceGetHandleByIndex(i, &d.handle) : kCodeSymbolMissing;
    if (r != nvml::kSuccess) {
      // Keep the index: a device that cannot be opened is reported, not renumbered away.
      d.handle = nullptr;
      d.lost = true;
      d.lostCode = r;
      info.name = "unavailable";
      continue;
    }
    char name[nvml::kNameBufferSize] = {};
    if (api_.deviceGetName && api_.deviceGetName(d.handle, name, sizeof name) == nvml::kSuccess) {
      info.name = fixedString(name, sizeof name);
    }
    char uuid[nvml::kUuidBufferSize] = {};
    if (api_.deviceGetUuid && api_.deviceGetUuid(d.handle, uuid, sizeof uuid) == nvml::kSuccess) {
      info.uuid = fixedString(uuid, sizeof uuid);
    }
    nvml::PciInfo pci{};
    if (api_.deviceGetPciInfo && api_.deviceGetPciInfo(d.handle, &pci) == nvml::kSuccess) {
      info.pciBusId = fixedString(pci.busId, sizeof pci.busId);
      info.pciDeviceId = pci.pciDeviceId;
    }
    int major = -1, minor = -1;
    if (api_.deviceGetCudaComputeCapability &&
        api_.deviceGetCudaComputeCapability(d.handle, &major, &minor) == nvml::kSuccess) {
      info.computeCapabilityMajor = major;
      info.computeCapabilityMinor = minor;
    }
    nvml::MemoryV2 m2{};
    m2.version = nvml::kMemoryV2Version;
    nvml::Memory m1{};
    if (api_.deviceGetMemoryInfoV2 && api_.deviceGetMemoryInfoV2(d.handle, &m2) == nvml::kSuccess) {
      info.memoryTotalBytes = static_cast<double>(m2.total);
    } else if (api_.deviceGetMemoryInfo && api_.deviceGetMemoryInfo(d.handle, &m1) == nvml::kSuccess) {
      info.memoryTotalBytes = static_cast<double>(m1.total);
    }
    if (api_.deviceGetAddressingMode) {
      nvml::AddressingMode mode{};
      mode.version = nvml::kAddressingModeVersion;
      if (api_.deviceGetAddressingMode(d.handle, &mode) == nvml::kSuccess) info.addressingMode = static_cast<int>(mode.value);
    }
    if (api_.deviceGetNvLinkState) {
      std::vector<int> states;
      for (unsigned int l = 0; l < kMaxLinks; ++l) {
        int state = 0;
        if (api_.deviceGetNvLinkState(d.handle, l, &state) == nvml::kSuccess) d.links.push_back(l), states.push_back(state);
      }
      d.nvlinkStateField = stateFieldAgrees(d, states);
    }
    info.nvlinkCount = static_cast<unsigned int>(d.links.size());
  }
  return nvml::kSuccess;
}

void NvmlSource::sample(size_t index, DeviceRow& row, const FieldMask& want, int64_t nowNs) {
  Device& d = devices_[index];
  row.meta(kDevLinkCount) = static_cast<double>(d.links.size());
  row.meta(kDevMigMode) = d.migMode;
  row.meta(kDevNvlinkFailedLink) = -1;
  auto failAll = [&](Status st, int32_t code) {
    for (size_t f = 0; f < kFieldCount; ++f) {
      if (want.test(f)) row.fail(static_cast<Field>(f), st, Source::Nvml, code);
    }
    for (size_t l = 0; l < kMaxLinks; ++l) {
      double* link = row.link(l);
      link[0] = link[1] = link[2] = kNaN;
    }
    row.meta(kDevProcessCount) = 0;
    row.meta(kDevProcessTruncated) = 0;
    row.meta(kDevLostCode) = code;
  };

  if (d.handle == nullptr) {
    failAll(statusForNvml(d.lostCode) == Status::GpuLost ? Status::GpuLost : Status::Error, d.lostCode);
    row.meta(kDevState) = static_cast<double>(DeviceState::Error);
    return;
  }
  if (d.lost && nowNs < d.nextRetryNs) {
    failAll(Status::GpuLost, d.lostCode);
    row.meta(kDevState) = static_cast<double>(DeviceState::Lost);
    return;
  }

  if (d.lost) {
    // Back after a loss (often a GPU reset or a driver reload): what it did not support before
    // may have changed, and its counters restarted.
    const bool migSupported = !d.unsupported.test(kCallMigMode);
    d.unsupported.reset();
    if (!migSupported) d.unsupported.set(kCallMigMode);
  }
  d.lostThisSample = false;
  sampleMigMode(d, row);
  sampleClocks(d, row, want);
  samplePowerThermal(d, row, want);
  sampleUtilMemory(d, row, want);
  sampleEcc(d, row, want);
  sampleFieldValues(d, row, want, nowNs);
  sampleProcesses(d, row, want);

  if (d.lostThisSample) {
    if (!d.lost) resetCounters(d);  // counters restart after recovery: a rate across a loss is meaningless
    d.lost = true;
    d.nextRetryNs = nowNs + options_.lostRetryNs;
    failAll(Status::GpuLost, d.lostCode);
    row.meta(kDevState) = static_cast<double>(DeviceState::Lost);
    return;
  }
  d.lost = false;
  // A device none of whose calls answered, with at least one real failure (the driver gone or
  // unloaded, a GPU needing a reset), is not "ok" whatever its fields say one by one: report it
  // in error with the first failure's code, so gpu_telemetry_device_up goes to 0.
  bool anyOk = false;
  int32_t firstError = 0;
  for (size_t f = 0; f < kFieldCount; ++f) {
    if (!want.test(f)) continue;
    const Status st = row.status(static_cast<Field>(f));
    if (st == Status::Ok || st == Status::Pending) {
      anyOk = true;
      break;
    }
    if (st == Status::Error && firstError == 0) firstError = row.code(static_cast<Field>(f));
  }
  if (!anyOk && firstError != 0) {
    row.meta(kDevState) = static_cast<double>(DeviceState::Error);
    row.meta(kDevLostCode) = firstError;
    return;
  }
  row.meta(kDevState) = static_cast<double>(DeviceState::Ok);
  row.meta(kDevLostCode) = 0;
}

void NvmlSource::sampleClocks(Device& d, DeviceRow& row, const FieldMask& want) {
  struct ClockRead { Field field; CallId id; int type; bool max; };
  static constexpr ClockRead kClocks[] = {
      {Field::SmClockHz, kCallClockSm, nvml::kClockSm, false},
      {Field::MemoryClockHz, kCallClockMem, nvml::kClockMem, false},
      {Field::GraphicsClockHz, kCallClockGr, nvml::kClockGraphics, false},
      {Field::SmClockMaxHz, kCallMaxSm, nvml::kClockSm, true},
      {Field::MemoryClockMaxHz, kCallMaxMem, nvml::kClockMem, true},
      {Field::GraphicsClockMaxHz, kCallMaxGr, nvml::kClockGraphics, true},
  };
  for (const ClockRead& c : kClocks) {
    if (!want.test(idx(c.field))) continue;
    unsigned int mhz = 0;
    nvml::Return r;
    if (c.max) {
      r = invoke(d, c.id, "nvmlDeviceGetMaxClockInfo", api_.deviceGetMaxClockInfo != nullptr,
                 [&] { return api_.deviceGetMaxClockInfo(d.handle, c.type, &mhz); });
    } else {
      r = invoke(d, c.id, "nvmlDeviceGetClockInfo", api_.deviceGetClockInfo != nullptr,
                 [&] { return api_.deviceGetClockInfo(d.handle, c.type, &mhz); });
    }
    put(row, c.field, r, mhz * kMHz);
  }
  if (want.test(idx(Field::ClockEventReasons))) {
    unsigned long long reasons = 0;
    const char* symbol = api_.deviceGetClocksEventReasonsSymbol ? api_.deviceGetClocksEventReasonsSymbol
                                                               : "nvmlDeviceGetCurrentClocksEventReasons";
    nvml::Return r = invoke(d, kCallEventReasons, symbol, api_.deviceGetClocksEventReasons != nullptr,
                            [&] { return api_.deviceGetClocksEventReasons(d.handle, &reasons); });
    // Every defined reason bit is below 2^53, so the mask is exact as a double.
    put(row, Field::ClockEventReasons, r, static_cast<double>(reasons));
  }
}

void NvmlSource::samplePowerThermal(Device& d, DeviceRow& row, const FieldMask& want) {
  if (want.test(idx(Field::PowerWatts))) {
    unsigned int mw = 0;
    nvml::Return r = invoke(d, kCallPower, "nvmlDeviceGetPowerUsage", api_.deviceGetPowerUsage != nullptr,
                            [&] { return api_.deviceGetPowerUsage(d.handle, &mw); });
    put(row, Field::PowerWatts, r, mw * kMilli);
  }
  if (want.test(idx(Field::PowerLimitWatts))) {
    unsigned int mw = 0;
    nvml::Return r = invoke(d, kCallPowerLimit, "nvmlDeviceGetEnforcedPowerLimit",
                            api_.deviceGetEnforcedPowerLimit != nullptr,
                            [&] { return api_.deviceGetEnforcedPowerLimit(d.handle, &mw); });
    put(row, Field::PowerLimitWatts, r, mw * kMilli);
  }
  if (want.test(idx(Field::EnergyJoules))) {
    unsigned long long mj = 0;
    nvml::Return r = invoke(d, kCallEnergy, "nvmlDeviceGetTotalEnergyConsumption",
                            api_.deviceGetTotalEnergyConsumption != nullptr,
                            [&] { return api_.deviceGetTotalEnergyConsumption(d.handle, &mj); });
    put(row, Field::EnergyJoules, r, static_cast<double>(mj) * kMilli);
  }
  if (want.test(idx(Field::TemperatureGpuCelsius))) {
    double celsius = kNaN;
    nvml::Return r = kCodeSymbolMissing;
    if (api_.deviceGetTemperatureV != nullptr) {
      nvml::TemperatureV1 t{};
      t.version = nvml::kTemperatureV1Version;
      t.sensorType = nvml::kTemperatureGpu;
      r = invoke(d, kCallTemperature, "nvmlDeviceGetTemperatureV", true,
                 [&] { return api_.deviceGetTemperatureV(d.handle, &t); });
      celsius = t.temperature;
    }
    // Older drivers (or a struct version this one does not know): the deprecated call.
    if ((r == kCodeSymbolMissing || r == nvml::kErrorArgumentVersionMismatch ||
         r == nvml::kErrorFunctionNotFound) &&
        api_.deviceGetTemperature != nullptr) {
      unsigned int c = 0;
      TrackedCall tracked(tracker_, "nvmlDeviceGetTemperature", d.index);
      r = d.lostThisSample ? nvml::kErrorGpuIsLost : api_.deviceGetTemperature(d.handle, nvml::kTemperatureGpu, &c);
      if (r == nvml::kErrorGpuIsLost) d.lostThisSample = true, d.lostCode = r;
      celsius = c;
    }
    put(row, Field::TemperatureGpuCelsius, r, celsius);
  }
  if (want.test(idx(Field::FanSpeedRatio))) {
    unsigned int pct = 0;
    nvml::Return r = invoke(d, kCallFan, "nvmlDeviceGetFanSpeed", api_.deviceGetFanSpeed != nullptr,
                            [&] { return api_.deviceGetFanSpeed(d.handle, &pct); });
    put(row, Field::FanSpeedRatio, r, pct * kPercent);
  }
  if (want.test(idx(Field::PerformanceState))) {
    int pstate = 0;
    nvml::Return r = invoke(d, kCallPstate, "nvmlDeviceGetPerformanceState",
                            api_.deviceGetPerformanceState != nullptr,
                            [&] { return api_.deviceGetPerformanceState(d.handle, &pstate); });
    if (r == nvml::kSuccess && (pstate < 0 || pstate > 15)) r = nvml::kErrorNotSupported;  // P-state unknown
    put(row, Field::PerformanceState, r, pstate);
  }
}

void NvmlSource::sampleUtilMemory(Device& d, DeviceRow& row, const FieldMask& want) {
  if (want.test(idx(Field::GpuUtilizationRatio)) || want.test(idx(Field::MemoryUtilizationRatio))) {
    nvml::Utilization u{};
    nvml::Return r = invoke(d, kCallUtilization, "nvmlDeviceGetUtilizationRates",
                            api_.deviceGetUtilizationRates != nullptr,
                            [&] { return api_.deviceGetUtilizationRates(d.handle, &u); });
    if (want.test(idx(Field::GpuUtilizationRatio))) put(row, Field::GpuUtilizationRatio, r, u.gpu * kPercent);
    if (want.test(idx(Field::MemoryUtilizationRatio))) {
      put(row, Field::MemoryUtilizationRatio, r, u.memory * kPercent);
    }
  }
  struct CodecRead { Field field; CallId id; const char* symbol; bool encoder; };
  static constexpr CodecRead kCodecs[] = {
      {Field::EncoderUtilizationRatio, kCallEncoder, "nvmlDeviceGetEncoderUtilization", true},
      {Field::DecoderUtilizationRatio, kCallDecoder, "nvmlDeviceGetDecoderUtilization", false},
  };
  for (const CodecRead& c : kCodecs) {
    if (!want.test(idx(c.field))) continue;
    unsigned int pct = 0, periodUs = 0;
    auto fn = c.encoder ? api_.deviceGetEncoderUtilization : api_.deviceGetDecoderUtilization;
    nvml::Return r = invoke(d, c.id, c.symbol, fn != nullptr, [&] { return fn(d.handle, &pct, &periodUs); });
    put(row, c.field, r, pct * kPercent);
  }
  const bool wantMemory = want.test(idx(Field::MemoryTotalBytes)) || want.test(idx(Field::MemoryUsedBytes)) ||
                          want.test(idx(Field::MemoryFreeBytes)) || want.test(idx(Field::MemoryReservedBytes));
  if (wantMemory) {
    double total = kNaN, used = kNaN, freeBytes = kNaN, reserved = kNaN;
    nvml::Return r = kCodeSymbolMissing;
    nvml::Return reservedCode = kCodeSymbolMissing;
    if (api_.deviceGetMemoryInfoV2 != nullptr) {
      nvml::MemoryV2 m{};
      m.version = nvml::kMemoryV2Version;
      r = invoke(d, kCallMemory, "nvmlDeviceGetMemoryInfo_v2", true,
                 [&] { return api_.deviceGetMemoryInfoV2(d.handle, &m); });
      if (r == nvml::kSuccess) {
        total = static_cast<double>(m.total);
        used = static_cast<double>(m.used);
        freeBytes = static_cast<double>(m.free);
        reserved = static_cast<double>(m.reserved);
        reservedCode = nvml::kSuccess;
      } else {
        reservedCode = r;
      }
    }
    // The v1 call when v2 is absent or does not know our struct version. A NOT_SUPPORTED from v2
    // is the device's answer (GB10): v1 would say the same.
    if ((r == kCodeSymbolMissing || r == nvml::kErrorArgumentVersionMismatch ||
         r == nvml::kErrorFunctionNotFound) &&
        api_.deviceGetMemoryInfo != nullptr) {
      nvml::Memory m{};
      d.unsupported.reset(kCallMemory);
      r = invoke(d, kCallMemory, "nvmlDeviceGetMemoryInfo", true,
                 [&] { return api_.deviceGetMemoryInfo(d.handle, &m); });
      if (r == nvml::kSuccess) {
        total = static_cast<double>(m.total);
        used = static_cast<double>(m.used);
        freeBytes = static_cast<double>(m.free);
      }
      // v1 has no reserved figure: say so rather than report 0.
      if (reservedCode == kCodeSymbolMissing || reservedCode == nvml::kErrorArgumentVersionMismatch) {
        reservedCode = r == nvml::kSuccess ? kCodeSymbolMissing : r;
      }
    }
    if (want.test(idx(Field::MemoryTotalBytes))) put(row, Field::MemoryTotalBytes, r, total);
    if (want.test(idx(Field::MemoryUsedBytes))) put(row, Field::MemoryUsedBytes, r, used);
    if (want.test(idx(Field::MemoryFreeBytes))) put(row, Field::MemoryFreeBytes, r, freeBytes);
    if (want.test(idx(Field::MemoryReservedBytes))) put(row, Field::MemoryReservedBytes, reservedCode, reserved);
  }
  if (want.test(idx(Field::PcieLinkGeneration))) {
    unsigned int gen = 0;
    nvml::Return r = invoke(d, kCallPcieGen, "nvmlDeviceGetCurrPcieLinkGeneration",
                            api_.deviceGetCurrPcieLinkGeneration != nullptr,
                            [&] { return api_.deviceGetCurrPcieLinkGeneration(d.handle, &gen); });
    put(row, Field::PcieLinkGeneration, r, gen);
  }
  if (want.test(idx(Field::PcieLinkWidth))) {
    unsigned int width = 0;
    nvml::Return r = invoke(d, kCallPcieWidth, "nvmlDeviceGetCurrPcieLinkWidth",
                            api_.deviceGetCurrPcieLinkWidth != nullptr,
                            [&] { return api_.deviceGetCurrPcieLinkWidth(d.handle, &width); });
    put(row, Field::PcieLinkWidth, r, width);
  }
}

void NvmlSource::sampleEcc(Device& d, DeviceRow& row, const FieldMask& want) {
  struct EccRead { Field field; CallId id; int errorType; int counterType; };
  static constexpr EccRead kEcc[] = {
      {Field::EccVolatileCorrectedErrors, kCallEccVolCorr, nvml::kMemoryErrorCorrected, nvml::kVolatileEcc},
      {Field::EccVolatileUncorrectedErrors, kCallEccVolUnc, nvml::kMemoryErrorUncorrected, nvml::kVolatileEcc},
      {Field::EccAggregateCorrectedErrors, kCallEccAggCorr, nvml::kMemoryErrorCorrected, nvml::kAggregateEcc},
      {Field::EccAggregateUncorrectedErrors, kCallEccAggUnc, nvml::kMemoryErrorUncorrected, nvml::kAggregateEcc},
  };
  for (const EccRead& e : kEcc) {
    if (!want.test(idx(e.field))) continue;
    unsigned long long count = 0;
    nvml::Return r = invoke(d, e.id, "nvmlDeviceGetTotalEccErrors", api_.deviceGetTotalEccErrors != nullptr,
                            [&] { return api_.deviceGetTotalEccErrors(d.handle, e.errorType, e.counterType, &count); });
    put(row, e.field, r, static_cast<double>(count));
  }
}

void NvmlSource::sampleFieldValues(Device& d, DeviceRow& row, const FieldMask& want, int64_t nowNs) {
  // One driver call answers memory temperature, the PCIe counters, page-retirement and row-remap
  // state, and every link's NVLink counters and (where the driver answers it, stateFieldAgrees) its
  // state: those last, from kFirstLinkValue on. A driver call is an ioctl: a call per link's state
  // was 18 per GPU per sample.
  enum : size_t {
    kMemTemp = 0, kPcieTx, kPcieRx, kReplay, kPendingSbe, kPendingDbe, kRemapCor, kRemapUnc, kRemapPending,
    kRemapFailure
  };
  static_assert(kRemapFailure + 1 == kFirstLinkValue, "link values follow the device values");
  fieldValues_.clear();
  auto request = [&](unsigned int fieldId, unsigned int scope) {
    nvml::FieldValue fv{};
    fv.fieldId = fieldId;
    fv.scopeId = scope;
    fieldValues_.push_back(fv);
  };
  request(nvml::kFiMemoryTemp, 0);
  request(nvml::kFiPcieCountTxBytes, 0);
  request(nvml::kFiPcieCountRxBytes, 0);
  request(nvml::kFiPcieReplayCounter, 0);
  request(nvml::kFiRetiredPendingSbe, 0);
  request(nvml::kFiRetiredPendingDbe, 0);
  request(nvml::kFiRemappedCorrectable, 0);
  request(nvml::kFiRemappedUncorrectable, 0);
  request(nvml::kFiRemappedPending, 0);
  request(nvml::kFiRemappedFailure, 0);
  for (unsigned int link : d.links) {
    if (d.nvlinkStateField) request(nvml::kFiNvlinkGetState, link);
    request(nvml::kFiNvlinkThroughputDataTx, link);
    request(nvml::kFiNvlinkThroughputDataRx, link);
  }
  nvml::Return r = invoke(d, kCallFieldValues, "nvmlDeviceGetFieldValues", api_.deviceGetFieldValues != nullptr,
                          [&] {
                            return api_.deviceGetFieldValues(d.handle, static_cast<int>(fieldValues_.size()),
                                                             fieldValues_.data());
                          });
  for (nvml::FieldValue& fv : fieldValues_) {
    if (r != nvml::kSuccess) fv.nvmlReturn = r;  // the whole call failed: every entry says why
    if (fv.nvmlReturn == nvml::kErrorGpuIsLost) {
      d.lostThisSample = true;
      d.lostCode = fv.nvmlReturn;
    }
  }
  if (want.test(idx(Field::TemperatureMemoryCelsius))) putFieldValue(row, Field::TemperatureMemoryCelsius, fieldValues_[kMemTemp]);
  if (want.test(idx(Field::PcieReplayErrors))) putFieldValue(row, Field::PcieReplayErrors, fieldValues_[kReplay]);
  if (want.test(idx(Field::RetiredPagesPending))) {
    // Pending retirement for either reason (single- or double-bit errors) means a reset is due.
    double sbe = kNaN, dbe = kNaN;
    int32_t sbeCode = fieldValues_[kPendingSbe].nvmlReturn, dbeCode = fieldValues_[kPendingDbe].nvmlReturn;
    const bool sbeOk = sbeCode == nvml::kSuccess && fieldValueNumber(fieldValues_[kPendingSbe], &sbe, &sbeCode);
    const bool dbeOk = dbeCode == nvml::kSuccess && fieldValueNumber(fieldValues_[kPendingDbe], &dbe, &dbeCode);
    if (sbeOk || dbeOk) {
      row.set(Field::RetiredPagesPending, (sbeOk && sbe != 0) || (dbeOk && dbe != 0) ? 1 : 0, Source::Nvml);
    } else {
      row.fail(Field::RetiredPagesPending, statusForNvml(sbeCode), Source::Nvml, sbeCode);
    }
  }
  const std::pair<Field, size_t> remap[] = {{Field::RemappedRowsCorrectable, kRemapCor},
                                            {Field::RemappedRowsUncorrectable, kRemapUnc},
                                            {Field::RemappedRowsPending, kRemapPending},
                                            {Field::RemappedRowsFailure, kRemapFailure}};
  for (const auto& [field, slot] : remap) {
    if (want.test(idx(field))) putFieldValue(row, field, fieldValues_[slot]);
  }
  samplePcie(d, row, want, nowNs, &fieldValues_[kPcieTx], &fieldValues_[kPcieRx]);
  sampleNvlink(d, row, want, nowNs, fieldValues_);
}

void NvmlSource::samplePcie(Device& d, DeviceRow& row, const FieldMask& want, int64_t nowNs,
                            const nvml::FieldValue* tx, const nvml::FieldValue* rx) {
  const bool wantTx = want.test(idx(Field::PcieTxBytesPerSecond));
  const bool wantRx = want.test(idx(Field::PcieRxBytesPerSecond));
  if (!wantTx && !wantRx) return;
  if (d.pcieCountersWork && tx->nvmlReturn == nvml::kSuccess && rx->nvmlReturn == nvml::kSuccess) {
    // Cumulative byte counters (fields 197/198): a rate between two samples costs nothing in the
    // driver. They wrap at the width of the value type the driver answers with.
    auto rateOf = [&](Field f, const nvml::FieldValue& fv, CounterRate& counter) {
      uint64_t raw = 0;
      unsigned bits = 64;
      double rate = 0;
      if (!fieldValueCounter(fv, &raw, &bits)) {
        int32_t code = unknownValueTypeCode(fv.valueType);
        if (fv.valueType == nvml::kValueDouble) code = kCodeNotFinite;  // a byte count is never a double
        row.fail(f, Status::Error, Source::Nvml, code);
        return;
      }
      const int64_t at = fv.timestamp > 0 ? fv.timestamp * 1000 : nowNs;
      if (counter.update(raw, bits, at, &rate)) {
        row.set(f, rate, Source::Nvml);
      } else {
        row.fail(f, Status::Pending, Source::Nvml, kCodeCounterReset);
      }
    };
    if (wantTx) rateOf(Field::PcieTxBytesPerSecond, *tx, d.pcieTx);
    if (wantRx) rateOf(Field::PcieRxBytesPerSecond, *rx, d.pcieRx);
    return;
  }
  if (tx->nvmlReturn == nvml::kErrorGpuIsLost) return;  // the device row is failed as a whole
  d.pcieCountersWork = false;
  // Older drivers: nvmlDeviceGetPcieThroughput measures over ~20 ms inside the call, so it is asked
  // at most once per slowCallMinGapNs and its last answer is re-published in between.
  if (d.pcieThroughputAtNs == 0 || nowNs - d.pcieThroughputAtNs >= options_.slowCallMinGapNs) {
    d.pcieThroughputAtNs = nowNs;
    unsigned int txKb = 0, rxKb = 0;
    nvml::Return r = invoke(d, kCallPcieThroughput, "nvmlDeviceGetPcieThroughput",
                            api_.deviceGetPcieThroughput != nullptr,
                            [&] { return api_.deviceGetPcieThroughput(d.handle, nvml::kPcieUtilTxBytes, &txKb); });
    if (r == nvml::kSuccess) {
      r = invoke(d, kCallPcieThroughput, "nvmlDeviceGetPcieThroughput", true,
                 [&] { return api_.deviceGetPcieThroughput(d.handle, nvml::kPcieUtilRxBytes, &rxKb); });
    }
    d.pcieThroughputCode = r;
    d.pcieTxBps = txKb * kKiB;  // NVML documents KB/s; the driver counts in units of 1024 bytes
    d.pcieRxBps = rxKb * kKiB;
  }
  if (wantTx) put(row, Field::PcieTxBytesPerSecond, d.pcieThroughputCode, d.pcieTxBps);
  if (wantRx) put(row, Field::PcieRxBytesPerSecond, d.pcieThroughputCode, d.pcieRxBps);
}

namespace {
// A link's state from an NVML_FI_DEV_NVLINK_GET_STATE answer (1 enabled, 0 disabled): false, with
// *code saying why, when the answer is a failure or not a number this build can read.
bool linkStateFrom(const nvml::FieldValue& fv, bool* enabled, int32_t* code) {
  double value = 0;
  *code = fv.nvmlReturn;
  if (*code != nvml::kSuccess || !fieldValueNumber(fv, &value, code)) return false;
  *enabled = value == nvml::kFeatureEnabled;
  return true;
}
}  // namespace

bool NvmlSource::stateFieldAgrees(const Device& d, const std::vector<int>& states) {
  // The field is read in place of the per-link call only where it gives the same answer for every
  // link at open: a driver that does not know it, answers it for no link, or in another value
  // type or meaning (NCCL trusts it only from Hopper on) keeps the per-link calls.
  if (d.links.empty() || api_.deviceGetFieldValues == nullptr) return false;
  std::vector<nvml::FieldValue> asked(d.links.size());
  for (size_t i = 0; i < d.links.size(); ++i) {
    asked[i].fieldId = nvml::kFiNvlinkGetState;
    asked[i].scopeId = d.links[i];
  }
  if (api_.deviceGetFieldValues(d.handle, static_cast<int>(asked.size()), asked.data()) != nvml::kSuccess) return false;
  for (size_t i = 0; i < asked.size(); ++i) {
    bool enabled = false;
    int32_t code = 0;
    if (!linkStateFrom(asked[i], &enabled, &code) || enabled != (states[i] == nvml::kFeatureEnabled)) return false;
  }
  return true;
}

nvml::Return NvmlSource::nvlinkState(Device& d, unsigned int link, const nvml::FieldValue* fv, int* state) {
  // From the field-values answer when it is read (NVML_FI_DEV_NVLINK_GET_STATE: 1 enabled, 0
  // disabled); when it is not, or failed on this link this time, the per-link call.
  bool enabled = false;
  int32_t code = nvml::kErrorNotSupported;
  if (fv != nullptr && linkStateFrom(*fv, &enabled, &code)) {
    *state = enabled ? nvml::kFeatureEnabled : 0;
    return nvml::kSuccess;
  }
  if (d.lostThisSample || code == nvml::kErrorGpuIsLost) return nvml::kErrorGpuIsLost;
  TrackedCall tracked(tracker_, "nvmlDeviceGetNvLinkState", d.index);
  return api_.deviceGetNvLinkState(d.handle, link, state);
}

void NvmlSource::sampleNvlink(Device& d, DeviceRow& row, const FieldMask& want, int64_t nowNs,
                              const std::vector<nvml::FieldValue>& values) {
  for (size_t l = 0; l < kMaxLinks; ++l) {
    double* link = row.link(l);
    link[0] = link[1] = link[2] = kNaN;
  }
  const bool wantAny = want.test(idx(Field::NvlinkActiveLinks)) || want.test(idx(Field::NvlinkTxBytesPerSecond)) ||
                       want.test(idx(Field::NvlinkRxBytesPerSecond));
  if (!wantAny) return;
  if (d.links.empty()) {
    const int32_t code = api_.deviceGetNvLinkState ? nvml::kErrorNotSupported : kCodeSymbolMissing;
    row.fail(Field::NvlinkActiveLinks, Status::NotSupported, Source::Nvml, code);
    row.fail(Field::NvlinkTxBytesPerSecond, Status::NotSupported, Source::Nvml, code);
    row.fail(Field::NvlinkRxBytesPerSecond, Status::NotSupported, Source::Nvml, code);
    return;
  }
  // The totals sum the links that are up. A down link moves nothing and its counters may not
  // answer at all: it is not part of the total. An up link whose counter fails makes the total an
  // error (a partial sum would read as a real drop in traffic), with the link named.
  unsigned int active = 0;
  nvml::Return stateCode = nvml::kSuccess;
  struct Total {
    double sum = 0;
    bool pending = false;
    nvml::Return code = nvml::kSuccess;
    int failedLink = -1;
  } tx, rx;
  auto addRate = [&](Total& total, const nvml::FieldValue& fv, CounterRate& counter, unsigned int l, double* out) {
    int32_t code = fv.nvmlReturn;
    uint64_t raw = 0;
    unsigned bits = 64;
    if (code == nvml::kSuccess && !fieldValueCounter(fv, &raw, &bits)) code = unknownValueTypeCode(fv.valueType);
    if (code != nvml::kSuccess) {
      if (total.code == nvml::kSuccess) {
        total.code = code;
        total.failedLink = static_cast<int>(l);
      }
      return;
    }
    const int64_t at = fv.timestamp > 0 ? fv.timestamp * 1000 : nowNs;
    double kibPerSecond = 0;
    if (counter.update(raw, bits, at, &kibPerSecond)) {
      *out = kibPerSecond * kKiB;
      total.sum += *out;
    } else {
      total.pending = true;
    }
  };
  // Per link in `values`: [state,] TX, RX (the state only when the field is read, see sampleFieldValues).
  const size_t stride = d.nvlinkStateField ? 3 : 2;
  for (size_t i = 0; i < d.links.size(); ++i) {
    const unsigned int l = d.links[i];
    double* link = row.link(l);
    const size_t first = kFirstLinkValue + stride * i;
    const nvml::FieldValue& txEntry = values[first + stride - 2];
    const nvml::FieldValue& rxEntry = values[first + stride - 1];
    int state = 0;
    const nvml::Return r = nvlinkState(d, l, d.nvlinkStateField ? &values[first] : nullptr, &state);
    if (r == nvml::kErrorGpuIsLost) d.lostThisSample = true, d.lostCode = r;
    if (r == nvml::kSuccess) {
      link[0] = state == nvml::kFeatureEnabled ? 1.0 : 0.0;
      if (state != nvml::kFeatureEnabled) {
        d.nvlink[l].tx.reset();  // when it comes back up its counters start a new measurement
        d.nvlink[l].rx.reset();
        continue;
      }
      ++active;
    } else {
      stateCode = r;
    }
    addRate(tx, txEntry, d.nvlink[l].tx, l, &link[1]);
    addRate(rx, rxEntry, d.nvlink[l].rx, l, &link[2]);
  }
  put(row, Field::NvlinkActiveLinks, stateCode, active);
  const int failedLink = tx.failedLink >= 0 ? tx.failedLink : rx.failedLink;
  if (failedLink >= 0) row.meta(kDevNvlinkFailedLink) = failedLink;
  for (auto [field, total] : {std::pair<Field, const Total*>{Field::NvlinkTxBytesPerSecond, &tx},
                              std::pair<Field, const Total*>{Field::NvlinkRxBytesPerSecond, &rx}}) {
    if (total->code != nvml::kSuccess) {
      row.fail(field, total->code <= kCodeUnknownValueTypeBase ? Status::Error : statusForNvml(total->code), Source::Nvml,
               total->code);
    } else if (total->pending) {
      row.fail(field, Status::Pending, Source::Nvml, kCodeCounterReset);
    } else {
      row.set(field, total->sum, Source::Nvml);
    }
  }
}

void writeProcesses(DeviceRow& row, std::vector<ListedProcess>& list, bool moreThanListed) {
  // The ones using the most memory first (a process whose memory the driver cannot tell last), so
  // the 64 kept are the 64 that matter; the order is stable for equal figures.
  const auto before = [](const ListedProcess& a, const ListedProcess& b) {
    const bool an = std::isnan(a.usedMemoryBytes), bn = std::isnan(b.usedMemoryBytes);
    if (an != bn) return bn;
    return !an && a.usedMemoryBytes > b.usedMemoryBytes;
  };
  if (list.size() <= kMaxProcesses) {
    // The usual handful: an insertion sort (stable) allocates nothing; std::stable_sort takes a
    // temporary buffer from malloc on every call, i.e. per device per sample.
    for (size_t i = 1; i < list.size(); ++i) {
      const ListedProcess p = list[i];
      size_t j = i;
      for (; j > 0 && before(p, list[j - 1]); --j) list[j] = list[j - 1];
      list[j] = p;
    }
  } else {
    std::stable_sort(list.begin(), list.end(), before);
  }
  const size_t kept = std::min(list.size(), kMaxProcesses);
  // Only the kept slots are written: slots past the count are never read (readSnapshot copies
  // only the counted entries, and every reader stops at the count).
  for (size_t i = 0; i < kept; ++i) {
    double* p = row.process(i);
    for (size_t k = 0; k < kProcessStride; ++k) p[k] = kNaN;
    p[kProcPid] = list[i].pid;
    p[kProcUsedMemory] = list[i].usedMemoryBytes;
    p[kProcGpuInstance] = list[i].gpuInstance;
    p[kProcComputeInstance] = list[i].computeInstance;
  }
  row.meta(kDevProcessCount) = static_cast<double>(kept);
  row.meta(kDevProcessTruncated) = list.size() > kMaxProcesses || moreThanListed ? 1.0 : 0.0;
}

void NvmlSource::sampleProcesses(Device& d, DeviceRow& row, const FieldMask& want) {
  row.meta(kDevProcessCount) = 0;
  row.meta(kDevProcessTruncated) = 0;
  const bool wantAny = want.test(idx(Field::ProcessCount)) || want.test(idx(Field::GpuProcessMemoryBytes));
  if (!wantAny) return;
  unsigned int count = 0;
  nvml::Return r = kCodeSymbolMissing;
  // (pid, used bytes or NaN) of every process the driver listed, from whichever struct generation.
  auto entry = [&](size_t i, bool v2) -> std::pair<double, double> {
    const unsigned int pid = v2 ? processesV2_[i].pid : processesV1_[i].pid;
    const unsigned long long used = v2 ? processesV2_[i].usedGpuMemory : processesV1_[i].usedGpuMemory;
    return {static_cast<double>(pid), used == nvml::kValueNotAvailable ? kNaN : static_cast<double>(used)};
  };
  bool v2 = false;
  if (api_.deviceGetComputeRunningProcessesV2 != nullptr) {
    v2 = true;
    if (processesV2_.size() < kMaxProcesses) processesV2_.resize(kMaxProcesses);
    for (int attempt = 0; attempt < 2; ++attempt) {
      count = static_cast<unsigned int>(processesV2_.size());
      r = invoke(d, kCallProcesses, api_.deviceGetComputeRunningProcessesV2Symbol, true,
                 [&] { return api_.deviceGetComputeRunningProcessesV2(d.handle, &count, processesV2_.data()); });
      if (r != nvml::kErrorInsufficientSize) break;
      processesV2_.resize(std::min<size_t>(count + 16, kProcessBufferMax));  // rare: grows once, then reused
    }
  } else if (api_.deviceGetComputeRunningProcessesV1 != nullptr) {
    if (processesV1_.size() < kMaxProcesses) processesV1_.resize(kMaxProcesses);
    for (int attempt = 0; attempt < 2; ++attempt) {
      count = static_cast<unsigned int>(processesV1_.size());
      r = invoke(d, kCallProcesses, "nvmlDeviceGetComputeRunningProcesses", true,
                 [&] { return api_.deviceGetComputeRunningProcessesV1(d.handle, &count, processesV1_.data()); });
      if (r != nvml::kErrorInsufficientSize) break;
      processesV1_.resize(std::min<size_t>(count + 16, kProcessBufferMax));
    }
  }
  if (r != nvml::kSuccess) {
    put(row, Field::ProcessCount, r, kNaN);
    put(row, Field::GpuProcessMemoryBytes, r, kNaN);
    return;
  }
  const size_t listed = std::min<size_t>(count, v2 ? processesV2_.size() : processesV1_.size());
  double sum = 0;
  size_t withMemory = 0;
  listed_.clear();
  for (size_t i = 0; i < listed; ++i) {
    auto [pid, used] = entry(i, v2);
    ListedProcess p{pid, used, -1, -1};
    if (v2 && processesV2_[i].gpuInstanceId != nvml::kNoInstanceId) {
      p.gpuInstance = processesV2_[i].gpuInstanceId;
      p.computeInstance = processesV2_[i].computeInstanceId;
    }
    listed_.push_back(p);
    if (!std::isnan(used)) {
      sum += used;
      ++withMemory;
    }
  }
  writeProcesses(row, listed_, count > listed);
  row.set(Field::ProcessCount, count, Source::Nvml);
  if (count > 0 && withMemory == 0) {
    // The driver lists processes but not their memory (vGPU/WDDM): that is not zero bytes.
    row.fail(Field::GpuProcessMemoryBytes, Status::NotSupported, Source::Nvml, nvml::kErrorNotSupported);
  } else {
    row.set(Field::GpuProcessMemoryBytes, sum, Source::Nvml);
  }
}

}  // namespace gt
