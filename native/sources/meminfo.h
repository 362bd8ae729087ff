// System memory as the kernel reports it in /proc/meminfo: the source of memory figures on
// unified-memory GPUs (GB10 / DGX Spark), where the framebuffer calls have nothing to say.
#pragma once

#include <cstdint>
#include <string>

namespace gt {

struct MeminfoReading {
  bool ok = false;
  double totalBytes = 0;      // MemTotal
  double availableBytes = 0;  // MemAvailable: what a new allocation can get, page cache included
  std::string error;          // why !ok
};

// Parses the text of /proc/meminfo (values in kB = KiB). Pure: unit-testable.
MeminfoReading parseMeminfo(const char* text, size_t length);

class MeminfoSource {
 public:
  explicit MeminfoSource(std::string path) : path_(std::move(path)) {}
  // Reads and parses the file; no allocation on the success path.
  MeminfoReading read() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Whether a device shares system memory. The rules, in order (facts from DGX Spark reports):
//  - its name is a GB10 ("NVIDIA GB10"): unified, whatever the memory call answers (some drivers
//    answer NOT_SUPPORTED, some a total that is the system's MemTotal or not the pool at all);
//  - the driver reports ATS addressing (nvmlDeviceGetAddressingMode, NVML 12.6+) and the memory
//    call answers NOT_SUPPORTED, or a total of at least 90 % of MemTotal (a GH200, ATS with 96 GB
//    of HBM of its own beside ~480 GB of LPDDR5X, is not unified: its framebuffer is real).
//  HMM alone never counts: discrete x86 cards report it too.
// A NOT_SUPPORTED on any other device (a discrete card, a MIG slice) is not unified memory.
struct UnifiedMemoryInput {
  std::string name;
  bool memoryCallSupported = false;
  double memoryTotalBytes = 0;
  double systemMemTotalBytes = 0;  // 0 when unknown
  int addressingMode = -1;         // -1 unknown, 0 none, 1 HMM, 2 ATS
};
bool detectUnifiedMemory(const UnifiedMemoryInput& in, std::string* reason);

}  // namespace gt
