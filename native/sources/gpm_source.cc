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

GpmSource::~GpmSource() {
  if (api_.gpmSampleFree == nullptr) return;
  for (Device& d : devices_) {
    for (nvml::GpmSample& s : d.samples) {
      if (s != nullptr) api_.gpmSampleFree(s);
      s = nullptr;
    }
  }
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
    if (r == nvml::kSuccess) {
      TrackedCall tracked(tracker_, "nvmlGpmSampleGet", static_cast<int>(i));
      r = api_.gpmSampleGet(d.handle, d.samples[0]);
    }
    d.code = r;
    d.supported = r == nvml::kSuccess;
    if (d.supported) {
      d.havePrevious = true;
      d.current = 1;
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
  nvml::Return r;
  {
    TrackedCall tracked(tracker_, "nvmlGpmSampleGet", static_cast<int>(index));
    r = api_.gpmSampleGet(d.handle, d.samples[d.current]);
  }
  if (r != nvml::kSuccess) {
    // The next good sample starts a new interval.
    d.havePrevious = false;
    failWanted(statusForNvml(r), r);
    return;
  }
  if (!d.havePrevious) {
    d.havePrevious = true;
    d.current ^= 1;
    failWanted(Status::Pending, kCodeCounterReset);
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
    const GpmField& gf = kGpmFields[g];
    if (!want.test(idx(gf.field))) continue;
    const nvml::GpmMetric& m = request_.metrics[slot[g]];
    const nvml::Return mr = r != nvml::kSuccess ? r : m.nvmlReturn;
    if (mr == nvml::kSuccess) {
      row.set(gf.field, m.value * gf.scale, Source::Gpm);
    } else {
      row.fail(gf.field, statusForNvml(mr), Source::Gpm, mr);
    }
  }
}

}  // namespace gt
