// NVML GPM (GPU Performance Monitoring, Hopper and later): the profiling signals DCGM gives,
// without DCGM. One GPM sample per device per interval; each metric is computed between the
// previous and the current sample, so the first interval's values are `pending`.
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

  // Probes every device (support query, two sample buffers, a first sample).
  void probe();
  // Whether GPM works on the device; `code` is the vendor code (or ours) when it does not.
  bool supported(size_t device) const { return devices_[device].supported; }
  int32_t code(size_t device) const { return devices_[device].code; }
  bool anySupported() const;
  // Fields GPM can provide on a supported device.
  static FieldMask provides();

  void sample(size_t device, DeviceRow& row, const FieldMask& want);

 private:
  struct Device {
    nvml::Device handle = nullptr;
    bool supported = false;
    int32_t code = 0;
    nvml::GpmSample samples[2] = {nullptr, nullptr};
    int current = 0;       // index of the buffer the next sample goes into
    bool havePrevious = false;
  };
  bool symbolsPresent() const;

  const nvml::Api& api_;
  CallTracker& tracker_;
  std::vector<Device> devices_;
  nvml::GpmMetricsGet request_{};  // reused: ~6 KiB, kept off the stack and out of the hot path
};

}  // namespace gt
