// The simulated application's work does not start over when a profiler enables one more activity
// kind in the same session (a real application does not rerun its kernels because CUPTI was asked
// for another record kind). A flood of 3000 kernels launches 3000, even when the producer ran a
// batch between two cuptiActivityEnable calls (which happens when the machine is slow, e.g. under
// the sanitizers). Usage: sim_cupti_session_check <path of the simulator library>
#include <dlfcn.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {
using Configure = int (*)(const char*, char*, unsigned int);
using Counters = int (*)(double*, unsigned int);
using Subscribe = int (*)(void**, void*, void*);
using Unsubscribe = int (*)(void*);
using RequestFn = void (*)(uint8_t**, size_t*, size_t*);
using CompleteFn = void (*)(void*, uint32_t, uint8_t*, size_t, size_t);
using RegisterCallbacks = int (*)(RequestFn, CompleteFn);
using KindCall = int (*)(int);
using FlushAll = int (*)(uint32_t);

constexpr int kKindRuntime = 5;            // CUPTI_ACTIVITY_KIND_RUNTIME
constexpr int kKindConcurrentKernel = 10;  // CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL
constexpr unsigned int kKernelsLaunched = 9;  // index in gtsim_cupti_counters
constexpr unsigned int kInFlight = 7;

void request(uint8_t** buffer, size_t* size, size_t* maxRecords) {
  *size = 1 << 20;
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, *size));
  *maxRecords = 0;
}
void complete(void*, uint32_t, uint8_t* buffer, size_t, size_t) { std::free(buffer); }

template <typename F>
F symbol(void* lib, const char* name) {
  void* s = dlsym(lib, name);
  if (s == nullptr) {
    std::printf("missing symbol %s\n", name);
    std::exit(1);
  }
  return reinterpret_cast<F>(s);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::printf("dlopen: %s\n", dlerror());
    return 1;
  }
  auto configure = symbol<Configure>(lib, "gtsim_cupti_configure");
  auto counters = symbol<Counters>(lib, "gtsim_cupti_counters");
  auto subscribe = symbol<Subscribe>(lib, "cuptiSubscribe");
  auto unsubscribe = symbol<Unsubscribe>(lib, "cuptiUnsubscribe");
  auto registerCallbacks = symbol<RegisterCallbacks>(lib, "cuptiActivityRegisterCallbacks");
  auto enable = symbol<KindCall>(lib, "cuptiActivityEnable");
  auto disable = symbol<KindCall>(lib, "cuptiActivityDisable");
  auto flushAll = symbol<FlushAll>(lib, "cuptiActivityFlushAll");

  char error[512] = {0};
  const char* scenario =
      R"({"name":"session","devices":[{"name":"sim","memoryTotalBytes":85899345920}],"cupti":{"version":130001,"flood":true,"floodRecords":3000,"kernelsPerSecond":0}})";
  if (configure(scenario, error, sizeof error) != 0) {
    std::printf("configure: %s\n", error);
    return 1;
  }
  auto counter = [&](unsigned int i) {
    double v[32] = {0};
    counters(v, 32);
    return v[i];
  };
  auto waitUntil = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  };

  void* subscriber = nullptr;
  if (subscribe(&subscriber, nullptr, nullptr) != 0 || registerCallbacks(request, complete) != 0) {
    std::printf("subscribe / register failed\n");
    return 1;
  }
  if (enable(kKindConcurrentKernel) != 0) return 1;
  // The producer has run at least one batch of the flood before the second kind is enabled.
  if (!waitUntil([&] { return counter(kKernelsLaunched) >= 512; })) {
    std::printf("the flood did not start\n");
    return 1;
  }
  if (enable(kKindRuntime) != 0) return 1;
  double last = -1;
  waitUntil([&] {
    const double now = counter(kKernelsLaunched);
    const bool settled = now == last && counter(kInFlight) == 0;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return settled;
  });
  const double launched = counter(kKernelsLaunched);
  disable(kKindRuntime);
  disable(kKindConcurrentKernel);
  flushAll(1);
  unsubscribe(subscriber);
  if (launched != 3000) {
    std::printf("kernels launched: %.0f, the scenario floods 3000\n", launched);
    return 1;
  }
  std::printf("sim cupti session: 3000 kernels launched, once\n");
  return 0;
}
