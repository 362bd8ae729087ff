// libFuzzer target for the simulator's scenario loader: the strict JSON parser (native/sim/json.cc)
// and the scenario validation on top of it (native/sim/scenario.cc). Any input must either parse
// into a scenario or produce an error message; never a crash, a sanitizer report or a hang.
// Built and run by scripts/fuzz-scenario.sh (clang 14 + libclang-rt-14-dev).
#include <cstddef>
#include <cstdint>
#include <string>

#include "../native/sim/json.h"
#include "../native/sim/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  gtsim::Json json;
  std::string error;
  if (!gtsim::parseJson(text, json, error)) {
    if (error.empty()) __builtin_trap();  // a failure must say why
  }
  gtsim::Scenario scenario;
  error.clear();
  if (!gtsim::parseScenario(text, scenario, error)) {
    if (error.empty()) __builtin_trap();
  } else if (scenario.devices.size() > 256) {
    __builtin_trap();  // the loader's own cap
  }
  return 0;
}
