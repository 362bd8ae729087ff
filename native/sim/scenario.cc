#include "scenario.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <set>

#include "json.h"

namespace gtsim {

namespace {

constexpr size_t kMaxDevices = 256;
constexpr size_t kMaxProcesses = 4096;
constexpr size_t kMaxFaults = 1024;
constexpr size_t kMaxSequence = 100000;

// Validating accessors: every error names the JSON path ("devices[0].power.limitWatts").
class Reader {
 public:
  explicit Reader(std::string& error) : error_(error) {}

  bool fail(const std::string& path, const std::string& what) {
    error_ = path + ": " + what;
    return false;
  }

  bool onlyKeys(const Json& obj, const std::string& path, std::initializer_list<const char*> allowed) {
    if (!obj.isObject()) return fail(path, std::string("must be an object, not ") + jsonTypeName(obj.type()));
    std::set<std::string> ok(allowed.begin(), allowed.end());
    for (const auto& [k, v] : obj.members()) {
      if (ok.count(k) == 0) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return fail(path + "." + k, "unknown key (allowed: " + list + ")");
      }
    }
    return true;
  }

  bool number(const Json& obj, const std::string& path, const char* key, double& out, double lo, double hi,
              bool required = false) {
    const Json* v = obj.find(key);
    if (v == nullptr) return required ? fail(path + "." + key, "is required") : true;
    if (!v->isNumber()) return fail(path + "." + key, std::string("must be a number, not ") + jsonTypeName(v->type()));
    if (v->number() < lo || v->number() > hi) {
      return fail(path + "." + key, "must be between " + fmt(lo) + " and " + fmt(hi) + ", not " + fmt(v->number()));
    }
    out = v->number();
    return true;
  }

  template <typename Int>
  bool integer(const Json& obj, const std::string& path, const char* key, Int& out, double lo, double hi,
               bool required = false) {
    double d = static_cast<double>(out);
    if (!number(obj, path, key, d, lo, hi, required)) return false;
    if (std::floor(d) != d) return fail(path + "." + key, "must be a whole number, not " + fmt(d));
    out = static_cast<Int>(d);
    return true;
  }

  bool string(const Json& obj, const std::string& path, const char* key, std::string& out, bool required = false,
              size_t maxLength = 256) {
    const Json* v = obj.find(key);
    if (v == nullptr) return required ? fail(path + "." + key, "is required") : true;
    if (!v->isString()) return fail(path + "." + key, std::string("must be a string, not ") + jsonTypeName(v->type()));
    if (v->string().size() > maxLength) return fail(path + "." + key, "is longer than " + std::to_string(maxLength));
    out = v->string();
    return true;
  }

  bool boolean(const Json& obj, const std::string& path, const char* key, bool& out) {
    const Json* v = obj.find(key);
    if (v == nullptr) return true;
    if (!v->isBool()) return fail(path + "." + key, std::string("must be true or false, not ") + jsonTypeName(v->type()));
    out = v->boolean();
    return true;
  }

  bool oneOf(const Json& obj, const std::string& path, const char* key, std::string& out,
             std::initializer_list<const char*> choices) {
    if (!string(obj, path, key, out)) return false;
    if (obj.find(key) == nullptr) return true;
    std::string list;
    for (const char* c : choices) {
      if (out == c) return true;
      list += (list.empty() ? "" : ", ") + std::string(c);
    }
    return fail(path + "." + key, "must be one of " + list + ", not \"" + out + "\"");
  }

  static std::string fmt(double d) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
  }

 private:
  std::string& error_;
};

