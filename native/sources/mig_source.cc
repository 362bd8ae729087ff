#include "mig_source.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace gt {

namespace {

struct GpmMigField {
  MigField field;
  unsigned int metric;
};
constexpr GpmMigField kGpmMigFields[] = {
    {MigField::GrEngineActiveRatio, nvml::kGpmGraphicsUtil}, {MigField::SmActiveRatio, nvml::kGpmSmUtil},
    {MigField::SmOccupancyRatio, nvml::kGpmSmOccupancy},     {MigField::TensorActiveRatio, nvml::kGpmAnyTensorUtil},
    {MigField::DramActiveRatio, nvml::kGpmDramBwUtil},       {MigField::Fp64ActiveRatio, nvml::kGpmFp64Util},
    {MigField::Fp32ActiveRatio, nvml::kGpmFp32Util},         {MigField::Fp16ActiveRatio, nvml::kGpmFp16Util},
};
constexpr double kPercent = 0.01;
constexpr size_t kProcessBufferMax = 4096;

// DCGM's name for a GPU instance profile (DcgmCacheManager.cpp, GpuInstanceProfiles): the slices,
// then the memory rounded up to whole GiB: "1g.10gb" for 1 slice with 9,856 MiB. dcgm-exporter's
// GPU_I_PROFILE label is that name.
std::string profileName(int slices, double memoryMiB) {
  if (slices <= 0 || memoryMiB <= 0) return "";
  const auto gib = static_cast<unsigned long long>(std::ceil(memoryMiB / 1024.0));
  return std::to_string(slices) + "g." + std::to_string(gib) + "gb";
}

bool handleGone(nvml::Return r) { return r == nvml::kErrorInvalidArgument || r == nvml::kErrorNotFound; }

}  // namespace

MigSource::MigSource(const nvml::Api& api, CallTracker& tracker, std::vector<nvml::Device> parents, Options options)
    : api_(api), tracker_(tracker), options_(options), parents_(parents.size()), names_(parents.size()) {
  for (size_t d = 0; d < parents.size(); ++d) parents_[d].handle = parents[d];
}

MigSource::~MigSource() {
  for (Parent& p : parents_) {
    for (GpmInstance& g : p.gpm) freeGpm(g);
  }
}

template <typename Fn>
nvml::Return MigSource::call(const char* symbol, size_t device, Fn&& fn) {
  TrackedCall tracked(tracker_, symbol, static_cast<int>(device));
  return fn();
}

void MigSource::freeGpm(GpmInstance& g) {
  for (nvml::GpmSample& s : g.samples) {
    if (s != nullptr && api_.gpmSampleFree != nullptr) api_.gpmSampleFree(s);
    s = nullptr;
  }
}

void MigSource::forget(Parent& p) {
  for (GpmInstance& g : p.gpm) freeGpm(g);
  p.gpm.clear();
  p.migs.clear();
  p.listed = false;
  p.truncated = false;
  p.gpmProbed = false;
}

