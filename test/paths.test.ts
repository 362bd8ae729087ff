/**
 * Native-file lookup (src/paths.ts): the simulator library and the addon come from a build for
 * this machine — a local build made for another architecture is skipped for this arch's prebuild.
 * (The real cross-architecture case runs under qemu: test/arm64/, npm run test:arm64.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addonPath, elfArch, isForThisMachine, nativeDirs, simulatorLibraryPath } from '../src/paths.js';

const OTHER = process.arch === 'arm64' ? 'x64' : 'arm64';
const MACHINE: Record<string, number> = { x64: 0x3e, arm64: 0xb7 };

/** A file with just an ELF64 little-endian header for `arch` (enough for elfArch). */
function fakeElf(file: string, arch: string): string {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(3, 16); // ET_DYN
  b.writeUInt16LE(MACHINE[arch], 18);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, b);
  return file;
}

const roots: string[] = [];
function fakeRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-paths-'));
  roots.push(root);
  return root;
}
afterEach(() => {
  delete process.env.PREBUILDS_ONLY;
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

describe('elfArch', () => {
  it('reads the machine of real and fake ELF files, null for anything else', () => {
    expect(elfArch(process.execPath)).toBe(process.arch);
    const root = fakeRoot();
    expect(elfArch(fakeElf(path.join(root, 'a.so'), 'arm64'))).toBe('arm64');
    expect(elfArch(fakeElf(path.join(root, 'b.so'), 'x64'))).toBe('x64');
    fs.writeFileSync(path.join(root, 'text'), 'not an ELF file at all');
    expect(elfArch(path.join(root, 'text'))).toBeNull();
    expect(elfArch(path.join(root, 'missing'))).toBeNull();
    expect(isForThisMachine(path.join(root, 'missing'))).toBe(false);
  });
});

describe('simulator library and addon lookup', () => {
  const prebuildDir = (root: string, arch = process.arch) => path.join(root, 'prebuilds', `${process.platform}-${arch}`);

  it('a local build for this machine wins over the prebuild', () => {
    const root = fakeRoot();
    const local = fakeElf(path.join(root, 'build', 'Release', 'gpu_telemetry_sim.so'), process.arch);
    fakeElf(path.join(prebuildDir(root), 'gpu_telemetry_sim.so'), process.arch);
    expect(simulatorLibraryPath('current', root)).toBe(local);
  });

  it(`a local build for another machine (${OTHER}) is skipped for this arch's prebuild`, () => {
    const root = fakeRoot();
    fakeElf(path.join(root, 'build', 'Release', 'gpu_telemetry_sim_legacy.so'), OTHER);
    fakeElf(path.join(prebuildDir(root, OTHER), 'gpu_telemetry_sim_legacy.so'), OTHER);
    const mine = fakeElf(path.join(prebuildDir(root), 'gpu_telemetry_sim_legacy.so'), process.arch);
    expect(simulatorLibraryPath('legacy', root)).toBe(mine);

    const foreignAddon = fakeElf(path.join(root, 'build', 'Release', 'gpu_telemetry.node'), OTHER);
    expect(addonPath(foreignAddon, root)).toBe(foreignAddon); // no prebuild for this arch: keep the choice (its load error names it)
    const prebuiltAddon = fakeElf(path.join(prebuildDir(root), 'gpu-telemetry.node'), process.arch);
    expect(addonPath(foreignAddon, root)).toBe(prebuiltAddon);
    expect(addonPath(prebuiltAddon, root)).toBe(prebuiltAddon);
  });

  it('only files for another machine: no simulator library', () => {
    const root = fakeRoot();
    fakeElf(path.join(root, 'build', 'Release', 'gpu_telemetry_sim.so'), OTHER);
    fakeElf(path.join(prebuildDir(root, OTHER), 'gpu_telemetry_sim.so'), OTHER);
    expect(simulatorLibraryPath('current', root)).toBeNull();
  });

  it('PREBUILDS_ONLY (node-gyp-build\'s switch) skips build/ for the simulator too', () => {
    const root = fakeRoot();
    fakeElf(path.join(root, 'build', 'Release', 'gpu_telemetry_sim.so'), process.arch);
    const prebuilt = fakeElf(path.join(prebuildDir(root), 'gpu_telemetry_sim.so'), process.arch);
    process.env.PREBUILDS_ONLY = '1';
    expect(nativeDirs(root)).toEqual([prebuildDir(root)]);
    expect(simulatorLibraryPath('current', root)).toBe(prebuilt);
  });
});