bool parseLoad(Reader& r, const Json& j, const std::string& path, LoadShape& load) {
  if (!r.onlyKeys(j, path, {"shape", "min", "max", "periodMs", "phaseMs", "duty", "noise", "stepMs", "values", "value"})) {
    return false;
  }
  std::string shape = "cycle";
  if (!r.oneOf(j, path, "shape", shape, {"constant", "cycle", "square", "sequence"})) return false;
  load.kind = shape == "constant" ? LoadShape::Kind::Constant
              : shape == "square" ? LoadShape::Kind::Square
              : shape == "sequence" ? LoadShape::Kind::Sequence
                                    : LoadShape::Kind::Cycle;
  if (!r.number(j, path, "min", load.min, 0, 1) || !r.number(j, path, "max", load.max, 0, 1) ||
      !r.number(j, path, "periodMs", load.periodMs, 1, 1e9) || !r.number(j, path, "phaseMs", load.phaseMs, -1e12, 1e12) ||
      !r.number(j, path, "duty", load.duty, 0, 1) || !r.number(j, path, "noise", load.noise, 0, 1) ||
      !r.number(j, path, "stepMs", load.stepMs, 1, 1e9)) {
    return false;
  }
  if (load.kind == LoadShape::Kind::Constant) {
    double value = load.min;
    if (!r.number(j, path, "value", value, 0, 1)) return false;
    load.min = load.max = value;
  }
  if (load.min > load.max) return r.fail(path, "min must not be above max");
  if (const Json* values = j.find("values")) {
    if (!values->isArray()) return r.fail(path + ".values", "must be an array of numbers in [0, 1]");
    if (values->items().size() > kMaxSequence) return r.fail(path + ".values", "has too many entries");
    for (size_t i = 0; i < values->items().size(); ++i) {
      const Json& v = values->items()[i];
      if (!v.isNumber() || v.number() < 0 || v.number() > 1) {
        return r.fail(path + ".values[" + std::to_string(i) + "]", "must be a number in [0, 1]");
      }
      load.values.push_back(v.number());
    }
  }
  if (load.kind == LoadShape::Kind::Sequence) {
    if (load.values.empty()) return r.fail(path + ".values", "is required for shape \"sequence\"");
    if (j.find("noise") == nullptr) load.noise = 0;  // a sequence is exact unless asked otherwise
  }
  return true;
}

bool intList(Reader& r, const Json& obj, const std::string& path, const char* key, std::vector<int>& out, double lo,
             double hi) {
  const Json* v = obj.find(key);
  if (v == nullptr) return true;
  const std::string p = path + "." + key;
  if (!v->isArray()) return r.fail(p, "must be an array of integers");
  if (v->items().size() > 4096) return r.fail(p, "has too many entries");
  out.clear();
  for (size_t i = 0; i < v->items().size(); ++i) {
    const Json& item = v->items()[i];
    if (!item.isNumber() || item.number() != static_cast<double>(static_cast<long long>(item.number())) ||
        item.number() < lo || item.number() > hi) {
      return r.fail(p + "[" + std::to_string(i) + "]", "must be an integer between " + std::to_string(static_cast<long long>(lo)) +
                                                           " and " + std::to_string(static_cast<long long>(hi)));
    }
    out.push_back(static_cast<int>(item.number()));
  }
  return true;
}

bool parseProcesses(Reader& r, const Json& j, const std::string& path, std::vector<ProcessSpec>& out) {
  const Json* procs = j.find("processes");
  if (procs == nullptr) return true;
  if (!procs->isArray()) return r.fail(path + ".processes", "must be an array");
  if (procs->items().size() > kMaxProcesses) return r.fail(path + ".processes", "has too many entries");
  for (size_t i = 0; i < procs->items().size(); ++i) {
    const std::string p = path + ".processes[" + std::to_string(i) + "]";
    const Json& pj = procs->items()[i];
    ProcessSpec ps;
    if (!r.onlyKeys(pj, p, {"pid", "usedMemoryBytes", "growthBytes", "utilShare"}) ||
        !r.integer(pj, p, "pid", ps.pid, 1, 4194304, true) || !r.number(pj, p, "growthBytes", ps.growthBytes, 0, 1e15) ||
        !r.number(pj, p, "utilShare", ps.utilShare, 0, 1)) {
      return false;
    }
    const Json* used = pj.find("usedMemoryBytes");
    if (used != nullptr && used->isNull()) {
      ps.usedMemoryBytes = -1;
    } else if (!r.number(pj, p, "usedMemoryBytes", ps.usedMemoryBytes, 0, 1e15, true)) {
      return false;
    }
    out.push_back(ps);
  }
  return true;
}

// "1g.10gb", "3g.40gb", "1g.20gb+me": the GPU instance slices are the number before "g".
bool profileSlices(const std::string& profile, unsigned int& slices) {
  size_t i = 0;
  unsigned int n = 0;
  while (i < profile.size() && i < 3 && std::isdigit(static_cast<unsigned char>(profile[i]))) n = n * 10 + (profile[i++] - '0');
  if (i == 0 || i >= profile.size() || profile[i] != 'g' || n == 0 || n > 8) return false;
  slices = n;
  return true;
}

