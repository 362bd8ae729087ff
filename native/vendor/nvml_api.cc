#include "nvml_api.h"

#include <initializer_list>

namespace gt::nvml {

namespace {

template <typename Fn>
void resolveOne(const DynLib& lib, Fn*& fn, const char*& resolvedName,
                std::initializer_list<const char*> names) {
  fn = nullptr;
  resolvedName = nullptr;
  for (const char* name : names) {
    if (void* sym = lib.symbol(name)) {
      fn = reinterpret_cast<Fn*>(sym);
      resolvedName = name;
      return;
    }
  }
}

}  // namespace

bool Api::resolve(const DynLib& lib, std::string* missingRequired) {
#define GT_NVML_RESOLVE(member, ret, params, ...) resolveOne(lib, member, member##Symbol, {__VA_ARGS__});
  GT_NVML_FUNCTIONS(GT_NVML_RESOLVE)
#undef GT_NVML_RESOLVE
  if (init == nullptr) {
    if (missingRequired) *missingRequired = "nvmlInit_v2";
    return false;
  }
  if (shutdown == nullptr) {
    if (missingRequired) *missingRequired = "nvmlShutdown";
    return false;
  }
  return true;
}

std::string Api::describe(Return code) const {
  if (errorString != nullptr) {
    if (const char* text = errorString(code)) return text;
  }
  return returnName(code);
}

const char* returnName(Return code) {
  switch (code) {
    case kSuccess: return "NVML_SUCCESS";
    case kErrorUninitialized: return "NVML_ERROR_UNINITIALIZED";
    case kErrorInvalidArgument: return "NVML_ERROR_INVALID_ARGUMENT";
    case kErrorNotSupported: return "NVML_ERROR_NOT_SUPPORTED";
    case kErrorNoPermission: return "NVML_ERROR_NO_PERMISSION";
    case kErrorAlreadyInitialized: return "NVML_ERROR_ALREADY_INITIALIZED";
    case kErrorNotFound: return "NVML_ERROR_NOT_FOUND";
    case kErrorInsufficientSize: return "NVML_ERROR_INSUFFICIENT_SIZE";
    case kErrorInsufficientPower: return "NVML_ERROR_INSUFFICIENT_POWER";
    case kErrorDriverNotLoaded: return "NVML_ERROR_DRIVER_NOT_LOADED";
    case kErrorTimeout: return "NVML_ERROR_TIMEOUT";
    case kErrorIrqIssue: return "NVML_ERROR_IRQ_ISSUE";
    case kErrorLibraryNotFound: return "NVML_ERROR_LIBRARY_NOT_FOUND";
    case kErrorFunctionNotFound: return "NVML_ERROR_FUNCTION_NOT_FOUND";
    case kErrorCorruptedInforom: return "NVML_ERROR_CORRUPTED_INFOROM";
    case kErrorGpuIsLost: return "NVML_ERROR_GPU_IS_LOST";
    case kErrorResetRequired: return "NVML_ERROR_RESET_REQUIRED";
    case kErrorOperatingSystem: return "NVML_ERROR_OPERATING_SYSTEM";
    case kErrorLibRmVersionMismatch: return "NVML_ERROR_LIB_RM_VERSION_MISMATCH";
    case kErrorInUse: return "NVML_ERROR_IN_USE";
    case kErrorMemory: return "NVML_ERROR_MEMORY";
    case kErrorNoData: return "NVML_ERROR_NO_DATA";
    case kErrorVgpuEccNotSupported: return "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED";
    case kErrorInsufficientResources: return "NVML_ERROR_INSUFFICIENT_RESOURCES";
    case kErrorFreqNotSupported: return "NVML_ERROR_FREQ_NOT_SUPPORTED";
    case kErrorArgumentVersionMismatch: return "NVML_ERROR_ARGUMENT_VERSION_MISMATCH";
    case kErrorDeprecated: return "NVML_ERROR_DEPRECATED";
    case kErrorNotReady: return "NVML_ERROR_NOT_READY";
    case kErrorGpuNotFound: return "NVML_ERROR_GPU_NOT_FOUND";
    case kErrorInvalidState: return "NVML_ERROR_INVALID_STATE";
    case kErrorResetTypeNotSupported: return "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED";
    case kErrorUnknown: return "NVML_ERROR_UNKNOWN";
    default: return "NVML_ERROR_UNRECOGNISED";
  }
}

}  // namespace gt::nvml
