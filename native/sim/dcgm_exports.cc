// The simulator's DCGM: the entry points of libdcgm.so.4 that a DCGM client uses to watch fields
// (embedded host engine or a connection to nv-hostengine, GPU groups, field groups, watches,
// latest values), answering from the same scenario model as the simulated NVML.
//
// Written independently of native/vendor/dcgm_abi.h on purpose: field values are written at the
// byte offsets of NVIDIA's dcgmFieldValue_v1 (read from NVIDIA/DCGM's dcgm_structs.h), not
// through a shared struct, so a layout mistake on either side shows up as wrong numbers.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "model.h"
#include "sim_state.h"

#define SIM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// dcgmReturn_t values the simulator answers with.
constexpr int kOk = 0;
constexpr int kBadParam = -1;
constexpr int kInitError = -7;
constexpr int kUninitialized = -10;
constexpr int kNotWatched = -16;
constexpr int kGpuIsLost = -18;
constexpr int kConnectionNotValid = -21;
constexpr int kVersionMismatch = -12;
constexpr int kProfilingNotSupported = -36;
constexpr int kInUse = -34;
constexpr int kProfilingLibraryError = -37;

// dcgmFieldValue_v1: 4120 bytes; version @0 (u32), fieldId @4 (u16), fieldType @6 (u16),
// status @8 (i32), ts @16 (i64, µs since 1970), value union @24 (i64 | f64 | char[256] | blob[4096]).
constexpr size_t kValueSize = 4120;
constexpr uint32_t kValueVersion1 = 4120u | (1u << 24);
constexpr int64_t kInt64Blank = 0x7ffffffffffffff0LL;
constexpr double kFp64Blank = 140737488355328.0;

struct Watch {
  uintptr_t group = 0;
  uintptr_t fieldGroup = 0;
  int64_t sinceUs = 0;
  int64_t updateFreqUs = 0;
};

// What the host engine remembers between two updates of a device: for rates.
struct RateBase {
  bool have = false;
  double atMs = 0;
  gtsim::Counters counters;
};

struct DcgmState {
  std::mutex mutex;
  int initCount = 0;
  std::set<uintptr_t> handles;
  std::set<uintptr_t> hostengineHandles;  // the subset connected to a running nv-hostengine
  uintptr_t nextId = 0x100;
  std::map<uintptr_t, std::vector<unsigned int>> groups;
  std::map<uintptr_t, std::vector<unsigned short>> fieldGroups;
  std::vector<Watch> watches;
  int64_t forcedUpdateUs = 0;  // last dcgmUpdateAllFields
  std::map<unsigned int, RateBase> rates;
};

DcgmState*& dcgmPointer() {
  static DcgmState* s = nullptr;
  return s;
}

// Immortal while the library is loaded, like the NVML state; gtsim_release frees it before a
// private copy is unloaded.
DcgmState& dcgm() {
  DcgmState*& s = dcgmPointer();
  if (s == nullptr) s = new DcgmState();
  return *s;
}

gtsim::Model* model() { return gtsim::state().model.get(); }

bool present() {
  gtsim::Model* m = model();
  return m != nullptr && m->scenario().dcgm.present;
}

// Runs the fault schedule (hangs, slowness, "dcgm_down", errors named by call); 0 to proceed.
int faults(const char* call, int device) {
  gtsim::Model* m = model();
  if (m == nullptr) return kUninitialized;
  const gtsim::FaultAction a = m->faultFor(call, device);
  if (a.sleepForever) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (a.sleepMs > 0) std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(a.sleepMs * 1000)));
  if (a.returnCode == 15) return kGpuIsLost;  // a GPU lost to NVML is lost to DCGM too
  return a.returnCode;
}

bool validHandle(DcgmState& s, uintptr_t h) { return s.initCount > 0 && s.handles.count(h) > 0; }

bool isProfilingField(unsigned short id) { return id >= 1001 && id <= 1012; }

bool contains(const std::vector<int>& v, int x) {
  for (int i : v) {
    if (i == x) return true;
  }
  return false;
}