bool parseMigInstances(Reader& r, const Json& j, const std::string& path, std::vector<MigInstanceSpec>& out,
                       unsigned int maxDevices) {
  const Json* list = j.find("instances");
  if (list == nullptr) return true;
  const std::string lp = path + ".instances";
  if (!list->isArray()) return r.fail(lp, "must be an array");
  if (list->items().size() > maxDevices) return r.fail(lp, "has more entries than maxDevices");
  std::set<unsigned int> indexes;
  std::set<std::pair<unsigned int, unsigned int>> ids;
  for (size_t i = 0; i < list->items().size(); ++i) {
    const std::string p = lp + "[" + std::to_string(i) + "]";
    const Json& ij = list->items()[i];
    MigInstanceSpec m;
    m.index = static_cast<unsigned int>(i);
    m.gpuInstanceId = static_cast<unsigned int>(i + 1);
    double overheadMiB = m.overheadBytes / 1048576;
    if (!r.onlyKeys(ij, p, {"profile", "memoryMiB", "gpuInstanceId", "computeInstanceId", "index", "overheadMiB", "load",
                            "processes"}) ||
        !r.string(ij, p, "profile", m.profile, true, 32) || !r.number(ij, p, "memoryMiB", m.memoryMiB, 1, 1e9, true) ||
        !r.integer(ij, p, "gpuInstanceId", m.gpuInstanceId, 0, 64) ||
        !r.integer(ij, p, "computeInstanceId", m.computeInstanceId, 0, 64) ||
        !r.integer(ij, p, "index", m.index, 0, static_cast<double>(maxDevices) - 1) ||
        !r.number(ij, p, "overheadMiB", overheadMiB, 0, 1e9) || !parseProcesses(r, ij, p, m.processes)) {
      return false;
    }
    m.overheadBytes = overheadMiB * 1048576;
    if (!profileSlices(m.profile, m.sliceCount)) return r.fail(p + ".profile", "must look like \"1g.10gb\" (slices, then g.)");
    if (!indexes.insert(m.index).second) return r.fail(p + ".index", "is used by another instance");
    if (!ids.insert({m.gpuInstanceId, m.computeInstanceId}).second) {
      return r.fail(p + ".computeInstanceId", "this GPU instance already has a compute instance with this id");
    }
    if (const Json* l = ij.find("load")) {
      if (!parseLoad(r, *l, p + ".load", m.load)) return false;
      m.hasLoad = true;
    }
    out.push_back(std::move(m));
  }
  return true;
}

