{
  "variables": {
    "gt_cflags": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"]
  },
  "targets": [
    {
      "target_name": "gpu_telemetry",
      "sources": [
        "native/addon.cc",
        "native/sampler/sampler.cc",
        "native/sources/nvml_source.cc",
        "native/sources/meminfo.cc",
        "native/sources/xid_watcher.cc",
        "native/sources/gpm_source.cc",
        "native/sources/mig_source.cc",
        "native/sources/process_util.cc",
        "native/sources/dcgm_source.cc",
        "native/sources/hostengine_probe.cc",
        "native/vendor/dynlib.cc",
        "native/vendor/nvml_api.cc",
        "native/vendor/nvml_session.cc",
        "native/vendor/dcgm_api.cc",
        "native/vendor/cupti_api.cc",
        "native/capture/capture.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: while a worker is being terminated napi_throw
      # fails, and node-addon-api would then throw a C++ Napi::Error out of its own catch block
      # (std::terminate: the whole process dies). With it, an exception that cannot be thrown
      # because the environment is going away is dropped instead.
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS", "NAPI_CPP_EXCEPTIONS",
                  "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<@(gt_cflags)", "-fexceptions"],
      "libraries": ["-ldl", "-lpthread"]
    },
    {
      "target_name": "gpu_telemetry_sim",
      "type": "shared_library",
      "product_name": "gpu_telemetry_sim",
      "sources": ["native/sim/json.cc", "native/sim/scenario.cc", "native/sim/model.cc", "native/sim/nvml_exports.cc", "native/sim/mig.cc", "native/sim/process_util.cc", "native/sim/dcgm_exports.cc", "native/sim/cupti_exports.cc", "native/sim/nvtx_exports.cc"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<@(gt_cflags)", "-fexceptions", "-fno-gnu-unique"],
      "libraries": ["-lpthread"]
    },
    {
      # libgpu_telemetry_inject.so: the injection library a CUDA process loads through
      # CUDA_INJECTION64_PATH (native/inject). It compiles the same capture engine as the addon
      # (native/capture + the CUPTI loader), and no N-API. Only its entry points are exported.
      "target_name": "gpu_telemetry_inject",
      "type": "shared_library",
      "product_prefix": "lib",
      "product_name": "gpu_telemetry_inject",
      "sources": [
        "native/inject/inject.cc",
        "native/inject/server.cc",
        "native/inject/protocol.cc",
        "native/capture/capture.cc",
        "native/vendor/cupti_api.cc",
        "native/vendor/dynlib.cc"
      ],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<@(gt_cflags)", "-fexceptions", "-fno-gnu-unique"],
      "ldflags": ["-Wl,--version-script=<(module_root_dir)/native/inject/exports.map", "-Wl,-z,nodelete"],
      "libraries": ["-ldl", "-lpthread"]
    },
    {
      "target_name": "gpu_telemetry_sim_legacy",
      "type": "shared_library",
      "product_name": "gpu_telemetry_sim_legacy",
      "sources": ["native/sim/json.cc", "native/sim/scenario.cc", "native/sim/model.cc", "native/sim/nvml_exports.cc", "native/sim/mig.cc", "native/sim/process_util.cc", "native/sim/dcgm_exports.cc", "native/sim/cupti_exports.cc", "native/sim/nvtx_exports.cc"],
      "defines": ["GTSIM_LEGACY_DRIVER=1"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<@(gt_cflags)", "-fexceptions", "-fno-gnu-unique"],
      "libraries": ["-lpthread"]
    }
  ]
}
