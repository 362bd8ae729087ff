// The simulated CUPTI as the simulator's other parts drive it (native/sim/nvtx_exports.cc: the NVTX
// injection that libcupti also provides). Not exported.
#pragma once

#include <cstdint>

namespace gtsim {

// Whether the MARKER activity kind is enabled (CUPTI records NVTX events only then).
bool cuptiMarkersEnabled();
// A fresh NVTX range id, as CUPTI numbers ranges in MARKER records.
uint32_t cuptiNextMarkerId();
// Writes one MARKER record now, on the calling thread (a no-op while MARKER is disabled). `name`
// and `domain` must live as long as the process: pass cuptiPermanentName's pointers.
void cuptiMarker(uint32_t flags, uint32_t id, const char* name, const char* domain);
const char* cuptiPermanentName(const char* name);

}  // namespace gtsim