bool parseDevice(Reader& r, const Json& j, const std::string& path, DeviceSpec& d, size_t& count, double& phaseStepMs) {
  if (!r.onlyKeys(j, path, {"name", "count", "phaseStepMs", "memoryTotalBytes", "memoryReservedBytes", "memoryInfo",
                            "computeCapability", "pciDeviceId", "pcie", "clocksMHz", "power", "thermal", "fan", "ecc",
                            "nvlink", "load", "processes", "remappedRows", "encoder", "decoder", "gpm", "profile",
                            "addressingMode", "mig", "fieldValueTypes"})) {
    return false;
  }
  if (!r.string(j, path, "name", d.name, true, 80)) return false;
  if (d.name.empty()) return r.fail(path + ".name", "must not be empty");
  // A simulated device always says so in its name, wherever the name ends up (dashboards, logs).
  std::string lower = d.name;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower.find("simulated") == std::string::npos) d.name += " (simulated)";
  if (!r.integer(j, path, "count", count, 1, kMaxDevices) || !r.number(j, path, "phaseStepMs", phaseStepMs, -1e9, 1e9) ||
      !r.number(j, path, "memoryTotalBytes", d.memoryTotalBytes, 1, 1e15, true) ||
      !r.number(j, path, "memoryReservedBytes", d.memoryReservedBytes, 0, 1e15)) {
    return false;
  }
  if (d.memoryReservedBytes >= d.memoryTotalBytes) return r.fail(path + ".memoryReservedBytes", "must be below memoryTotalBytes");
  std::string memoryInfo = "ok";
  if (!r.oneOf(j, path, "memoryInfo", memoryInfo, {"ok", "not_supported", "system"})) return false;
  d.memoryInfo = memoryInfo == "not_supported" ? DeviceSpec::MemoryInfo::NotSupported
                 : memoryInfo == "system"      ? DeviceSpec::MemoryInfo::System
                                               : DeviceSpec::MemoryInfo::Ok;
  if (const Json* cc = j.find("computeCapability")) {
    // Range-checked before the conversion: casting an out-of-range double to int is undefined
    // behaviour (found by the UBSan run on a hostile scenario: [1e300, 0]).
    auto part = [](const Json& v, double hi) {
      return v.isNumber() && v.number() >= 0 && v.number() <= hi && std::floor(v.number()) == v.number();
    };
    if (!cc->isArray() || cc->items().size() != 2 || !part(cc->items()[0], 99) || !part(cc->items()[1], 9)) {
      return r.fail(path + ".computeCapability", "must be [major, minor], whole numbers 0-99 and 0-9 (e.g. [9, 0])");
    }
    d.ccMajor = static_cast<int>(cc->items()[0].number());
    d.ccMinor = static_cast<int>(cc->items()[1].number());
  }
  if (!r.integer(j, path, "pciDeviceId", d.pciDeviceId, 0, 4294967295.0)) return false;
  if (const Json* pcie = j.find("pcie")) {
    if (pcie->isNull()) {
      d.hasPcie = false;
    } else {
      const std::string p = path + ".pcie";
      if (!r.onlyKeys(*pcie, p, {"generation", "width", "maxBytesPerSecond", "counters", "counterBits", "counterStartBytes"}) ||
          !r.integer(*pcie, p, "generation", d.pcieGeneration, 1, 7) || !r.integer(*pcie, p, "width", d.pcieWidth, 1, 32) ||
          !r.number(*pcie, p, "maxBytesPerSecond", d.pcieMaxBytesPerSecond, 0, 1e12) ||
          !r.boolean(*pcie, p, "counters", d.pcieCounters) || !r.integer(*pcie, p, "counterBits", d.pcieCounterBits, 32, 64) ||
          !r.number(*pcie, p, "counterStartBytes", d.pcieCounterStartBytes, 0, 18446744073709549568.0 /* 2^64 - 2048 */)) {
        return false;
      }
      if (d.pcieCounterBits != 32 && d.pcieCounterBits != 64) return r.fail(p + ".counterBits", "must be 32 or 64");
      if (d.pcieCounterBits == 32 && d.pcieCounterStartBytes >= 4294967296.0) {
        return r.fail(p + ".counterStartBytes", "must be below 2^32 for a 32-bit counter");
      }
    }
  }
  if (const Json* c = j.find("clocksMHz")) {
    const std::string p = path + ".clocksMHz";
    if (!r.onlyKeys(*c, p, {"sm", "memory", "graphics", "smIdle", "memoryIdle"}) ||
        !r.number(*c, p, "sm", d.smMaxMHz, 1, 10000) || !r.number(*c, p, "memory", d.memoryMaxMHz, 1, 50000) ||
        !r.number(*c, p, "graphics", d.graphicsMaxMHz, 1, 10000) || !r.number(*c, p, "smIdle", d.smIdleMHz, 1, 10000) ||
        !r.number(*c, p, "memoryIdle", d.memoryIdleMHz, 1, 50000)) {
      return false;
    }
  }
  if (const Json* pw = j.find("power")) {
    const std::string p = path + ".power";
    if (!r.onlyKeys(*pw, p, {"idleWatts", "limitWatts"}) || !r.number(*pw, p, "idleWatts", d.idleWatts, 0, 10000) ||
        !r.number(*pw, p, "limitWatts", d.limitWatts, 1, 10000)) {
      return false;
    }
    if (d.idleWatts > d.limitWatts) return r.fail(p + ".idleWatts", "must not be above limitWatts");
  }
  if (const Json* t = j.find("thermal")) {
    const std::string p = path + ".thermal";
    if (!r.onlyKeys(*t, p, {"ambientCelsius", "maxCelsius", "memoryOffsetCelsius"}) ||
        !r.number(*t, p, "ambientCelsius", d.ambientCelsius, -40, 150) || !r.number(*t, p, "maxCelsius", d.maxCelsius, -40, 150)) {
      return false;
    }
    if (const Json* off = t->find("memoryOffsetCelsius")) {
      if (off->isNull()) {
        d.hasMemoryTemperature = false;
      } else if (!r.number(*t, p, "memoryOffsetCelsius", d.memoryTemperatureOffset, -50, 50)) {
        return false;
      }
    }
  }
  if (!r.boolean(j, path, "fan", d.hasFan) || !r.boolean(j, path, "encoder", d.hasEncoder) ||
      !r.boolean(j, path, "decoder", d.hasDecoder)) {
    return false;
  }
  if (const Json* g = j.find("gpm")) {
    if (!g->isBool()) return r.fail(path + ".gpm", "must be true or false");
    d.gpm = g->boolean() ? 1 : 0;
  }
  if (const Json* prof = j.find("profile")) {
    static const char* kNames[] = {"grEngineActive", "smActive", "smOccupancy", "tensorActive",
                                   "dramActive", "fp64Active", "fp32Active", "fp16Active"};
    const std::string p = path + ".profile";
    if (!r.onlyKeys(*prof, p, {"grEngineActive", "smActive", "smOccupancy", "tensorActive", "dramActive", "fp64Active",
                               "fp32Active", "fp16Active"})) {
      return false;
    }
    for (int a = 0; a < static_cast<int>(Activity::Count); ++a) {
      if (const Json* shape = prof->find(kNames[a])) {
        if (!parseLoad(r, *shape, p + "." + kNames[a], d.profile[a])) return false;
        d.hasProfileShape[a] = true;
      }
    }
  }
  if (const Json* rr = j.find("remappedRows")) {
    const std::string p = path + ".remappedRows";
    if (!r.onlyKeys(*rr, p, {"correctable", "uncorrectable", "pending", "failure"}) ||
        !r.number(*rr, p, "correctable", d.remappedCorrectable, 0, 1e9) ||
        !r.number(*rr, p, "uncorrectable", d.remappedUncorrectable, 0, 1e9) || !r.boolean(*rr, p, "pending", d.remapPending) ||
        !r.boolean(*rr, p, "failure", d.remapFailure)) {
      return false;
    }
  }
  if (const Json* e = j.find("ecc")) {
    if (e->isNull()) {
      d.hasEcc = false;
    } else {
      const std::string p = path + ".ecc";
      if (!r.onlyKeys(*e, p, {"volatileCorrected", "volatileUncorrected", "aggregateCorrected", "aggregateUncorrected"}) ||
          !r.number(*e, p, "volatileCorrected", d.eccVolatileCorrected, 0, 1e15) ||
          !r.number(*e, p, "volatileUncorrected", d.eccVolatileUncorrected, 0, 1e15) ||
          !r.number(*e, p, "aggregateCorrected", d.eccAggregateCorrected, 0, 1e15) ||
          !r.number(*e, p, "aggregateUncorrected", d.eccAggregateUncorrected, 0, 1e15)) {
        return false;
      }
    }
  }
  if (const Json* n = j.find("nvlink")) {
    if (!n->isNull()) {
      const std::string p = path + ".nvlink";
      std::string stateField = "ok";
      if (!r.onlyKeys(*n, p, {"links", "maxBytesPerSecondPerLink", "down", "failing", "stateField"}) ||
          !r.oneOf(*n, p, "stateField", stateField, {"ok", "not_supported", "zero"}) ||
          !r.integer(*n, p, "links", d.nvlinks, 0, 36, true) ||
          !r.number(*n, p, "maxBytesPerSecondPerLink", d.nvlinkMaxBytesPerSecondPerLink, 0, 1e12) ||
          !intList(r, *n, p, "down", d.nvlinkDown, 0, static_cast<double>(d.nvlinks) - 1) ||
          !intList(r, *n, p, "failing", d.nvlinkFailing, 0, static_cast<double>(d.nvlinks) - 1)) {
        return false;
      }
      d.nvlinkStateField = stateField == "zero"            ? DeviceSpec::LinkStateField::Zero
                           : stateField == "not_supported" ? DeviceSpec::LinkStateField::NotSupported
                                                           : DeviceSpec::LinkStateField::Ok;
    }
  }
  std::string addressing = "none";
  if (!r.oneOf(j, path, "addressingMode", addressing, {"none", "hmm", "ats"})) return false;
  d.addressingMode = addressing == "ats" ? 2 : addressing == "hmm" ? 1 : 0;
  d.migCapable = d.ccMajor >= 8 && d.hasEcc;
  if (const Json* mig = j.find("mig")) {
    const std::string p = path + ".mig";
    if (!r.onlyKeys(*mig, p, {"enabled", "whenFileExists", "privileged", "maxDevices", "instances", "reconfigure"}) ||
        !r.boolean(*mig, p, "enabled", d.migEnabled) ||
        !r.string(*mig, p, "whenFileExists", d.migWhenFileExists, false, 4096) ||
        !r.boolean(*mig, p, "privileged", d.migPrivileged) || !r.integer(*mig, p, "maxDevices", d.migMaxDevices, 1, 16) ||
        !parseMigInstances(r, *mig, p, d.migInstances, d.migMaxDevices)) {
      return false;
    }
    if (const Json* re = mig->find("reconfigure")) {
      const std::string rp = p + ".reconfigure";
      if (!r.onlyKeys(*re, rp, {"whenFileExists", "instances"}) ||
          !r.string(*re, rp, "whenFileExists", d.migReconfigureWhenFileExists, true, 4096) ||
          !parseMigInstances(r, *re, rp, d.migReconfigured, d.migMaxDevices)) {
        return false;
      }
      if (d.migReconfigureWhenFileExists.empty() || d.migReconfigureWhenFileExists[0] != '/') {
        return r.fail(rp + ".whenFileExists", "must be an absolute path");
      }
    }
    if (!d.migWhenFileExists.empty() && d.migWhenFileExists[0] != '/') {
      return r.fail(p + ".whenFileExists", "must be an absolute path");
    }
    if (!d.migCapable) return r.fail(p, "MIG needs a data-centre GPU with ECC, compute capability 8.0 or newer");
  }
  if (const Json* types = j.find("fieldValueTypes")) {
    const std::string p = path + ".fieldValueTypes";
    if (!types->isObject()) return r.fail(p, "must be an object of field id -> NVML value type");
    for (const auto& [key, value] : types->members()) {
      char* end = nullptr;
      const unsigned long id = std::strtoul(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id == 0 || id > 1000) return r.fail(p + "." + key, "must be keyed by a field id 1-1000");
      if (!value.isNumber() || value.number() < 0 || value.number() > 255 || std::floor(value.number()) != value.number()) {
        return r.fail(p + "." + key, "must be a value type 0-255");
      }
      d.fieldValueTypes.emplace_back(static_cast<unsigned int>(id), static_cast<int>(value.number()));
    }
  }
  if (const Json* l = j.find("load")) {
    if (!parseLoad(r, *l, path + ".load", d.load)) return false;
  }
  if (!parseProcesses(r, j, path, d.processes)) return false;
  return true;
}

