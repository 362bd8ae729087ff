/**
 * The ABI checks of test/abi/ (static_asserts: our NVML, DCGM and CUPTI declarations against
 * NVIDIA's real headers) compiled for aarch64 too, with Debian's cross compiler: the structs the
 * addon and the simulator read on a GB10 or a Grace machine have NVIDIA's layout there as well.
 * Compile-only (-fsyntax-only evaluates every static_assert); running arm64 code is test/arm64/.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { NVML_HEADER } from './system-packages.js';

const CROSS = ['/usr/bin/aarch64-linux-gnu-g++'].find((p) => fs.existsSync(p)) ?? null;
const CUDA13_INCLUDE = '/usr/local/cuda/include';
const CUDA13_HEADER = fs.existsSync(path.join(CUDA13_INCLUDE, 'cupti_activity_deprecated.h'));
const DEBIAN_CUPTI = fs.existsSync('/usr/include/cupti_activity.h');
const CUDA_H_DIR = fs.existsSync('/usr/include/cuda.h') ? '/usr/include' : fs.existsSync(path.join(CUDA13_INCLUDE, 'cuda.h')) ? CUDA13_INCLUDE : null;

if (!CROSS) process.stderr.write('SKIP: aarch64-linux-gnu-g++ is not installed (Debian package g++-aarch64-linux-gnu); .ci/run installs it\n');

function compileForArm64(source: string, flags: string[] = []): void {
  try {
    execFileSync(CROSS!, ['-std=c++17', '-Wall', '-Werror', '-fsyntax-only', `-I${path.join(PACKAGE_ROOT, 'native')}`, ...flags, path.join(PACKAGE_ROOT, source)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    throw new Error(`ABI check ${source} does not hold for aarch64 (${flags.join(' ')}):\n${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
}

describe.skipIf(!CROSS)('ABI checks compiled for aarch64', () => {
  it.skipIf(!NVML_HEADER)('NVML against /usr/include/nvml.h', () => {
    compileForArm64('test/abi/nvml_abi_check.cc');
    expect(true).toBe(true);
  });

  it('DCGM against the facts of NVIDIA/DCGM dcgm_structs.h', () => {
    compileForArm64('test/abi/dcgm_abi_check.cc');
    expect(true).toBe(true);
  });

  it.skipIf(!CUDA13_HEADER)('CUPTI against the CUDA 13 toolkit headers', () => {
    compileForArm64('test/abi/cupti_abi_check.cc', [`-I${CUDA13_INCLUDE}`]);
    expect(true).toBe(true);
  });

  it.skipIf(!DEBIAN_CUPTI || !CUDA_H_DIR)('CUPTI against Debian libcupti-dev (CUDA 11.8)', () => {
    compileForArm64('test/abi/cupti_abi_check.cc', CUDA_H_DIR === '/usr/include' ? [] : ['-idirafter', CUDA_H_DIR!]);
    expect(true).toBe(true);
  });

  it('the static_asserts are evaluated for aarch64, LP64, little-endian', () => {
    const out = execFileSync(CROSS!, ['-dM', '-E', '-x', 'c++', '/dev/null'], { encoding: 'utf8' });
    expect(out).toMatch(/#define __aarch64__ 1/);
    expect(out).toMatch(/#define __LP64__ 1/);
    expect(out).toMatch(/#define __BYTE_ORDER__ __ORDER_LITTLE_ENDIAN__/);
  });
});
