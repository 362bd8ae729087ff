/**
 * ABI checks: our own declarations (the addon's and, separately, the simulator's) compiled next to
 * NVIDIA's real headers; a size, offset or constant that differs fails the compile.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { NVML_HEADER, skipReason } from './system-packages.js';

function compileAndRun(source: string, includeDirs: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-abi-'));
  const exe = path.join(dir, 'check');
  try {
    execFileSync(
      'g++',
      ['-std=c++17', '-Wall', '-Werror', ...includeDirs.map((d) => `-I${d}`), path.join(PACKAGE_ROOT, source), '-o', exe],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (e) {
    const err = e as { stderr?: string };
    throw new Error(`ABI check ${source} did not compile:\n${err.stderr ?? String(e)}`);
  }
  return execFileSync(exe, { encoding: 'utf8' });
}

if (!NVML_HEADER) skipReason('/usr/include/nvml.h', 'libnvidia-ml-dev');

describe.skipIf(!NVML_HEADER)('NVML ABI against /usr/include/nvml.h', () => {
  it('every declared struct, field offset and constant matches', () => {
    const out = compileAndRun('test/abi/nvml_abi_check.cc', [path.join(PACKAGE_ROOT, 'native')]);
    expect(out).toMatch(/nvml ABI: \d+ checks passed/);
    expect(Number(/(\d+) checks/.exec(out)![1])).toBeGreaterThan(100);
  });
});

// A newer nvml.h than Debian's (e.g. NVIDIA/go-nvml gen/nvml/nvml.h, NVML API 13), when given: the
// same check then also covers what API 11 lacks (the PCIe byte-count ids, addressing mode, value
// types 5 and 6, 36 NVLink links, GPM's grown metric array).
const NEWER_NVML_INCLUDE = process.env.GPU_TELEMETRY_NVML_INCLUDE;
if (!NEWER_NVML_INCLUDE) {
  process.stderr.write('SKIP: no newer nvml.h given (set GPU_TELEMETRY_NVML_INCLUDE to its folder); the facts are pinned as numbers instead\n');
}
describe.skipIf(!NEWER_NVML_INCLUDE)('NVML ABI against a newer nvml.h (GPU_TELEMETRY_NVML_INCLUDE)', () => {
  it('every declared struct, field offset and constant matches', () => {
    const out = compileAndRun('test/abi/nvml_abi_check.cc', [NEWER_NVML_INCLUDE!, path.join(PACKAGE_ROOT, 'native')]);
    expect(out).toMatch(/nvml ABI: \d+ checks passed against nvml.h \(NVML API 1[3-9]\)/);
  });
});

describe('NVML facts newer than Debian\'s header, pinned as numbers from NVIDIA/go-nvml', () => {
  it('every field id we read, value types 5/6, addressing mode, 36 links, GPM bounds', () => {
    const out = compileAndRun('test/abi/nvml_newest_facts.cc', [path.join(PACKAGE_ROOT, 'native')]);
    expect(out).toMatch(/nvml newest facts: \d+ checks passed/);
    expect(Number(/(\d+) checks/.exec(out)![1])).toBeGreaterThanOrEqual(40);
  });
});

describe('DCGM ABI against the facts of NVIDIA/DCGM dcgm_structs.h', () => {
  it('dcgmFieldValue_v1, dcgmConnectV2Params_v2, versions, return codes, sentinels and field ids match', () => {
    const out = compileAndRun('test/abi/dcgm_abi_check.cc', [path.join(PACKAGE_ROOT, 'native')]);
    expect(out).toMatch(/dcgm ABI: \d+ checks passed/);
    expect(Number(/(\d+) checks/.exec(out)![1])).toBeGreaterThan(50);
  });
});
