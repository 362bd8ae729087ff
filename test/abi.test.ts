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
