// Static facts about a device and the system, read once at open.
#pragma once

#include <string>
#include <vector>

namespace gt {

struct DeviceInfo {
  unsigned int index = 0;
  std::string uuid;
  std::string name;
  std::string pciBusId;
  double memoryTotalBytes = -1;  // -1: the driver does not say (GB10 answers NOT_SUPPORTED)
  int computeCapabilityMajor = -1;
  int computeCapabilityMinor = -1;
  bool unifiedMemory = false;
  std::string unifiedMemoryReason;  // why it was (or was not) recognised as unified
  unsigned int nvlinkCount = 0;
  int addressingMode = -1;  // -1 unknown (no query in this driver), 0 none, 1 HMM, 2 ATS
  unsigned int pciDeviceId = 0;
};

struct SystemInfo {
  std::string driverVersion;
  std::string nvmlVersion;
  int cudaDriverVersion = -1;  // e.g. 12040 for CUDA 12.4
  std::string nvmlLibraryPath;
  std::vector<std::pair<std::string, std::string>> resolvedSymbols;  // member -> symbol, "" if absent
};

}  // namespace gt
