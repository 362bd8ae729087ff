/**
 * Where the package's own files are: the native addon, the simulator library and the shipped
 * scenarios. Works from src/ (tests) and dist/ (installed), both one level below the root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SCENARIO_DIR = path.join(PACKAGE_ROOT, 'scenarios');

/** The simulator library of a driver generation, from a local build or a prebuild. */
export function simulatorLibraryPath(generation: 'current' | 'legacy' = 'current'): string | null {
  const file = generation === 'legacy' ? 'gpu_telemetry_sim_legacy.so' : 'gpu_telemetry_sim.so';
  const candidates = [
    process.env.GPU_TELEMETRY_SIM_LIB_DIR ? path.join(process.env.GPU_TELEMETRY_SIM_LIB_DIR, file) : null,
    path.join(PACKAGE_ROOT, 'build', 'Release', file),
    path.join(PACKAGE_ROOT, 'build', 'Debug', file),
    path.join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`, file),
  ];
  for (const c of candidates) {
    if (c && fs.existsSync(c)) return c;
  }
  return null;
}
