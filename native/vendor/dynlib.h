// RAII wrapper around dlopen/dlsym/dlclose. Vendor libraries are only ever reached through this:
// the addon links with -ldl and nothing else from NVIDIA.
#pragma once

#include <string>
#include <vector>

namespace gt {

class DynLib {
 public:
  DynLib() = default;
  ~DynLib();
  DynLib(const DynLib&) = delete;
  DynLib& operator=(const DynLib&) = delete;
  DynLib(DynLib&& other) noexcept;
  DynLib& operator=(DynLib&& other) noexcept;

  // Tries each candidate in order; on success remembers which one loaded. On failure `error()`
  // lists every candidate with the loader's reason, so a user can see what was searched.
  bool open(const std::vector<std::string>& candidates);
  // Loads a private copy of the library at `path` (copied to a temporary file, loaded, unlinked):
  // a library with process-global state (the simulator) then gets one state per copy.
  bool openPrivateCopy(const std::string& path);
  bool isOpen() const { return handle_ != nullptr; }
  void* symbol(const char* name) const;
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& tried() const { return tried_; }
  void close();

 private:
  void* handle_ = nullptr;
  std::string path_;
  std::string error_;
  std::vector<std::string> tried_;
};

}  // namespace gt