bool parseDcgm(Reader& r, const Json& j, const std::string& path, DcgmSpec& d, size_t deviceCount) {
  if (!r.onlyKeys(j, path, {"embedded", "hostengines", "profiling", "noProfilingDevices", "unsupportedFields", "profilingHeld",
                            "profilingHeldCode"}) ||
      !r.boolean(j, path, "embedded", d.embedded) || !r.boolean(j, path, "profiling", d.profiling) ||
      !r.boolean(j, path, "profilingHeld", d.profilingHeld) ||
      !intList(r, j, path, "noProfilingDevices", d.noProfilingDevices, 0, static_cast<double>(deviceCount) - 1) ||
      !intList(r, j, path, "unsupportedFields", d.unsupportedFields, 1, 65535)) {
    return false;
  }
  if (const Json* c = j.find("profilingHeldCode")) {
    if (!c->isNumber() || (c->number() != -34 && c->number() != -37)) {
      return r.fail(path + ".profilingHeldCode", "must be -34 (DCGM_ST_IN_USE) or -37 (DCGM_ST_PROFILING_LIBRARY_ERROR)");
    }
    d.profilingHeldCode = static_cast<int>(c->number());
  }
  if (const Json* h = j.find("hostengines")) {
    if (!h->isArray()) return r.fail(path + ".hostengines", "must be an array of addresses");
    d.hostengines.clear();
    for (size_t i = 0; i < h->items().size() && i < 64; ++i) {
      if (!h->items()[i].isString()) return r.fail(path + ".hostengines[" + std::to_string(i) + "]", "must be a string");
      d.hostengines.push_back(h->items()[i].string());
    }
  }
  d.present = true;
  return true;
}

