/**
 * Where the package's own files are: the native addon, the simulator library and the shipped
 * scenarios. Works from src/ (tests) and dist/ (installed), both one level below the root.
 *
 * The addon and the simulator libraries come from a local build (build/Release, build/Debug) or a
 * prebuild (prebuilds/<platform>-<arch>/, both linux-x64 and linux-arm64 ship in the package). A
 * native file is used only when it was built for this machine: a build/ made on x64 and then run by
 * an arm64 Node on the same tree (qemu, a volume shared between machines) would otherwise be loaded,
 * and dlopen reports a foreign ELF file as "cannot open shared object file: No such file or
 * directory". node-gyp-build's PREBUILDS_ONLY=1 (skip build/) holds for the simulator too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SCENARIO_DIR = path.join(PACKAGE_ROOT, 'scenarios');

/** The addon's prebuild file name (prebuildify --napi names it after the package). */
export const ADDON_PREBUILD_FILE = 'gpu-telemetry.node';

const ELF_MACHINES: Record<number, string> = { 0x03: 'ia32', 0x28: 'arm', 0x3e: 'x64', 0xb7: 'arm64' };

/**
 * The machine an ELF file was built for, as a Node arch name ('x64', 'arm64', …), or null when the
 * file cannot be read or is not ELF.
 */
export function elfArch(file: string): string | null {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const header = Buffer.alloc(20);
    if (fs.readSync(fd, header, 0, 20, 0) < 20 || header.readUInt32BE(0) !== 0x7f454c46) return null;
    const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
    return ELF_MACHINES[machine] ?? `elf-machine-${machine}`;
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Whether `file` exists and is a native file this process can load (its ELF machine is ours). */
export function isForThisMachine(file: string): boolean {
  return elfArch(file) === process.arch;
}

/** The directories native files are looked up in, in order (local builds, then the prebuild). */
export function nativeDirs(root: string = PACKAGE_ROOT): string[] {
  const prebuild = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (process.env.PREBUILDS_ONLY) return [prebuild];
  return [path.join(root, 'build', 'Release'), path.join(root, 'build', 'Debug'), prebuild];
}

/** The simulator library of a driver generation, from a local build or a prebuild. */
export function simulatorLibraryPath(generation: 'current' | 'legacy' = 'current', root: string = PACKAGE_ROOT): string | null {
  const file = generation === 'legacy' ? 'gpu_telemetry_sim_legacy.so' : 'gpu_telemetry_sim.so';
  if (process.env.GPU_TELEMETRY_SIM_LIB_DIR) {
    // An explicit choice is kept even when it is wrong: dlopen's error then names it.
    const explicit = path.join(process.env.GPU_TELEMETRY_SIM_LIB_DIR, file);
    if (fs.existsSync(explicit)) return explicit;
  }
  for (const dir of nativeDirs(root)) {
    const candidate = path.join(dir, file);
    if (isForThisMachine(candidate)) return candidate;
  }
  return null;
}

/** The injection library's file name (binding.gyp target gpu_telemetry_inject). */
export const INJECT_LIBRARY_FILE = 'libgpu_telemetry_inject.so';

/**
 * The injection library a CUDA process loads through CUDA_INJECTION64_PATH (native/inject), from a
 * local build or this machine's prebuild; null when neither exists. $GPU_TELEMETRY_INJECT_LIB_DIR
 * names the folder explicitly (the sanitizer build uses it).
 */
export function injectLibraryPath(root: string = PACKAGE_ROOT): string | null {
  if (process.env.GPU_TELEMETRY_INJECT_LIB_DIR) {
    const explicit = path.join(process.env.GPU_TELEMETRY_INJECT_LIB_DIR, INJECT_LIBRARY_FILE);
    if (fs.existsSync(explicit)) return explicit;
  }
  for (const dir of nativeDirs(root)) {
    const candidate = path.join(dir, INJECT_LIBRARY_FILE);
    if (isForThisMachine(candidate)) return candidate;
  }
  return null;
}

/**
 * The addon file to load, given node-gyp-build's choice (local build first, then the prebuild that
 * matches this platform and arch): kept when it was built for this machine, else this machine's
 * prebuild, else node-gyp-build's choice (whose load error then says what is wrong).
 */
export function addonPath(nodeGypBuildChoice: string, root: string = PACKAGE_ROOT): string {
  if (isForThisMachine(nodeGypBuildChoice)) return nodeGypBuildChoice;
  const prebuild = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, ADDON_PREBUILD_FILE);
  return isForThisMachine(prebuild) ? prebuild : nodeGypBuildChoice;
}
