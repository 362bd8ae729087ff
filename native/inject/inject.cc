// libgpu_telemetry_inject.so: the entry points the CUDA driver calls. A process started with
// CUDA_INJECTION64_PATH naming this library gets, at cuInit, a call to InitializeInjection; the
// library then stays dormant (no CUPTI loaded, nothing subscribed or enabled, one thread asleep in
// poll() on its control socket) until a client of the same user (or root) arms a capture over that
// socket (server.cc). The capture itself is native/capture's Engine, the same code the Node addon
// runs in process.
#include <exception>

#include "server.h"

#define GT_INJECT_EXPORT extern "C" __attribute__((visibility("default")))

// NVIDIA's injection entry point: called once by the CUDA driver while it initialises (cuInit),
// before the process's first context. Returns 1 (success) in every case: a tool that cannot start
// must not stop the application's CUDA from working.
GT_INJECT_EXPORT int InitializeInjection(void) {
  try {
    gt::inject::startServer();
  } catch (const std::exception& e) {
    gt::inject::log(true, "could not start: %s", e.what());
  } catch (...) {
    gt::inject::log(true, "could not start (unknown error)");
  }
  return 1;
}

// The protocol version this library speaks (for tools that dlopen it to check).
GT_INJECT_EXPORT int gpu_telemetry_inject_protocol_version(void) { return 1; }