void put(unsigned char* entry, size_t offset, const void* src, size_t n) { std::memcpy(entry + offset, src, n); }

void writeHeader(unsigned char* entry, unsigned short fieldId, char type, int status, int64_t ts) {
  std::memset(entry, 0, 24 + 16);
  const uint32_t version = kValueVersion1;
  const unsigned short t = static_cast<unsigned short>(type);
  put(entry, 0, &version, 4);
  put(entry, 4, &fieldId, 2);
  put(entry, 6, &t, 2);
  put(entry, 8, &status, 4);
  put(entry, 16, &ts, 8);
}

void writeDouble(unsigned char* entry, double v) { put(entry, 24, &v, 8); }
void writeInt64(unsigned char* entry, int64_t v) { put(entry, 24, &v, 8); }

}  // namespace

namespace gtsim {

// Frees the DCGM state (called by gtsim_release, after every client has shut DCGM down).
bool releaseDcgmState() {
  DcgmState*& s = dcgmPointer();
  if (s == nullptr) return true;
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    if (s->initCount > 0) return false;
  }
  delete s;
  s = nullptr;
  return true;
}

}  // namespace gtsim

SIM_EXPORT int dcgmInit() {
  if (!present()) return kInitError;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  ++s.initCount;
  return kOk;
}

SIM_EXPORT int dcgmShutdown() {
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount <= 0) return kUninitialized;
  if (--s.initCount == 0) {
    s.handles.clear();
    s.hostengineHandles.clear();
    s.groups.clear();
    s.fieldGroups.clear();
    s.watches.clear();
    s.rates.clear();
  }
  return kOk;
}

SIM_EXPORT int dcgmStartEmbedded(int opMode, uintptr_t* handle) {
  if (handle == nullptr || (opMode != 1 && opMode != 2)) return kBadParam;
  if (const int f = faults("dcgmStartEmbedded", -1)) return f;
  gtsim::Model* m = model();
  if (m == nullptr || !m->scenario().dcgm.embedded) return kInitError;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount <= 0) return kUninitialized;
  *handle = s.nextId++;
  s.handles.insert(*handle);
  return kOk;
}

SIM_EXPORT int dcgmStopEmbedded(uintptr_t handle) {
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.hostengineHandles.erase(handle);
  return s.handles.erase(handle) > 0 ? kOk : kBadParam;
}

namespace {

bool listedHostEngine(const gtsim::Model& m, const char* address) {
  for (const std::string& a : m.scenario().dcgm.hostengines) {
    if (a == address) return true;
  }
  return false;
}

}  // namespace

// Not part of DCGM: whether a simulated nv-hostengine listens at `address` (TCP "host:port" or a
// unix socket path), the simulator's stand-in for the socket-level check a client makes before
// asking DCGM to connect (see DcgmSource). 1 yes, 0 no.
SIM_EXPORT int gtsim_dcgm_listening(const char* address, int isUnixSocket) {
  (void)isUnixSocket;
  gtsim::Model* m = model();
  return m != nullptr && address != nullptr && m->scenario().dcgm.present && listedHostEngine(*m, address) ? 1 : 0;
}

// dcgmConnectV2Params_v2: 16 bytes, version @0, persistAfterDisconnect @4, timeoutMs @8,
// addressIsUnixSocket @12; version = 16 | 2 << 24.
SIM_EXPORT int dcgmConnect_v2(const char* address, const void* params, uintptr_t* handle) {
  if (address == nullptr || params == nullptr || handle == nullptr) return kBadParam;
  uint32_t version = 0;
  std::memcpy(&version, params, 4);
  if (version != (16u | (2u << 24)) && version != (8u | (1u << 24))) return kVersionMismatch;
  if (const int f = faults("dcgmConnect_v2", -1)) return f;
  gtsim::Model* m = model();
  if (m == nullptr) return kUninitialized;
  if (!listedHostEngine(*m, address)) {
    // DCGM's client retries every 50 ms until the timeout has passed (0: 5 s), then answers
    // CONNECTION_NOT_VALID: NVIDIA/DCGM dcgmlib/src/DcgmClientHandler.cpp lines 222-277 (72fa3fe).
    uint32_t timeoutMs = 0;
    if (version == (16u | (2u << 24))) std::memcpy(&timeoutMs, static_cast<const unsigned char*>(params) + 8, 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(timeoutMs == 0 ? 5000 : timeoutMs));
    return kConnectionNotValid;
  }
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount <= 0) return kUninitialized;
  *handle = s.nextId++;
  s.handles.insert(*handle);
  s.hostengineHandles.insert(*handle);
  return kOk;
}

