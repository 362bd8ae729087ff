#include "dynlib.h"

#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <utility>

namespace gt {

namespace {

// The file the loader actually mapped ("libnvidia-ml.so.1" -> "/usr/lib/x86_64-linux-gnu/...").
std::string resolvedPath(void* handle, const std::string& fallback) {
  struct link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr && map->l_name[0] != '\0') {
    return map->l_name;
  }
  return fallback;
}

}  // namespace

DynLib::~DynLib() { close(); }

DynLib::DynLib(DynLib&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      path_(std::move(other.path_)),
      error_(std::move(other.error_)),
      tried_(std::move(other.tried_)) {}

DynLib& DynLib::operator=(DynLib&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = std::exchange(other.handle_, nullptr);
    path_ = std::move(other.path_);
    error_ = std::move(other.error_);
    tried_ = std::move(other.tried_);
  }
  return *this;
}

bool DynLib::open(const std::vector<std::string>& candidates) {
  close();
  error_.clear();
  tried_.clear();
  for (const std::string& candidate : candidates) {
    tried_.push_back(candidate);
    // RTLD_LOCAL keeps vendor symbols out of the global namespace (two copies of the simulator,
    // or NVML next to a user's own NVML binding, must not interpose each other).
    void* h = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h != nullptr) {
      handle_ = h;
      path_ = resolvedPath(h, candidate);
      return true;
    }
    const char* why = dlerror();
    if (!error_.empty()) error_ += "; ";
    error_ += why != nullptr ? why : (candidate + ": unknown dlopen error");
  }
  return false;
}

bool DynLib::openPrivateCopy(const std::string& path) {
  close();
  error_.clear();
  tried_.assign(1, path);
  const int src = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) {
    error_ = path + ": " + std::strerror(errno);
    return false;
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                     "/gpu-telemetry-lib-XXXXXX";
  const int dst = mkostemp(tmpl.data(), O_CLOEXEC);
  if (dst < 0) {
    error_ = "cannot create a private copy of " + path + " in " + tmpl + ": " + std::strerror(errno);
    ::close(src);
    return false;
  }
  bool copied = true;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(src, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      copied = false;
      break;
    }
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(dst, buf + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        copied = false;
        break;
      }
      off += w;
    }
    if (!copied) break;
  }
  const int copyErrno = errno;
  ::close(src);
  ::close(dst);
  if (!copied) {
    error_ = "cannot copy " + path + " to " + tmpl + ": " + std::strerror(copyErrno);
    ::unlink(tmpl.c_str());
    return false;
  }
  void* h = dlopen(tmpl.c_str(), RTLD_NOW | RTLD_LOCAL);
  // The mapping keeps the file alive; the name is not needed any more.
  ::unlink(tmpl.c_str());
  if (h == nullptr) {
    const char* why = dlerror();
    error_ = why != nullptr ? why : (path + ": unknown dlopen error");
    return false;
  }
  handle_ = h;
  path_ = path;
  return true;
}

void* DynLib::symbol(const char* name) const {
  if (handle_ == nullptr) return nullptr;
  return dlsym(handle_, name);
}

void DynLib::close() {
  if (handle_ != nullptr) {
    dlclose(handle_);
    handle_ = nullptr;
  }
}

}  // namespace gt