int32_t MigSource::list(size_t device, Parent& p, std::vector<MigDevice>& out, bool& truncated) {
  out.clear();
  truncated = false;
  if (api_.deviceGetMaxMigDeviceCount == nullptr || api_.deviceGetMigDeviceHandleByIndex == nullptr ||
      api_.deviceGetGpuInstanceId == nullptr || api_.deviceGetComputeInstanceId == nullptr) {
    return kCodeSymbolMissing;
  }
  unsigned int max = 0;
  nvml::Return r = call("nvmlDeviceGetMaxMigDeviceCount", device, [&] { return api_.deviceGetMaxMigDeviceCount(p.handle, &max); });
  if (r != nvml::kSuccess) return r;
  max = std::min(max, 64U);  // a driver answering nonsense cannot make us loop long
  for (unsigned int i = 0; i < max; ++i) {
    nvml::Device h = nullptr;
    r = call("nvmlDeviceGetMigDeviceHandleByIndex", device,
             [&] { return api_.deviceGetMigDeviceHandleByIndex(p.handle, i, &h); });
    // NOT_FOUND: no MIG device at this index (slots can be empty; the next one may not be).
    if (r == nvml::kErrorNotFound) continue;
    if (r != nvml::kSuccess) return r;
    MigDevice m;
    m.handle = h;
    m.index = i;
    r = call("nvmlDeviceGetGpuInstanceId", device, [&] { return api_.deviceGetGpuInstanceId(h, &m.gpuInstanceId); });
    if (r == nvml::kSuccess) {
      r = call("nvmlDeviceGetComputeInstanceId", device, [&] { return api_.deviceGetComputeInstanceId(h, &m.computeInstanceId); });
    }
    if (r != nvml::kSuccess) return r;
    // The UUID and the profile are not worth failing the listing for: without them the device is
    // still reported (no UUID to match pods with, no profile label).
    if (api_.deviceGetUuid != nullptr) {
      char uuid[nvml::kUuidBufferSize] = {};
      if (call("nvmlDeviceGetUUID", device, [&] { return api_.deviceGetUuid(h, uuid, sizeof uuid); }) == nvml::kSuccess) {
        m.uuid.assign(uuid, strnlen(uuid, sizeof uuid));
      }
    }
    if (api_.deviceGetAttributes != nullptr) {
      nvml::DeviceAttributes a{};
      if (call("nvmlDeviceGetAttributes_v2", device, [&] { return api_.deviceGetAttributes(h, &a); }) == nvml::kSuccess) {
        m.slices = static_cast<int>(a.gpuInstanceSliceCount);
        m.memoryMiB = static_cast<double>(a.memorySizeMB);
      }
    }
    m.profile = profileName(m.slices, m.memoryMiB);
    if (out.size() >= kMaxMigDevices) {
      truncated = true;
      continue;
    }
    out.push_back(std::move(m));
  }
  return 0;
}

void MigSource::applyListing(size_t device, Parent& p, std::vector<MigDevice>&& migs, bool truncated) {
  auto same = [](const MigDevice& a, const MigDevice& b) {
    return a.handle == b.handle && a.index == b.index && a.gpuInstanceId == b.gpuInstanceId &&
           a.computeInstanceId == b.computeInstanceId && a.uuid == b.uuid && a.profile == b.profile;
  };
  const bool unchanged = p.listed && p.migs.size() == migs.size() && p.truncated == truncated &&
                         std::equal(p.migs.begin(), p.migs.end(), migs.begin(), same);
  if (unchanged) return;
  // GPU instances that are gone take their GPM buffers with them; new ones start a new pair.
  std::vector<GpmInstance> keep;
  for (GpmInstance& g : p.gpm) {
    const bool stays = std::any_of(migs.begin(), migs.end(), [&](const MigDevice& m) { return m.gpuInstanceId == g.gpuInstanceId; });
    if (stays) {
      keep.push_back(g);
    } else {
      freeGpm(g);
    }
  }
  p.gpm = std::move(keep);
  for (const MigDevice& m : migs) {
    if (std::none_of(p.gpm.begin(), p.gpm.end(), [&](const GpmInstance& g) { return g.gpuInstanceId == m.gpuInstanceId; })) {
      GpmInstance g;
      g.gpuInstanceId = m.gpuInstanceId;
      p.gpm.push_back(g);
    }
  }
  p.migs = std::move(migs);
  p.truncated = truncated;
  p.listed = true;
  ++p.generation;
  Names n;
  n.generation = p.generation;
  for (const MigDevice& m : p.migs) {
    n.uuids.push_back(m.uuid);
    n.profiles.push_back(m.profile);
  }
  std::lock_guard<std::mutex> lock(namesMutex_);
  names_[device] = std::move(n);
}

MigSource::Names MigSource::names(size_t device) const {
  std::lock_guard<std::mutex> lock(namesMutex_);
  return device < names_.size() ? names_[device] : Names{};
}