SIM_EXPORT int dcgmDisconnect(uintptr_t handle) { return dcgmStopEmbedded(handle); }

SIM_EXPORT int dcgmGetAllSupportedDevices(uintptr_t handle, unsigned int* ids, int* count) {
  if (ids == nullptr || count == nullptr) return kBadParam;
  if (const int f = faults("dcgmGetAllSupportedDevices", -1)) return f;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle)) return kBadParam;
  const size_t n = std::min<size_t>(model()->deviceCount(), 32);  // DCGM_MAX_NUM_DEVICES
  // DCGM numbers GPUs in its own order: the simulator lists them back to front, so a client that
  // assumes DCGM's gpu id is NVML's index reads the wrong GPU.
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<unsigned int>(n - 1 - i);
  *count = static_cast<int>(n);
  return kOk;
}

SIM_EXPORT int dcgmGroupCreate(uintptr_t handle, int type, const char* name, uintptr_t* group) {
  if (name == nullptr || group == nullptr || (type != 0 && type != 1)) return kBadParam;
  if (const int f = faults("dcgmGroupCreate", -1)) return f;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle)) return kBadParam;
  *group = s.nextId++;
  std::vector<unsigned int>& members = s.groups[*group];
  if (type == 0) {
    for (size_t i = 0; i < model()->deviceCount(); ++i) members.push_back(static_cast<unsigned int>(i));
  }
  return kOk;
}

SIM_EXPORT int dcgmGroupAddDevice(uintptr_t handle, uintptr_t group, unsigned int gpuId) {
  if (const int f = faults("dcgmGroupAddDevice", -1)) return f;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto g = s.groups.find(group);
  if (!validHandle(s, handle) || g == s.groups.end() || gpuId >= model()->deviceCount()) return kBadParam;
  g->second.push_back(gpuId);
  return kOk;
}

SIM_EXPORT int dcgmGroupDestroy(uintptr_t handle, uintptr_t group) {
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle) || s.groups.erase(group) == 0) return kBadParam;
  return kOk;
}

SIM_EXPORT int dcgmFieldGroupCreate(uintptr_t handle, int count, const unsigned short* ids, const char* name,
                                    uintptr_t* fieldGroup) {
  if (count <= 0 || count > 128 || ids == nullptr || name == nullptr || fieldGroup == nullptr) return kBadParam;
  if (const int f = faults("dcgmFieldGroupCreate", -1)) return f;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle)) return kBadParam;
  *fieldGroup = s.nextId++;
  s.fieldGroups[*fieldGroup].assign(ids, ids + count);
  return kOk;
}

SIM_EXPORT int dcgmFieldGroupDestroy(uintptr_t handle, uintptr_t fieldGroup) {
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle) || s.fieldGroups.erase(fieldGroup) == 0) return kBadParam;
  return kOk;
}

