// The NVML backend: discovers devices and fills their rows, one vendor call at a time, saying per
// field whether the value is real. Plain C++ (no N-API), driven by the sampling thread.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

#include "../sampler/call_tracker.h"
#include "../sampler/sample.h"
#include "../vendor/nvml_api.h"
#include "device_info.h"

namespace gt {

// A cumulative counter turned into a per-second rate between two readings.
class CounterRate {
 public:
  // Returns true and sets *rate when a rate can be computed; false on the first reading or when the
  // counter went backwards (driver reload, wrap), which restarts the measurement.
  bool update(double value, int64_t atNs, double* rate);
  void reset() { has_ = false; }

 private:
  bool has_ = false;
  double last_ = 0;
  int64_t atNs_ = 0;
};

// Maps an NVML return code onto a field status.
Status statusForNvml(nvml::Return code);

class NvmlSource {
 public:
  // Index of the first per-link entry in the field-values request.
  static constexpr size_t kFirstLinkValue = 10;

  struct Options {
    int64_t lostRetryNs = 5'000'000'000;      // how often a lost GPU is probed again
    int64_t slowCallMinGapNs = 1'000'000'000;  // min gap between calls that block ~20 ms in the driver
  };

  NvmlSource(const nvml::Api& api, CallTracker& tracker, Options options);

  // Enumerates devices and reads their static facts. On failure returns the NVML code and names the
  // call that failed; a device whose facts cannot be read is still listed (with what is known).
  nvml::Return discover(std::vector<DeviceInfo>& devices, SystemInfo& system, std::string& failedCall);

  // Fields this backend can ever provide (what it actually provides is said per sample).
  static FieldMask provides();

  // Fills the fields in `want` for device `device`. Never throws; every field in `want` ends with a
  // status. Updates the device state (ok / lost) in the row's meta.
  void sample(size_t device, DeviceRow& row, const FieldMask& want, int64_t nowNs);

  size_t deviceCount() const { return devices_.size(); }
  bool deviceLost(size_t device) const { return devices_[device].lost; }
  nvml::Device handle(size_t device) const { return devices_[device].handle; }

 private:
  // Calls whose NOT_SUPPORTED answer is remembered so they are not asked again every sample.
  enum CallId : size_t {
    kCallClockSm, kCallClockMem, kCallClockGr, kCallMaxSm, kCallMaxMem, kCallMaxGr,
    kCallEventReasons, kCallPower, kCallPowerLimit, kCallEnergy, kCallTemperature, kCallFan,
    kCallPstate, kCallUtilization, kCallMemory, kCallPcieGen, kCallPcieWidth, kCallEccVolCorr,
    kCallEccVolUnc, kCallEccAggCorr, kCallEccAggUnc, kCallFieldValues, kCallPcieThroughput,
    kCallProcesses, kCallEncoder, kCallDecoder, kCallCount
  };

  struct Device {
    nvml::Device handle = nullptr;
    int index = 0;
    bool lost = false;
    int64_t nextRetryNs = 0;
    int32_t lostCode = 0;
    bool lostThisSample = false;
    std::bitset<kCallCount> unsupported;
    std::vector<unsigned int> links;  // link indices that exist
    CounterRate pcieTx, pcieRx;
    std::array<CounterRate, kMaxLinks> nvlinkTx, nvlinkRx;
    // Last answer of the slow PCIe throughput call, re-published between calls.
    int64_t pcieThroughputAtNs = 0;
    nvml::Return pcieThroughputCode = nvml::kErrorNotSupported;
    double pcieTxBps = kNaN, pcieRxBps = kNaN;
    bool pcieCountersWork = true;  // field-value byte counters answered at least once
  };

  template <typename Fn>
  nvml::Return invoke(Device& d, CallId id, const char* symbol, bool present, Fn&& fn);
  void put(DeviceRow& row, Field f, nvml::Return code, double value);

  void sampleClocks(Device& d, DeviceRow& row, const FieldMask& want);
  void samplePowerThermal(Device& d, DeviceRow& row, const FieldMask& want);
  void sampleUtilMemory(Device& d, DeviceRow& row, const FieldMask& want);
  void samplePcie(Device& d, DeviceRow& row, const FieldMask& want, int64_t nowNs,
                  const nvml::FieldValue* pcieTx, const nvml::FieldValue* pcieRx);
  void sampleEcc(Device& d, DeviceRow& row, const FieldMask& want);
  void sampleFieldValues(Device& d, DeviceRow& row, const FieldMask& want, int64_t nowNs);
  void sampleNvlink(Device& d, DeviceRow& row, const FieldMask& want, int64_t nowNs,
                    const std::vector<nvml::FieldValue>& values);
  void sampleProcesses(Device& d, DeviceRow& row, const FieldMask& want);

  const nvml::Api& api_;
  CallTracker& tracker_;
  Options options_;
  std::vector<Device> devices_;
  std::vector<nvml::FieldValue> fieldValues_;       // reused request/answer buffer
  std::vector<nvml::ProcessInfoV2> processesV2_;    // reused
  std::vector<nvml::ProcessInfoV1> processesV1_;    // reused
};

}  // namespace gt
