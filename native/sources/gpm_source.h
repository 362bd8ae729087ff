// NVML GPM (GPU Performance Monitoring, Hopper and later): the profiling signals DCGM gives,
// without DCGM. Each metric is computed between two GPM samples of a device taken at least
// 100 ms apart (NVIDIA: "The interval between two nvmlGpmSampleGet() calls should be greater
// than 100ms due to the internal sample refresh rate", NVIDIA/go-nvml gen/nvml/nvml.h lines
// 13911-13912), whatever the sampling interval: until the first such pair the fields are
// `pending`; between pairs the last computed values are published again (the latest real
// measurement). A GPU lost and back starts a new pair with fresh sample buffers.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/nvml_api.h"

namespace gt {

class GpmSource {
 public:
  GpmSource(const nvml::Api& api, CallTracker& tracker, std::vector<nvml::Device> devices);
  ~GpmSource();
  GpmSource(const GpmSource&) = delete;
  GpmSource& operator=(const GpmSource&) = delete;

  // The least time between the end of one nvmlGpmSampleGet and the start of the next on a
  // device (measured that way, the driver's own interval between the reads is at least as long).
  static constexpr int64_t kMinPairNs = 100'000'000;
  static constexpr size_t kFieldSlots = 12;  // the GPM fields (kGpmFields in gpm_source.cc)

  // Probes every device (support query, two sample buffers, a first sample).
  void probe();
  // Whether GPM works on the device; `code` is the vendor code (or ours) when it does not.
  bool supported(size_t device) const { return devices_[device].supported; }
  int32_t code(size_t device) const { return devices_[device].code; }
  bool anySupported() const;
  // Fields GPM can provide on a supported device.
  static FieldMask provides();

  // Fills the wanted GPM fields of a device that NVML does not report lost: a new pair when the
  // previous sample is at least kMinPairNs old, else the last pair's values again.
  void sample(size_t device, DeviceRow& row, const FieldMask& want);
  // The device is lost (NVML says so): forget its pair and values; its sample buffers belong to
  // the device instance that is gone, so they are freed and allocated again when it is back.
  void deviceLost(size_t device);

 private:
  struct Device {
    nvml::Device handle = nullptr;
    bool supported = false;
    int32_t code = 0;
    nvml::GpmSample samples[2] = {nullptr, nullptr};
    int current = 0;       // index of the buffer the next sample goes into
    bool havePrevious = false;
    int64_t previousEndNs = 0;  // when the read of the previous sample returned
    bool reallocate = false;    // buffers from before a loss: free and allocate before the next read
    // The last pair's answers, published again until the next pair.
    bool haveLast = false;
    std::array<Status, kFieldSlots> lastStatus{};
    std::array<double, kFieldSlots> lastValue{};
    std::array<int32_t, kFieldSlots> lastCode{};
  };
  bool symbolsPresent() const;
  nvml::Return readSample(size_t index, Device& d);
  void freeSamples(Device& d);
  void publishLast(const Device& d, DeviceRow& row, const FieldMask& want) const;

  const nvml::Api& api_;
  CallTracker& tracker_;
  std::vector<Device> devices_;
  nvml::GpmMetricsGet request_{};  // reused: ~6 KiB, kept off the stack and out of the hot path
};

}  // namespace gt
