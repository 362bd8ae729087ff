#include "meminfo.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace gt {

namespace {

// Finds "Key:   123 kB" and returns 123 × 1024; false when the key is absent or malformed.
bool findKiB(const char* text, size_t length, const char* key, double* bytes) {
  const size_t keyLen = std::strlen(key);
  size_t pos = 0;
  while (pos < length) {
    const char* line = text + pos;
    const char* nl = static_cast<const char*>(std::memchr(line, '\n', length - pos));
    const size_t lineLen = nl != nullptr ? static_cast<size_t>(nl - line) : length - pos;
    if (lineLen > keyLen && std::memcmp(line, key, keyLen) == 0 && line[keyLen] == ':') {
      size_t i = keyLen + 1;
      while (i < lineLen && (line[i] == ' ' || line[i] == '\t')) ++i;
      double value = 0;
      size_t digits = 0;
      while (i < lineLen && line[i] >= '0' && line[i] <= '9' && digits < 19) {
        value = value * 10 + (line[i] - '0');
        ++i;
        ++digits;
      }
      if (digits == 0) return false;
      *bytes = value * 1024.0;  // the kernel's "kB" is KiB
      return true;
    }
    pos += lineLen + 1;
  }
  return false;
}

bool containsWord(const std::string& haystack, const char* word) {
  const size_t n = std::strlen(word);
  for (size_t at = haystack.find(word); at != std::string::npos; at = haystack.find(word, at + 1)) {
    const bool startOk = at == 0 || !std::isalnum(static_cast<unsigned char>(haystack[at - 1]));
    const bool endOk = at + n >= haystack.size() || !std::isalnum(static_cast<unsigned char>(haystack[at + n]));
    if (startOk && endOk) return true;
  }
  return false;
}

}  // namespace

MeminfoReading parseMeminfo(const char* text, size_t length) {
  MeminfoReading r;
  if (!findKiB(text, length, "MemTotal", &r.totalBytes)) {
    r.error = "no MemTotal line";
    return r;
  }
  if (!findKiB(text, length, "MemAvailable", &r.availableBytes)) {
    r.error = "no MemAvailable line (kernel older than 3.14?)";
    return r;
  }
  if (r.availableBytes > r.totalBytes || r.totalBytes <= 0) {
    r.error = "MemAvailable is above MemTotal";
    return r;
  }
  r.ok = true;
  return r;
}

MeminfoReading MeminfoSource::read() const {
  MeminfoReading r;
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.error = "cannot open " + path_ + ": " + std::strerror(errno);
    return r;
  }
  char buf[16384];  // /proc/meminfo is ~1.5 KiB; MemTotal and MemAvailable are its first lines
  size_t used = 0;
  while (used < sizeof buf) {
    const ssize_t n = ::read(fd, buf + used, sizeof buf - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  r = parseMeminfo(buf, used);
  if (!r.ok) r.error = path_ + ": " + r.error;
  return r;
}

bool detectUnifiedMemory(const UnifiedMemoryInput& in, std::string* reason) {
  if (containsWord(in.name, "GB10")) {
    *reason = "GB10 (DGX Spark): GPU and CPU share LPDDR5X system memory";
    return true;
  }
  // ATS only: HMM is software page-table mirroring that discrete x86 cards have too (open kernel
  // modules, recent kernels), with a framebuffer of their own that may well exceed system memory.
  const bool ats = in.addressingMode == 2;
  if (ats && !in.memoryCallSupported) {
    *reason = "the driver reports ATS addressing (nvmlDeviceGetAddressingMode) and no framebuffer of its own";
    return true;
  }
  if (ats && in.systemMemTotalBytes > 0 && in.memoryTotalBytes >= 0.9 * in.systemMemTotalBytes) {
    *reason = "the driver reports ATS addressing (nvmlDeviceGetAddressingMode) and a framebuffer the size of system memory";
    return true;
  }
  *reason = "";
  return false;
}

}  // namespace gt
