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

// A cumulative counter turned into a per-second rate between two readings. NVML's counters "can
// be wrapped" (nvml.h on the PCIe byte counts): a counter wraps at its width (the value type the
// driver answered with: 16, 32 or 64 bits), and a wrap between two samples is still a rate.
class CounterRate {
 public:
  // `maxPerSecond`: a rate above it cannot be traffic (a driver reload or reset moved the counter
  // back), so the measurement restarts instead of publishing it.
  CounterRate() = default;
  explicit CounterRate(double maxPerSecond) : maxPerSecond_(maxPerSecond) {}
  // Returns true and sets *rate when a rate can be computed; false on the first reading, after a
  // change of width, or when the difference is impossible (then this reading is the new start).
  bool update(uint64_t raw, unsigned bits, int64_t atNs, double* rate);
  void reset() { has_ = false; }

 private:
  // 32 bytes (was 40 in declaration order): the sampler reads 2 per NVLink link per sample, after
  // sleeping a whole interval with cold caches, so the bytes per link are what it costs.
  uint64_t last_ = 0;
  int64_t atNs_ = 0;
  double maxPerSecond_ = 1e13;
  uint8_t bits_ = 64;
  bool has_ = false;
};

static_assert(sizeof(CounterRate) == 32, "two counters per 64-byte line (NvmlSource::Device::LinkRates)");

// The number in a field value, whatever type the driver answered with. False (and *code says why:
// unknownValueTypeCode(type)) for a type this build does not know.
bool fieldValueNumber(const nvml::FieldValue& fv, double* value, int32_t* code);
// The raw counter bits of an integer field value and its width; false for a double or unknown type.
bool fieldValueCounter(const nvml::FieldValue& fv, uint64_t* raw, unsigned* bits);

// Maps an NVML return code onto a field status.
Status statusForNvml(nvml::Return code);

// A process the driver listed on a GPU (or on one of its MIG devices).
struct ListedProcess {
  double pid;
  double usedMemoryBytes;  // NaN: the driver cannot tell
  double gpuInstance;      // -1: not in a MIG instance
  double computeInstance;
};
// Writes a device's process block: the kMaxProcesses using the most memory (sorts `list`), the
// count kept and whether more were running (`moreThanListed`: the driver said so).
void writeProcesses(DeviceRow& row, std::vector<ListedProcess>& list, bool moreThanListed);

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
  // Links NVML reports for the device (0: no NVLink, whatever another source says).
  size_t linkCount(size_t device) const { return devices_[device].links.size(); }
  nvml::Device handle(size_t device) const { return devices_[device].handle; }

 private:
  // Calls whose NOT_SUPPORTED answer is remembered so they are not asked again every sample.
  enum CallId : size_t {
    kCallClockSm, kCallClockMem, kCallClockGr, kCallMaxSm, kCallMaxMem, kCallMaxGr,
    kCallEventReasons, kCallPower, kCallPowerLimit, kCallEnergy, kCallTemperature, kCallFan,
    kCallPstate, kCallUtilization, kCallMemory, kCallPcieGen, kCallPcieWidth, kCallEccVolCorr,
    kCallEccVolUnc, kCallEccAggCorr, kCallEccAggUnc, kCallFieldValues, kCallPcieThroughput,
    kCallProcesses, kCallEncoder, kCallDecoder, kCallMigMode, kCallCount
  };

  struct Device {
    nvml::Device handle = nullptr;
    int index = 0;
    bool lost = false;
    int64_t nextRetryNs = 0;
    int32_t lostCode = 0;
    bool lostThisSample = false;
    // Calls that answered NOT_SUPPORTED, not asked again until something that could change the
    // answer happens: the MIG mode changes, or the GPU comes back after a loss (a reset).
    std::bitset<kCallCount> unsupported;
    int migMode = -1;  // -1 unknown / no MIG, 0 disabled, 1 enabled
    std::vector<unsigned int> links;  // link indices that exist
    // Link states are read from the field-values call (NVML_FI_DEV_NVLINK_GET_STATE) rather than a
    // call per link: set at open where the field agreed with nvmlDeviceGetNvLinkState on every link.
    bool nvlinkStateField = false;
    // Plausibility caps: no PCIe link moves 1 TB/s, no NVLink link 1 TB/s (NVLink 5: 100 GB/s).
    CounterRate pcieTx{1e12}, pcieRx{1e12};
    // A link's two counters side by side: one 64-byte line per link, read together every sample.
    struct alignas(64) LinkRates {
      CounterRate tx, rx;
    };
    std::array<LinkRates, kMaxLinks> nvlink;
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
  bool stateFieldAgrees(const Device& d, const std::vector<int>& states);
  nvml::Return nvlinkState(Device& d, unsigned int link, const nvml::FieldValue* fv, int* state);
  void sampleProcesses(Device& d, DeviceRow& row, const FieldMask& want);
  void sampleMigMode(Device& d, DeviceRow& row);
  void resetCounters(Device& d);
  void putFieldValue(DeviceRow& row, Field f, const nvml::FieldValue& fv);

  const nvml::Api& api_;
  CallTracker& tracker_;
  Options options_;
  std::vector<Device> devices_;
  std::vector<nvml::FieldValue> fieldValues_;       // reused request/answer buffer
  std::vector<nvml::ProcessInfoV2> processesV2_;    // reused
  std::vector<nvml::ProcessInfoV1> processesV1_;    // reused
  std::vector<ListedProcess> listed_;               // reused
};

}  // namespace gt