SIM_EXPORT int dcgmWatchFields(uintptr_t handle, uintptr_t group, uintptr_t fieldGroup, long long updateFreqUs,
                               double maxKeepAge, int maxKeepSamples) {
  (void)maxKeepAge;
  (void)maxKeepSamples;
  if (updateFreqUs <= 0) return kBadParam;
  if (const int f = faults("dcgmWatchFields", -1)) return f;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto g = s.groups.find(group);
  auto fg = s.fieldGroups.find(fieldGroup);
  if (!validHandle(s, handle) || g == s.groups.end() || fg == s.fieldGroups.end()) return kBadParam;
  const gtsim::DcgmSpec& spec = model()->scenario().dcgm;
  bool wantsProfiling = false;
  for (unsigned short id : fg->second) wantsProfiling = wantsProfiling || isProfilingField(id);
  if (wantsProfiling) {
    if (!spec.profiling) return kProfilingNotSupported;
    for (unsigned int gpu : g->second) {
      if (contains(spec.noProfilingDevices, static_cast<int>(gpu))) return kProfilingNotSupported;
    }
    // The counters are held by another engine: only a connection to the holder may watch them.
    if (spec.profilingHeld && s.hostengineHandles.count(handle) == 0 && !g->second.empty()) return spec.profilingHeldCode;
  }
  s.watches.push_back({group, fieldGroup, gtsim::wallNowUs(), updateFreqUs});
  return kOk;
}

SIM_EXPORT int dcgmUnwatchFields(uintptr_t handle, uintptr_t group, uintptr_t fieldGroup) {
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle)) return kBadParam;
  for (auto it = s.watches.begin(); it != s.watches.end(); ++it) {
    if (it->group == group && it->fieldGroup == fieldGroup) {
      s.watches.erase(it);
      return kOk;
    }
  }
  return kBadParam;
}

SIM_EXPORT int dcgmUpdateAllFields(uintptr_t handle, int waitForUpdate) {
  (void)waitForUpdate;
  if (const int f = faults("dcgmUpdateAllFields", -1)) return f;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle)) return kBadParam;
  s.forcedUpdateUs = gtsim::wallNowUs();
  return kOk;
}

