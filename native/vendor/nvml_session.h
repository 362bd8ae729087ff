// One loaded NVML library, its resolved entry points and (once initialised) one nvmlInit
// reference, shared by every thread that calls into it: the sampling thread and the XID event
// thread. Whoever lets go last shuts NVML down and unloads the library, so NVML is never shut down
// (or a private simulator copy unloaded) under a thread still inside one of its calls — the
// event thread can be inside nvmlEventSetWait for up to its timeout when close() is asked for,
// and close() does not wait for it.
#pragma once

#include <memory>

#include "dynlib.h"
#include "nvml_api.h"

namespace gt {

struct NvmlSession {
  DynLib lib;
  nvml::Api api;
  bool initialized = false;  // nvmlInit succeeded: the destructor calls nvmlShutdown
  bool privateCopy = false;  // the simulator loaded as a private copy: its state is released before unload

  NvmlSession() = default;
  ~NvmlSession();
  NvmlSession(const NvmlSession&) = delete;
  NvmlSession& operator=(const NvmlSession&) = delete;
};

}  // namespace gt
