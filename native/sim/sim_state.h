// Process-wide simulator state (like a driver's): the configured model and the device handles.
// Allocated once and never freed, so no destructor runs at process exit while a client thread
// may still be inside a call.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "model.h"
#include "nvml_types.h"

struct simNvmlDevice {
  size_t index;
  // MIG device handles (mig.cc): the parent GPU, which instance layout (0: mig.instances,
  // 1: mig.reconfigure.instances) and which entry of it. A whole-GPU handle has parent -1.
  int parent = -1;
  int layout = 0;
  int entry = -1;
};
struct simNvmlEventSet;
struct simNvmlGpmSample;

namespace gtsim {

// The simulated DCGM's state (dcgm_exports.cc): freed by gtsim_release; false while in use.
bool releaseDcgmState();

class SimState {
 public:
  std::atomic<int> initCount{0};
  // NVML calls executing right now, on any thread: shutting NVML down (or unloading a private copy)
  // under one of them is a client bug that a real driver punishes at random (see CallGuard).
  std::atomic<int> callsInFlight{0};
  // Replaced only by configure(), which refuses while any client has NVML initialised.
  std::unique_ptr<Model> model;
  // Live event sets, so a stale or bogus pointer is an error rather than a crash.
  std::mutex eventSetsMutex;
  std::set<simNvmlEventSet*> eventSets;
  std::set<simNvmlGpmSample*> gpmSamples;  // guarded by eventSetsMutex too

  int configure(const std::string& json, std::string& error) {
    std::lock_guard<std::mutex> lock(configureMutex_);
    if (initCount.load() > 0) {
      error = "the simulator is in use (NVML initialised); shut it down before loading another scenario";
      return 1;
    }
    Scenario scenario;
    if (!parseScenario(json, scenario, error)) return 1;
    handles_.clear();
    handles_.resize(scenario.devices.size());
    for (size_t i = 0; i < handles_.size(); ++i) handles_[i].index = i;
    // One MIG device handle per instance of each layout, allocated once: a handle of a layout that
    // is not active (destroyed instances) stays a valid pointer that the driver answers as invalid.
    migHandles_.clear();
    migHandles_.resize(scenario.devices.size() * 2 * kMigEntries);
    for (size_t i = 0; i < migHandles_.size(); ++i) {
      migHandles_[i].index = i;
      migHandles_[i].parent = static_cast<int>(i / (2 * kMigEntries));
      migHandles_[i].layout = static_cast<int>((i / kMigEntries) % 2);
      migHandles_[i].entry = static_cast<int>(i % kMigEntries);
    }
    model = std::make_unique<Model>(std::move(scenario));
    return 0;
  }

  simNvmlDevice_t handle(size_t index) { return &handles_[index]; }
  bool validDevice(simNvmlDevice_t device) const {
    if (device == nullptr || handles_.empty()) return false;
    return device >= handles_.data() && device < handles_.data() + handles_.size();
  }
  size_t deviceIndex(simNvmlDevice_t device) const { return static_cast<size_t>(device - handles_.data()); }

  static constexpr size_t kMigEntries = 16;
  simNvmlDevice_t migHandle(size_t parent, int layout, size_t entry) {
    return &migHandles_[(parent * 2 + static_cast<size_t>(layout)) * kMigEntries + entry];
  }
  // A pointer this library handed out as a MIG device handle (valid or not any more).
  bool isMigHandle(simNvmlDevice_t device) const {
    if (device == nullptr || migHandles_.empty()) return false;
    return device >= migHandles_.data() && device < migHandles_.data() + migHandles_.size();
  }

 private:
  std::mutex configureMutex_;
  std::vector<simNvmlDevice> handles_;
  std::vector<simNvmlDevice> migHandles_;
};

// The state's owner pointer. Immortal on purpose (see above), with one exception: a host that
// loaded a private copy of this library frees it with gtsim_release() just before dlclose, once
// its last call has returned (after dlclose nothing could reach it: it would be a leak per copy).
inline SimState*& statePointer() {
  static SimState* s = new SimState();
  return s;
}

inline SimState& state() {
  SimState*& s = statePointer();
  if (s == nullptr) s = new SimState();  // only after a release, by a host that broke the contract
  return *s;
}

// Counts an entry point as in flight for its whole duration (a hung call stays counted).
class CallGuard {
 public:
  CallGuard() { state().callsInFlight.fetch_add(1); }
  ~CallGuard() { state().callsInFlight.fetch_sub(1); }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;
};

// A client broke the driver's contract (e.g. nvmlShutdown while another thread is inside NVML).
// Always reported on stderr; with GTSIM_STRICT=1 in the environment the process aborts, so a test
// cannot miss it.
void contractViolation(const char* what);

}  // namespace gtsim