bool parseFault(Reader& r, const Json& j, const std::string& path, FaultSpec& f, size_t deviceCount) {
  if (!r.onlyKeys(j, path, {"type", "device", "call", "atMs", "durationMs", "code", "delayMs", "whenFileExists"})) return false;
  std::string type;
  if (!r.string(j, path, "type", type, true)) return false;
  if (type == "gpu_lost") f.kind = FaultSpec::Kind::GpuLost;
  else if (type == "hang") f.kind = FaultSpec::Kind::Hang;
  else if (type == "error") f.kind = FaultSpec::Kind::Error;
  else if (type == "slow") f.kind = FaultSpec::Kind::Slow;
  else if (type == "driver_gone") f.kind = FaultSpec::Kind::DriverGone;
  else if (type == "dcgm_down") f.kind = FaultSpec::Kind::DcgmDown;
  else return r.fail(path + ".type", "must be one of gpu_lost, hang, error, slow, driver_gone, dcgm_down, not \"" + type + "\"");
  if (!r.integer(j, path, "device", f.device, -1, static_cast<double>(deviceCount) - 1) ||
      !r.string(j, path, "call", f.call, false, 128) || !r.number(j, path, "atMs", f.atMs, 0, 1e12) ||
      !r.number(j, path, "durationMs", f.durationMs, -1, 1e12) || !r.integer(j, path, "code", f.code, -1e9, 1e9) ||
      !r.number(j, path, "delayMs", f.delayMs, 0, 600000) ||
      !r.string(j, path, "whenFileExists", f.whenFileExists, false, 4096)) {
    return false;
  }
  if (!f.whenFileExists.empty() && f.whenFileExists[0] != '/') return r.fail(path + ".whenFileExists", "must be an absolute path");
  if (f.kind == FaultSpec::Kind::Error && j.find("code") == nullptr) return r.fail(path + ".code", "is required for an error fault");
  if (f.kind == FaultSpec::Kind::DriverGone && j.find("code") == nullptr) f.code = 999;  // NVML_ERROR_UNKNOWN
  if (f.kind == FaultSpec::Kind::Slow && j.find("delayMs") == nullptr) return r.fail(path + ".delayMs", "is required for a slow fault");
  return true;
}

