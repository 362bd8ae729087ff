// MIG (Multi-Instance GPU): the MIG devices of a GPU in MIG mode as entities under it, each with
// its own memory, processes and activity. Plain C++, driven by the sampling thread after the NVML
// source has sampled the GPU (it reads the MIG mode the NVML source read).
//
// How the driver is asked (nvml.h), and how often:
//  - listing: nvmlDeviceGetMaxMigDeviceCount, then nvmlDeviceGetMigDeviceHandleByIndex for every
//    slot (NOT_FOUND is an empty slot, not the end), and per MIG device its GPU / compute instance
//    ids, UUID and attributes (slices, memory size: the profile name, e.g. 1g.10gb). Done when the
//    GPU enters MIG mode or comes back after a loss, and then every `recheckNs` to see instances
//    created or destroyed (a changed layout is a new generation). A listing that fails is
//    remembered with its code and not tried again until the MIG mode changes or `retryNs` passed:
//    dcgm-exporter #599 showed uncached MIG lookup failures keeping 10 cores busy.
//  - per sample, per MIG device: its memory (nvmlDeviceGetMemoryInfo_v2 on the MIG device handle:
//    "Per-instance information can be queried by using specific MIG device handles") and its
//    processes (nvmlDeviceGetComputeRunningProcesses_v3 on it). A call that says the handle is
//    invalid (the instance was destroyed) brings the next listing forward, to no sooner than one
//    second after the last one.
//  - activity per GPU instance from NVML GPM (nvmlGpmMigSampleGet, Hopper and later), each metric
//    computed between two samples of the instance at least 100 ms apart ("The interval between two
//    nvmlGpmMigSampleGet() calls should be greater than 100ms due to the internal sample refresh
//    rate"); between pairs the last pair's values are published again.
#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/nvml_api.h"
#include "nvml_source.h"

namespace gt {

class MigSource {
 public:
  struct Options {
    int64_t recheckNs = 10'000'000'000;  // how often a listed layout is checked for changes
    int64_t retryNs = 60'000'000'000;    // how long a failed listing is remembered
  };
  static constexpr int64_t kMinPairNs = 100'000'000;  // GPM: samples of an instance at least this far apart
  static constexpr int64_t kMinRelistNs = 1'000'000'000;  // an invalid handle lists again, at most this often

  MigSource(const nvml::Api& api, CallTracker& tracker, std::vector<nvml::Device> parents, Options options);
  ~MigSource();  // frees the GPM sample buffers (NVML must still be up)
  MigSource(const MigSource&) = delete;
  MigSource& operator=(const MigSource&) = delete;

  // Fills the MIG slots and MIG meta of one GPU's row. `migMode` as the NVML source read it this
  // sample (1 on, 0 off, -1 no MIG); `lost`: the GPU is lost (its MIG devices are forgotten). When
  // the GPU's own process list could not be read (MIG mode without privileges), the MIG devices'
  // processes are written to its process block (with their instance ids).
  void sample(size_t device, DeviceRow& row, int migMode, bool lost, int64_t nowNs);

  // The UUID and profile name ("1g.10gb"; "" unknown) of each MIG device in the frame's slot
  // order, and the generation they belong to (kDevMigGeneration). Any thread.
  struct Names {
    uint64_t generation = 0;
    std::vector<std::string> uuids;
    std::vector<std::string> profiles;
  };
  Names names(size_t device) const;

  // Listings attempted since open (every GPU), for stats and tests.
  uint64_t listings() const { return listings_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kGpmFields = 8;
  struct MigDevice {
    nvml::Device handle = nullptr;
    unsigned int index = 0;
    unsigned int gpuInstanceId = 0;
    unsigned int computeInstanceId = 0;
    int slices = -1;
    double memoryMiB = -1;
    std::string uuid;
    std::string profile;
  };
  // GPM state per GPU instance (several compute instances of one GPU instance share it).
  struct GpmInstance {
    unsigned int gpuInstanceId = 0;
    nvml::GpmSample samples[2] = {nullptr, nullptr};
    int current = 0;
    bool havePrevious = false;
    int64_t previousEndNs = 0;
    bool haveLast = false;
    int32_t code = 0;  // non-zero: GPM failed for this instance (the code), values not read
    std::array<Status, kGpmFields> lastStatus{};
    std::array<double, kGpmFields> lastValue{};
    std::array<int32_t, kGpmFields> lastCode{};
  };
  struct Parent {
    nvml::Device handle = nullptr;
    int lastMode = -1;
    bool listed = false;       // `migs` is the current layout
    int32_t code = 0;          // why the last listing failed (0: it did not)
    int64_t nextListingNs = 0;  // when to list again (a recheck, or the retry after a failure)
    int64_t lastListingNs = 0;
    bool truncated = false;
    uint64_t generation = 0;
    std::vector<MigDevice> migs;
    std::vector<GpmInstance> gpm;
    int32_t gpmCode = 0;       // 0 GPM per instance works; else why not (vendor code, kCodeSymbolMissing)
    bool gpmProbed = false;
  };

  // Lists the MIG devices of a GPU; returns the vendor code of the call that failed (0: listed).
  int32_t list(size_t device, Parent& p, std::vector<MigDevice>& out, bool& truncated);
  void applyListing(size_t device, Parent& p, std::vector<MigDevice>&& migs, bool truncated);
  void forget(Parent& p);
  void freeGpm(GpmInstance& g);
  void probeGpm(size_t device, Parent& p);
  void sampleGpm(size_t device, Parent& p, GpmInstance& g, DeviceRow& row, const std::vector<size_t>& slots);
  template <typename Fn>
  nvml::Return call(const char* symbol, size_t device, Fn&& fn);

  const nvml::Api& api_;
  CallTracker& tracker_;
  Options options_;
  std::vector<Parent> parents_;
  mutable std::mutex namesMutex_;
  std::vector<Names> names_;
  std::atomic<uint64_t> listings_{0};
  std::vector<ListedProcess> processes_;           // reused
  std::vector<nvml::ProcessInfoV2> processInfos_;  // reused
  nvml::GpmMetricsGet request_{};                  // reused (large)
};

}  // namespace gt
