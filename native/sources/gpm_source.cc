#include "gpm_source.h"

#include "nvml_source.h"

namespace gt {

namespace {

struct GpmField {
  Field field;
  unsigned int metric;
  double scale;  // to base units: percent → ratio, MiB/s → bytes/s
};

constexpr double kPercent = 0.01;
constexpr double kMiB = 1048576.0;

constexpr GpmField kGpmFields[] = {
    {Field::GrEngineActiveRatio, nvml::kGpmGraphicsUtil, kPercent},
    {Field::SmActiveRatio, nvml::kGpmSmUtil, kPercent},
    {Field::SmOccupancyRatio, nvml::kGpmSmOccupancy, kPercent},
    {Field::TensorActiveRatio, nvml::kGpmAnyTensorUtil, kPercent},
    {Field::DramActiveRatio, nvml::kGpmDramBwUtil, kPercent},
    {Field::Fp64ActiveRatio, nvml::kGpmFp64Util, kPercent},
    {Field::Fp32ActiveRatio, nvml::kGpmFp32Util, kPercent},
    {Field::Fp16ActiveRatio, nvml::kGpmFp16Util, kPercent},
    {Field::PcieTxBytesPerSecond, nvml::kGpmPcieTxPerSec, kMiB},
    {Field::PcieRxBytesPerSecond, nvml::kGpmPcieRxPerSec, kMiB},
    {Field::NvlinkTxBytesPerSecond, nvml::kGpmNvlinkTotalTxPerSec, kMiB},
    {Field::NvlinkRxBytesPerSecond, nvml::kGpmNvlinkTotalRxPerSec, kMiB},
};
constexpr size_t kGpmFieldCount = sizeof(kGpmFields) / sizeof(kGpmFields[0]);

}  // namespace

GpmSource::GpmSource(const nvml::Api& api, CallTracker& tracker, std::vector<nvml::Device> handles)
    : api_(api), tracker_(tracker), devices_(handles.size()) {
  for (size_t d = 0; d < handles.size(); ++d) devices_[d].handle = handles[d];
}

static_assert(GpmSource::kFieldSlots == kGpmFieldCount, "GpmSource::kFieldSlots must count kGpmFields");

GpmSource::~GpmSource() {
  for (Device& d : devices_) freeSamples(d);
}

void GpmSource::freeSamples(Device& d) {
  for (nvml::GpmSample& s : d.samples) {
    if (s != nullptr && api_.gpmSampleFree != nullptr) api_.gpmSampleFree(s);
    s = nullptr;
  }
}

nvml::Return GpmSource::readSample(size_t index, Device& d) {
  nvml::Return r;
  {
    TrackedCall tracked(tracker_, "nvmlGpmSampleGet", static_cast<int>(index));
    r = api_.gpmSampleGet(d.handle, d.samples[d.current]);
  }
  d.previousEndNs = monoNowNs();
  return r;
}

bool GpmSource::symbolsPresent() const {
  return api_.gpmQueryDeviceSupport && api_.gpmSampleAlloc && api_.gpmSampleFree && api_.gpmSampleGet &&
         api_.gpmMetricsGet;
}

FieldMask GpmSource::provides() {
  FieldMask m;
  for (const GpmField& g : kGpmFields) m.set(idx(g.field));
  return m;
}

bool GpmSource::anySupported() const {
  for (const Device& d : devices_) {
    if (d.supported) return true;
  }
  return false;
}

void GpmSource::probe() {
  const bool present = symbolsPresent();
  for (size_t i = 0; i < devices_.size(); ++i) {
    Device& d = devices_[i];
    if (!present) {
      d.code = kCodeSymbolMissing;
      continue;
    }
    if (d.handle == nullptr) {
      d.code = nvml::kErrorGpuIsLost;
      continue;
    }
    nvml::GpmSupport support{};
    support.version = nvml::kGpmSupportVersion;
    nvml::Return r;
    {
      TrackedCall tracked(tracker_, "nvmlGpmQueryDeviceSupport", static_cast<int>(i));
      r = api_.gpmQueryDeviceSupport(d.handle, &support);
    }
    if (r == nvml::kSuccess && support.isSupportedDevice == 0) r = nvml::kErrorNotSupported;
    if (r == nvml::kSuccess) r = api_.gpmSampleAlloc(&d.samples[0]);
    if (r == nvml::kSuccess) r = api_.gpmSampleAlloc(&d.samples[1]);
    if (r == nvml::kSuccess) r = readSample(i, d);
    d.code = r;
    d.supported = r == nvml::kSuccess;
    if (d.supported) {
      // The first sample of the first pair: the fields stay pending until one kMinPairNs later.
      d.havePrevious = true;
      d.current = 1;
    } else {
      freeSamples(d);
    }
  }
}

void GpmSource::deviceLost(size_t index) {
  Device& d = devices_[index];
  d.havePrevious = false;
  d.haveLast = false;
  d.reallocate = true;
}

void GpmSource::publishLast(const Device& d, DeviceRow& row, const FieldMask& want) const {
  for (size_t g = 0; g < kGpmFieldCount; ++g) {
    const Field f = kGpmFields[g].field;
    if (!want.test(idx(f))) continue;
    if (!d.haveLast) {
      row.fail(f, Status::Pending, Source::Gpm, kCodeGpmPairPending);
    } else if (d.lastStatus[g] == Status::Ok) {
      row.set(f, d.lastValue[g], Source::Gpm);
    } else {
      row.fail(f, d.lastStatus[g], Source::Gpm, d.lastCode[g]);
    }
  }
}

void GpmSource::sample(size_t index, DeviceRow& row, const FieldMask& want) {
  Device& d = devices_[index];
  auto failWanted = [&](Status st, int32_t code) {
    for (const GpmField& g : kGpmFields) {
      if (want.test(idx(g.field))) row.fail(g.field, st, Source::Gpm, code);
    }
  };
  nvml::Return r = nvml::kSuccess;
  if (d.reallocate || d.samples[0] == nullptr || d.samples[1] == nullptr) {
    // Back from a loss: buffers filled by the device instance that was lost are never read again.
    freeSamples(d);
    r = api_.gpmSampleAlloc(&d.samples[0]);
    if (r == nvml::kSuccess) r = api_.gpmSampleAlloc(&d.samples[1]);
    if (r != nvml::kSuccess) {
      freeSamples(d);
      failWanted(statusForNvml(r), r);
      return;
    }
    d.reallocate = false;
    d.havePrevious = false;
    d.haveLast = false;
    d.current = 0;
  }
  if (d.havePrevious && monoNowNs() - d.previousEndNs < kMinPairNs) {
    // Too soon for a new pair (the driver would read one internal refresh twice).
    publishLast(d, row, want);
    return;
  }
  r = readSample(index, d);
  if (r != nvml::kSuccess) {
    // The next good sample starts a new pair; a GPU lost to GPM gets new buffers too.
    d.havePrevious = false;
    d.haveLast = false;
    if (r == nvml::kErrorGpuIsLost) d.reallocate = true;
    failWanted(statusForNvml(r), r);
    return;
  }
  if (!d.havePrevious) {
    d.havePrevious = true;
    d.current ^= 1;
    d.haveLast = false;
    publishLast(d, row, want);
    return;
  }
  request_.version = nvml::kGpmMetricsGetVersion;
  request_.sample1 = d.samples[d.current ^ 1];
  request_.sample2 = d.samples[d.current];
  unsigned int n = 0;
  size_t slot[kGpmFieldCount];
  for (size_t g = 0; g < kGpmFieldCount; ++g) {
    if (!want.test(idx(kGpmFields[g].field))) continue;
    request_.metrics[n] = nvml::GpmMetric{};
    request_.metrics[n].metricId = kGpmFields[g].metric;
    slot[g] = n++;
  }
  request_.numMetrics = n;
  {
    TrackedCall tracked(tracker_, "nvmlGpmMetricsGet", static_cast<int>(index));
    r = n > 0 ? api_.gpmMetricsGet(&request_) : nvml::kSuccess;
  }
  d.current ^= 1;
  for (size_t g = 0; g < kGpmFieldCount; ++g) {
    if (!want.test(idx(kGpmFields[g].field))) continue;
    const nvml::GpmMetric& m = request_.metrics[slot[g]];
    const nvml::Return mr = r != nvml::kSuccess ? r : m.nvmlReturn;
    d.lastStatus[g] = mr == nvml::kSuccess ? Status::Ok : statusForNvml(mr);
    d.lastValue[g] = mr == nvml::kSuccess ? m.value * kGpmFields[g].scale : kNaN;
    d.lastCode[g] = mr;
  }
  d.haveLast = true;
  publishLast(d, row, want);
}

}  // namespace gt