bool parseCupti(Reader& r, const Json& j, const std::string& path, CuptiSpec& c) {
  if (!r.onlyKeys(j, path, {"version", "kernelsPerSecond", "kernels", "memcpyPerSecond", "memsetPerSecond", "stepRange",
                            "flood", "floodRecords", "holdBuffers", "holdBuffersWhenFileExists", "multipleSubscribers", "seed",
                            "recordCompletionLagMs", "invalidKindAdvances", "firstEnableDelayMs", "otherSubscriber",
                            "sharingSupported"})) {
    return false;
  }
  c.present = true;
  if (!r.integer(j, path, "version", c.version, 1, 999999) || !r.number(j, path, "kernelsPerSecond", c.kernelsPerSecond, 0, 1e7) ||
      !r.number(j, path, "memcpyPerSecond", c.memcpyPerSecond, 0, 1e6) ||
      !r.number(j, path, "memsetPerSecond", c.memsetPerSecond, 0, 1e6) || !r.boolean(j, path, "flood", c.flood) ||
      !r.number(j, path, "floodRecords", c.floodRecords, 1, 1e10) || !r.boolean(j, path, "holdBuffers", c.holdBuffers) ||
      !r.boolean(j, path, "multipleSubscribers", c.multipleSubscribers) ||
      !r.string(j, path, "holdBuffersWhenFileExists", c.holdBuffersWhenFileExists, false, 4096) ||
      !r.integer(j, path, "seed", c.seed, 0, 9007199254740991.0) ||
      !r.number(j, path, "recordCompletionLagMs", c.recordCompletionLagMs, 0, 600000) ||
      !r.boolean(j, path, "invalidKindAdvances", c.invalidKindAdvances) ||
      !r.number(j, path, "firstEnableDelayMs", c.firstEnableDelayMs, 0, 600000) ||
      !r.boolean(j, path, "sharingSupported", c.sharingSupported)) {
    return false;
  }
  if (const Json* other = j.find("otherSubscriber")) {
    const std::string p = path + ".otherSubscriber";
    if (!r.onlyKeys(*other, p, {"name", "allowsSharing"}) || !r.string(*other, p, "name", c.otherSubscriberName, true, 256) ||
        !r.boolean(*other, p, "allowsSharing", c.otherSubscriberAllowsSharing)) {
      return false;
    }
    c.otherSubscriber = true;
  }
  if (!c.holdBuffersWhenFileExists.empty() && c.holdBuffersWhenFileExists[0] != '/') {
    return r.fail(path + ".holdBuffersWhenFileExists", "must be an absolute path");
  }
  if (const Json* kernels = j.find("kernels")) {
    if (!kernels->isArray() || kernels->items().empty() || kernels->items().size() > 1024) {
      return r.fail(path + ".kernels", "must be an array of 1 to 1024 kernel entries");
    }
    for (size_t i = 0; i < kernels->items().size(); ++i) {
      const std::string p = path + ".kernels[" + std::to_string(i) + "]";
      const Json& kj = kernels->items()[i];
      CuptiKernelSpec k;
      if (!r.onlyKeys(kj, p, {"name", "durationUs", "grid", "block", "registers", "sharedBytes"}) ||
          !r.string(kj, p, "name", k.name, true, 4096) || !r.number(kj, p, "durationUs", k.durationUs, 0.001, 1e9) ||
          !r.integer(kj, p, "registers", k.registers, 0, 65535) || !r.integer(kj, p, "sharedBytes", k.sharedBytes, 0, 1e9)) {
        return false;
      }
      for (const char* key : {"grid", "block"}) {
        const Json* dims = kj.find(key);
        if (dims == nullptr) continue;
        if (!dims->isArray() || dims->items().size() != 3) return r.fail(p + "." + key, "must be [x, y, z]");
        int* out = std::string(key) == "grid" ? k.grid : k.block;
        for (size_t d = 0; d < 3; ++d) {
          const Json& v = dims->items()[d];
          if (!v.isNumber() || v.number() < 1 || v.number() > 2147483647 || std::floor(v.number()) != v.number()) {
            return r.fail(p + "." + key + "[" + std::to_string(d) + "]", "must be a whole number from 1 to 2147483647");
          }
          out[d] = static_cast<int>(v.number());
        }
      }
      c.kernels.push_back(std::move(k));
    }
  }
  if (c.kernels.empty()) c.kernels.push_back(CuptiKernelSpec());
  if (const Json* range = j.find("stepRange")) {
    const std::string p = path + ".stepRange";
    if (!r.onlyKeys(*range, p, {"name", "everyMs"}) || !r.string(*range, p, "name", c.stepRangeName, true, 256) ||
        !r.number(*range, p, "everyMs", c.stepRangeEveryMs, 1, 3600000, true)) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool parseScenario(const std::string& text, Scenario& s, std::string& error) {
  Json root;
  std::string jsonError;
  if (!parseJson(text, root, jsonError)) {
    error = "invalid JSON: " + jsonError;
    return false;
  }
  Reader r(error);
  const std::string top = "scenario";
  // "meminfo" is read by the host side (the file unified-memory devices' memory figures come from).
  if (!r.onlyKeys(root, top, {"name", "description", "seed", "tickMs", "driver", "devices", "faults", "meminfo",
                              "xids", "dcgm", "cupti"})) {
    return false;
  }
  if (!r.string(root, top, "name", s.name, true, 128) || !r.string(root, top, "description", s.description, false, 4096) ||
      !r.integer(root, top, "seed", s.seed, 0, 9007199254740991.0) || !r.number(root, top, "tickMs", s.tickMs, 1, 3600000)) {
    return false;
  }
  if (const Json* drv = root.find("driver")) {
    const std::string p = top + ".driver";
    if (!r.onlyKeys(*drv, p, {"version", "nvmlVersion", "cudaVersion", "library"}) ||
        !r.string(*drv, p, "version", s.driverVersion, false, 79) || !r.string(*drv, p, "nvmlVersion", s.nvmlVersion, false, 79) ||
        !r.integer(*drv, p, "cudaVersion", s.cudaDriverVersion, 0, 1e6) ||
        !r.oneOf(*drv, p, "library", s.library, {"current", "legacy"})) {
      return false;
    }
  }
  const Json* devices = root.find("devices");
  if (devices == nullptr || !devices->isArray()) return r.fail(top + ".devices", "must be an array of device entries");
  for (size_t i = 0; i < devices->items().size(); ++i) {
    DeviceSpec d;
    size_t count = 1;
    double phaseStepMs = 0;
    if (!parseDevice(r, devices->items()[i], top + ".devices[" + std::to_string(i) + "]", d, count, phaseStepMs)) return false;
    for (size_t c = 0; c < count; ++c) {
      if (s.devices.size() >= kMaxDevices) return r.fail(top + ".devices", "more than " + std::to_string(kMaxDevices) + " devices");
      DeviceSpec copy = d;
      copy.load.phaseMs += phaseStepMs * static_cast<double>(c);
      s.devices.push_back(std::move(copy));
    }
  }
  if (const Json* faults = root.find("faults")) {
    if (!faults->isArray()) return r.fail(top + ".faults", "must be an array");
    if (faults->items().size() > kMaxFaults) return r.fail(top + ".faults", "has too many entries");
    for (size_t i = 0; i < faults->items().size(); ++i) {
      FaultSpec f;
      if (!parseFault(r, faults->items()[i], top + ".faults[" + std::to_string(i) + "]", f, s.devices.size())) return false;
      s.faults.push_back(f);
    }
  }
  if (const Json* xids = root.find("xids")) {
    if (!xids->isArray()) return r.fail(top + ".xids", "must be an array");
    if (xids->items().size() > kMaxFaults) return r.fail(top + ".xids", "has too many entries");
    for (size_t i = 0; i < xids->items().size(); ++i) {
      const std::string p = top + ".xids[" + std::to_string(i) + "]";
      const Json& xj = xids->items()[i];
      XidSpec x;
      if (!r.onlyKeys(xj, p, {"device", "atMs", "code", "count", "ratePerSecond", "whenFileExists"}) ||
          !r.string(xj, p, "whenFileExists", x.whenFileExists, false, 4096) ||
          !r.integer(xj, p, "device", x.device, 0, static_cast<double>(s.devices.size()) - 1, true) ||
          !r.number(xj, p, "atMs", x.atMs, 0, 1e12) || !r.integer(xj, p, "code", x.code, 1, 65535, true) ||
          !r.integer(xj, p, "count", x.count, 1, 1e9) || !r.number(xj, p, "ratePerSecond", x.ratePerSecond, 0.001, 1e6)) {
        return false;
      }
      if (!x.whenFileExists.empty() && x.whenFileExists[0] != '/') return r.fail(p + ".whenFileExists", "must be an absolute path");
      s.xids.push_back(x);
    }
  }
  if (const Json* dj = root.find("dcgm")) {
    if (!parseDcgm(r, *dj, top + ".dcgm", s.dcgm, s.devices.size())) return false;
  }
  if (const Json* cupti = root.find("cupti")) {
    if (!parseCupti(r, *cupti, top + ".cupti", s.cupti)) return false;
  }
  return true;
}

}  // namespace gtsim
