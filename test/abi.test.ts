/**
 * ABI checks: our own declarations (the addon's and, separately, the simulator's) compiled next to
 * NVIDIA's real headers; a size, offset or constant that differs fails the compile.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DCGM_RETURN_NAMES, dcgmReturnName } from '../src/errors.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { compileAndRun } from './native-build.js';
import { NVML_HEADER, skipReason } from './system-packages.js';

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
  it('dcgmFieldValue_v1, dcgmConnectV2Params_v2, versions, every return code, sentinels and field ids match', () => {
    const out = compileAndRun('test/abi/dcgm_abi_check.cc', [path.join(PACKAGE_ROOT, 'native')], [
      'native/vendor/dcgm_api.cc',
      'native/vendor/dynlib.cc',
    ]);
    expect(out).toMatch(/dcgm ABI: \d+ checks passed/);
    // 67 return codes, each checked for its number and its name, and the rest.
    expect(Number(/(\d+) checks/.exec(out)![1])).toBeGreaterThan(180);
  });

  it('the TypeScript names of DCGM return codes are the native table (dcgm_returns.def)', () => {
    const def = fs.readFileSync(path.join(PACKAGE_ROOT, 'native', 'vendor', 'dcgm_returns.def'), 'utf8');
    const native = [...def.matchAll(/^GT_DCGM_RETURN\(\w+, (-?\d+), "(\w+)"\)$/gm)].map((m) => [Number(m[1]), m[2]] as const);
    expect(native).toHaveLength(67);
    expect(Object.entries(DCGM_RETURN_NAMES).map(([k, v]) => [Number(k), v]).sort((a, b) => (b[0] as number) - (a[0] as number))).toEqual(native);
    expect(dcgmReturnName(-34)).toBe('DCGM_ST_IN_USE');
    expect(dcgmReturnName(-2)).toBe('DCGM return code -2');
  });
});