void MigSource::probeGpm(size_t device, Parent& p) {
  p.gpmProbed = true;
  if (!api_.gpmQueryDeviceSupport || !api_.gpmSampleAlloc || !api_.gpmSampleFree || !api_.gpmMigSampleGet ||
      !api_.gpmMetricsGet) {
    p.gpmCode = kCodeSymbolMissing;
    return;
  }
  nvml::GpmSupport support{};
  support.version = nvml::kGpmSupportVersion;
  nvml::Return r = call("nvmlGpmQueryDeviceSupport", device, [&] { return api_.gpmQueryDeviceSupport(p.handle, &support); });
  if (r == nvml::kSuccess && support.isSupportedDevice == 0) r = nvml::kErrorNotSupported;
  p.gpmCode = r;
}

void MigSource::sampleGpm(size_t device, Parent& p, GpmInstance& g, DeviceRow& row, const std::vector<size_t>& slots) {
  auto publish = [&](Status st, int32_t code, const double* values, const Status* statuses, const int32_t* codes) {
    for (size_t slot : slots) {
      for (size_t f = 0; f < kGpmFields; ++f) {
        const MigField field = kGpmMigFields[f].field;
        if (values != nullptr && statuses[f] == Status::Ok) {
          row.setMig(slot, field, values[f], Source::Gpm);
        } else if (values != nullptr) {
          row.failMig(slot, field, statuses[f], Source::Gpm, codes[f]);
        } else {
          row.failMig(slot, field, st, Source::Gpm, code);
        }
      }
    }
  };
  auto publishLast = [&] {
    if (g.haveLast) {
      publish(Status::Ok, 0, g.lastValue.data(), g.lastStatus.data(), g.lastCode.data());
    } else {
      publish(Status::Pending, kCodeCounterReset, nullptr, nullptr, nullptr);
    }
  };
  if (p.gpmCode != 0) {
    publish(statusForNvml(p.gpmCode), p.gpmCode, nullptr, nullptr, nullptr);
    return;
  }
  if (g.code != 0) {
    publish(statusForNvml(g.code), g.code, nullptr, nullptr, nullptr);
    return;
  }
  if (g.samples[0] == nullptr || g.samples[1] == nullptr) {
    freeGpm(g);
    nvml::Return r = api_.gpmSampleAlloc(&g.samples[0]);
    if (r == nvml::kSuccess) r = api_.gpmSampleAlloc(&g.samples[1]);
    if (r != nvml::kSuccess) {
      freeGpm(g);
      publish(statusForNvml(r), r, nullptr, nullptr, nullptr);
      return;
    }
    g.current = 0;
    g.havePrevious = false;
    g.haveLast = false;
  }
  const int64_t now = monoNowNs();
  if (g.havePrevious && now - g.previousEndNs < kMinPairNs) {
    publishLast();  // too soon for a pair: the driver would read one internal refresh twice
    return;
  }
  nvml::Return r = call("nvmlGpmMigSampleGet", device, [&] { return api_.gpmMigSampleGet(p.handle, g.gpuInstanceId, g.samples[g.current]); });
  g.previousEndNs = monoNowNs();
  if (r != nvml::kSuccess) {
    g.havePrevious = false;
    g.haveLast = false;
    if (r == nvml::kErrorNotSupported) g.code = r;  // remembered until the next listing
    publish(statusForNvml(r), r, nullptr, nullptr, nullptr);
    return;
  }
  if (!g.havePrevious) {
    g.havePrevious = true;
    g.current ^= 1;
    publishLast();
    return;
  }
  request_.version = nvml::kGpmMetricsGetVersion;
  request_.sample1 = g.samples[g.current ^ 1];
  request_.sample2 = g.samples[g.current];
  request_.numMetrics = kGpmFields;
  for (size_t f = 0; f < kGpmFields; ++f) {
    request_.metrics[f] = nvml::GpmMetric{};
    request_.metrics[f].metricId = kGpmMigFields[f].metric;
  }
  r = call("nvmlGpmMetricsGet", device, [&] { return api_.gpmMetricsGet(&request_); });
  g.current ^= 1;
  for (size_t f = 0; f < kGpmFields; ++f) {
    const nvml::Return mr = r != nvml::kSuccess ? r : request_.metrics[f].nvmlReturn;
    const double v = request_.metrics[f].value * kPercent;
    g.lastStatus[f] = mr == nvml::kSuccess ? (std::isfinite(v) ? Status::Ok : Status::Error) : statusForNvml(mr);
    g.lastValue[f] = mr == nvml::kSuccess ? v : kNaN;
    g.lastCode[f] = mr == nvml::kSuccess && !std::isfinite(v) ? kCodeNotFinite : mr;
  }
  g.haveLast = true;
  publishLast();
}