SIM_EXPORT int dcgmGetLatestValuesForFields(uintptr_t handle, int gpuId, unsigned short* fields, unsigned int count,
                                            void* values) {
  if (fields == nullptr || values == nullptr || count == 0 || count > 1024) return kBadParam;
  gtsim::Model* m = model();
  if (m == nullptr || gpuId < 0 || static_cast<size_t>(gpuId) >= m->deviceCount()) return kBadParam;
  if (const int f = faults("dcgmGetLatestValuesForFields", gpuId)) return f;
  DcgmState& s = dcgm();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!validHandle(s, handle)) return kBadParam;
  const size_t d = static_cast<size_t>(gpuId);
  const int64_t nowUs = gtsim::wallNowUs();
  const gtsim::DcgmSpec& spec = m->scenario().dcgm;

  // A field is watched for this GPU when some watch covers both; its first value exists only
  // after one update cycle (or a forced update) since the watch began.
  auto watchOf = [&](unsigned short id) -> const Watch* {
    for (const Watch& w : s.watches) {
      const auto& members = s.groups[w.group];
      const auto& ids = s.fieldGroups[w.fieldGroup];
      bool hasGpu = false, hasField = false;
      for (unsigned int g : members) hasGpu = hasGpu || g == static_cast<unsigned int>(gpuId);
      for (unsigned short f : ids) hasField = hasField || f == id;
      if (hasGpu && hasField) return &w;
    }
    return nullptr;
  };

  std::lock_guard<std::mutex> modelLock(m->mutex());
  const double atMs = m->nowMs();
  const int64_t k = m->tickAt(atMs);
  const gtsim::Counters now = m->countersAt(d, atMs);
  RateBase& base = s.rates[static_cast<unsigned int>(gpuId)];
  const double seconds = base.have ? (atMs - base.atMs) / 1000.0 : 0;
  const bool haveRate = base.have && seconds > 0;

  unsigned char* out = static_cast<unsigned char*>(values);
  for (unsigned int i = 0; i < count; ++i) {
    unsigned char* entry = out + i * kValueSize;
    const unsigned short id = fields[i];
    const Watch* w = watchOf(id);
    if (w == nullptr) {
      writeHeader(entry, id, 'd', kNotWatched, 0);
      writeDouble(entry, kFp64Blank);
      continue;
    }
    const bool updated = nowUs - w->sinceUs >= w->updateFreqUs || s.forcedUpdateUs >= w->sinceUs;
    if (id == 54) {  // DCGM_FI_DEV_UUID
      writeHeader(entry, id, 's', kOk, nowUs);
      const std::string uuid = m->uuid(d);
      std::memcpy(entry + 24, uuid.c_str(), std::min<size_t>(uuid.size() + 1, 256));
      continue;
    }
    const bool isRate = id >= 1009 && id <= 1012;
    const char type = isRate ? 'i' : 'd';
    if (!isProfilingField(id) || contains(spec.unsupportedFields, id)) {
      writeHeader(entry, id, type, kOk, nowUs);
      if (isRate) writeInt64(entry, kInt64Blank + 2); else writeDouble(entry, kFp64Blank + 2.0);  // NOT_SUPPORTED
      continue;
    }
    if (!updated || (isRate && !haveRate)) {
      writeHeader(entry, id, type, kOk, 0);  // no update cycle yet: blank
      if (isRate) writeInt64(entry, kInt64Blank); else writeDouble(entry, kFp64Blank);
      continue;
    }
    writeHeader(entry, id, type, kOk, nowUs);
    const gtsim::DeviceSpec& dev = m->spec(d);
    switch (id) {
      case 1001: writeDouble(entry, m->activity(d, gtsim::Activity::GrEngine, k)); break;
      case 1002: writeDouble(entry, m->activity(d, gtsim::Activity::SmActive, k)); break;
      case 1003: writeDouble(entry, m->activity(d, gtsim::Activity::SmOccupancy, k)); break;
      case 1004: writeDouble(entry, m->activity(d, gtsim::Activity::Tensor, k)); break;
      case 1005: writeDouble(entry, m->activity(d, gtsim::Activity::Dram, k)); break;
      case 1006: writeDouble(entry, m->activity(d, gtsim::Activity::Fp64, k)); break;
      case 1007: writeDouble(entry, m->activity(d, gtsim::Activity::Fp32, k)); break;
      case 1008: writeDouble(entry, m->activity(d, gtsim::Activity::Fp16, k)); break;
      case 1009:
      case 1010: {
        if (!dev.hasPcie) {
          writeInt64(entry, kInt64Blank + 2);
          break;
        }
        const double bytes = id == 1009 ? now.pcieTxBytes - base.counters.pcieTxBytes : now.pcieRxBytes - base.counters.pcieRxBytes;
        writeInt64(entry, static_cast<int64_t>(bytes / seconds));
        break;
      }
      default: {  // 1011, 1012: NVLink, all links
        if (dev.nvlinks == 0) {
          writeInt64(entry, kInt64Blank + 2);
          break;
        }
        const double kib = id == 1011 ? now.nvlinkTxKiB - base.counters.nvlinkTxKiB : now.nvlinkRxKiB - base.counters.nvlinkRxKiB;
        writeInt64(entry, static_cast<int64_t>(kib * 1024 * dev.nvlinks / seconds));
        break;
      }
    }
  }
  bool askedRate = false;
  for (unsigned int i = 0; i < count; ++i) askedRate = askedRate || (fields[i] >= 1009 && fields[i] <= 1012);
  if (askedRate || !base.have) {
    base.have = true;
    base.atMs = atMs;
    base.counters = now;
  }
  return kOk;
}

SIM_EXPORT const char* errorString(int result) {
  switch (result) {
    case kOk: return "Success";
    case kBadParam: return "Bad parameter passed to function";
    case kInitError: return "DCGM Initialization Error";
    case kUninitialized: return "Uninitialized";
    case kNotWatched: return "Field is not being updated";
    case kGpuIsLost: return "GPU is lost";
    case kConnectionNotValid: return "The connection to the host engine is not valid any longer";
    case kVersionMismatch: return "Version mismatch";
    case kProfilingNotSupported: return "Profiling is not supported for this group of GPUs or GPU";
    case kInUse: return "The requested operation could not be completed because the affected resource is in use";
    case kProfilingLibraryError: return "The third-party Profiling module returned an unrecoverable error";
    default: return nullptr;
  }
}
