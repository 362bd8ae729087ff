// The injection library's control server: one unix socket per injected process, in a per-user
// folder, served by one thread that sleeps in poll() while nobody arms anything. It owns at most
// one capture at a time, a native/capture Engine (the same engine the Node addon drives in
// process), and streams its records to the client that armed it. No N-API anywhere here.
#pragma once

#include <string>
#include <vector>

namespace gt::inject {

// The per-user folder for the control sockets: $XDG_RUNTIME_DIR/gpu-telemetry when XDG_RUNTIME_DIR
// is an absolute path, else /tmp/gpu-telemetry-<euid>. Created mode 0700 when missing. Refused
// (ok false, error says why) when it is not a directory owned by this effective uid with no
// group/other permission bits, or is a symlink: a folder another user controls could hand our
// socket to them, or theirs to our clients.
struct SocketDir {
  bool ok = false;
  std::string path;
  std::string error;
};
SocketDir openSocketDir();

// Where CUPTI is looked for, in order: $GPU_TELEMETRY_CUPTI_LIB alone when set; else a libcupti
// this process has already loaded (PyTorch's Kineto does: CUPTI must be the same instance), the
// one NVTX_INJECTION64_PATH names (its NVTX records come from that instance), libcupti.so, the
// versioned ones next to the CUDA runtime this process loaded (toolkit layout and the pip wheels'
// nvidia/cuda_cupti/lib, nvidia/cu13/lib), then libcupti.so.13, libcupti.so.12 and the toolkit's
// default paths. Computed at arm time (the process may load more by then).
std::vector<std::string> cuptiCandidates();

// Starts the control server once per process (again in a forked child that calls it). Returns
// false, after logging why, when the socket cannot be set up; the process is unaffected either way.
bool startServer();

// One line on stderr, "gpu-telemetry-inject[pid]: ...". Errors are always written (at most 20 per
// minute; the count of suppressed ones follows); information only unless
// GPU_TELEMETRY_INJECT_QUIET=1.
void log(bool error, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace gt::inject