void MigSource::sample(size_t device, DeviceRow& row, int migMode, bool lost, int64_t nowNs) {
  Parent& p = parents_[device];
  for (size_t s = 0; s < kMaxMigDevices; ++s) row.migMeta(s, kMigPresent) = 0;
  row.meta(kDevMigCount) = 0;
  row.meta(kDevMigCode) = 0;
  row.meta(kDevMigTruncated) = 0;
  row.meta(kDevMigGeneration) = static_cast<double>(p.generation);
  if (lost || p.handle == nullptr) {
    // A lost GPU's MIG device handles (and GPM buffers) belong to the device instance that is gone:
    // listed afresh once it is back (lastMode -1 makes any mode it answers a change).
    forget(p);
    p.lastMode = -1;
    p.code = 0;
    p.nextListingNs = 0;
    return;
  }
  if (migMode != p.lastMode) {
    forget(p);
    p.lastMode = migMode;
    p.code = 0;
    p.nextListingNs = 0;
  }
  if (migMode != 1) return;
  if (nowNs >= p.nextListingNs) {
    std::vector<MigDevice> migs;
    bool truncated = false;
    listings_.fetch_add(1, std::memory_order_relaxed);
    p.lastListingNs = nowNs;
    const int32_t code = list(device, p, migs, truncated);
    if (code != 0) {
      forget(p);
      p.code = code;
      p.nextListingNs = nowNs + options_.retryNs;
    } else {
      p.code = 0;
      applyListing(device, p, std::move(migs), truncated);
      p.nextListingNs = nowNs + options_.recheckNs;
    }
  }
  row.meta(kDevMigGeneration) = static_cast<double>(p.generation);
  if (p.code != 0) {
    row.meta(kDevMigCode) = p.code;
    return;
  }
  if (!p.gpmProbed) probeGpm(device, p);

  processes_.clear();
  bool gone = false;
  const size_t n = std::min(p.migs.size(), kMaxMigDevices);
  for (size_t s = 0; s < n; ++s) {
    const MigDevice& m = p.migs[s];
    row.migMeta(s, kMigPresent) = 1;
    row.migMeta(s, kMigGpuInstanceId) = m.gpuInstanceId;
    row.migMeta(s, kMigComputeInstanceId) = m.computeInstanceId;
    row.migMeta(s, kMigSliceCount) = m.slices;
    row.migMeta(s, kMigMemorySizeMB) = m.memoryMiB;
    row.migMeta(s, kMigIndex) = m.index;

    // Memory of the instance.
    nvml::Return r;
    double total = kNaN, used = kNaN, free = kNaN;
    if (api_.deviceGetMemoryInfoV2 != nullptr) {
      nvml::MemoryV2 mem{};
      mem.version = nvml::kMemoryV2Version;
      r = call("nvmlDeviceGetMemoryInfo_v2", device, [&] { return api_.deviceGetMemoryInfoV2(m.handle, &mem); });
      if (r == nvml::kSuccess) total = static_cast<double>(mem.total), used = static_cast<double>(mem.used), free = static_cast<double>(mem.free);
    } else if (api_.deviceGetMemoryInfo != nullptr) {
      nvml::Memory mem{};
      r = call("nvmlDeviceGetMemoryInfo", device, [&] { return api_.deviceGetMemoryInfo(m.handle, &mem); });
      if (r == nvml::kSuccess) total = static_cast<double>(mem.total), used = static_cast<double>(mem.used), free = static_cast<double>(mem.free);
    } else {
      r = kCodeSymbolMissing;
    }
    gone = gone || handleGone(r);
    for (auto [field, value] : {std::pair<MigField, double>{MigField::MemoryTotalBytes, total},
                                {MigField::MemoryUsedBytes, used},
                                {MigField::MemoryFreeBytes, free}}) {
      if (r == nvml::kSuccess) {
        row.setMig(s, field, value, Source::Nvml);
      } else {
        row.failMig(s, field, statusForNvml(r), Source::Nvml, r);
      }
    }

    // Its processes.
    unsigned int count = 0;
    r = kCodeSymbolMissing;
    if (api_.deviceGetComputeRunningProcessesV2 != nullptr) {
      if (processInfos_.size() < kMaxProcesses) processInfos_.resize(kMaxProcesses);
      for (int attempt = 0; attempt < 2; ++attempt) {
        count = static_cast<unsigned int>(processInfos_.size());
        r = call(api_.deviceGetComputeRunningProcessesV2Symbol, device,
                 [&] { return api_.deviceGetComputeRunningProcessesV2(m.handle, &count, processInfos_.data()); });
        if (r != nvml::kErrorInsufficientSize) break;
        processInfos_.resize(std::min<size_t>(count + 16, kProcessBufferMax));
      }
    }
    gone = gone || handleGone(r);
    if (r == nvml::kSuccess) {
      const size_t listed = std::min<size_t>(count, processInfos_.size());
      double sum = 0;
      size_t withMemory = 0;
      for (size_t i = 0; i < listed; ++i) {
        const nvml::ProcessInfoV2& info = processInfos_[i];
        const double bytes = info.usedGpuMemory == nvml::kValueNotAvailable ? kNaN : static_cast<double>(info.usedGpuMemory);
        if (!std::isnan(bytes)) sum += bytes, ++withMemory;
        // The instance ids are the MIG device's whatever the entry says (older drivers leave them unset).
        processes_.push_back({static_cast<double>(info.pid), bytes, static_cast<double>(m.gpuInstanceId),
                              static_cast<double>(m.computeInstanceId)});
      }
      row.setMig(s, MigField::ProcessCount, count, Source::Nvml);
      if (count > 0 && withMemory == 0) {
        row.failMig(s, MigField::GpuProcessMemoryBytes, Status::NotSupported, Source::Nvml, nvml::kErrorNotSupported);
      } else {
        row.setMig(s, MigField::GpuProcessMemoryBytes, sum, Source::Nvml);
      }
    } else {
      row.failMig(s, MigField::ProcessCount, statusForNvml(r), Source::Nvml, r);
      row.failMig(s, MigField::GpuProcessMemoryBytes, statusForNvml(r), Source::Nvml, r);
    }
  }
  // Activity per GPU instance (its compute instances share it).
  std::vector<size_t> slots;
  for (GpmInstance& g : p.gpm) {
    slots.clear();
    for (size_t s = 0; s < n; ++s) {
      if (p.migs[s].gpuInstanceId == g.gpuInstanceId) slots.push_back(s);
    }
    if (!slots.empty()) sampleGpm(device, p, g, row, slots);
  }
  row.meta(kDevMigCount) = static_cast<double>(n);
  row.meta(kDevMigTruncated) = p.truncated ? 1 : 0;
  // A MIG device handle that is no longer valid: its instance was destroyed. List again soon, but
  // not sooner than kMinRelistNs after the last listing (a driver that keeps failing is not hammered).
  if (gone) p.nextListingNs = std::min(p.nextListingNs, p.lastListingNs + kMinRelistNs);
  // In MIG mode the GPU's own process list needs privileges: without them, its processes are the
  // MIG devices' (each with its instance ids).
  if (row.meta(kDevProcessCount) == 0 && row.status(Field::ProcessCount) != Status::Ok && !processes_.empty()) {
    writeProcesses(row, processes_, false);
  }
}

}  // namespace gt
