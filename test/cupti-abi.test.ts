/**
 * CUPTI ABI checks: the addon's CUPTI declarations (native/vendor/cupti_abi.h) and, separately, the
 * simulator's (native/sim/cupti_types.h) compiled next to NVIDIA's real headers of BOTH generations
 * installable here: the CUDA 13 toolkit (/usr/local/cuda/include; its cupti_activity_deprecated.h
 * carries the CUDA 12 structs) and Debian libcupti-dev (CUDA 11.8, /usr/include). A size, offset
 * or constant that differs fails the compile.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { skipReason } from './system-packages.js';

const CUDA13_INCLUDE = '/usr/local/cuda/include';
const CUDA13_HEADER = fs.existsSync(path.join(CUDA13_INCLUDE, 'cupti_activity_deprecated.h'));
const DEBIAN_HEADER = fs.existsSync('/usr/include/cupti_activity.h');
// Debian's CUPTI 11.8 headers include <cuda.h> (and the runtime headers), which libcupti-dev does
// not ship: Debian's nvidia-cuda-dev puts them in /usr/include; else take them from the CUDA
// toolkit (searched after /usr/include, so CUPTI's own headers stay the 11.8 ones).
const CUDA_H_DIR = fs.existsSync('/usr/include/cuda.h')
  ? '/usr/include'
  : fs.existsSync(path.join(CUDA13_INCLUDE, 'cuda.h'))
    ? CUDA13_INCLUDE
    : null;

function compileAndRun(flags: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-cupti-abi-'));
  const exe = path.join(dir, 'check');
  try {
    execFileSync(
      'g++',
      ['-std=c++17', '-Wall', '-Werror', `-I${path.join(PACKAGE_ROOT, 'native')}`, ...flags,
        path.join(PACKAGE_ROOT, 'test/abi/cupti_abi_check.cc'), '-o', exe],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = execFileSync(exe, { encoding: 'utf8' });
    process.stdout.write(out);
    return out;
  } catch (e) {
    const err = e as { stderr?: string };
    throw new Error(`ABI check test/abi/cupti_abi_check.cc failed (${flags.join(' ')}):\n${err.stderr ?? String(e)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (!CUDA13_HEADER) skipReason(`${CUDA13_INCLUDE}/cupti_activity_deprecated.h (CUDA 13 toolkit CUPTI headers)`, 'cuda-cupti-dev-13 (NVIDIA CUDA repository)');
if (!DEBIAN_HEADER) skipReason('/usr/include/cupti_activity.h', 'libcupti-dev');
else if (!CUDA_H_DIR) skipReason('cuda.h (needed by the CUPTI 11.8 headers)', 'nvidia-cuda-dev (or a CUDA toolkit in /usr/local/cuda)');

describe('CUPTI ABI', () => {
  it.skipIf(!CUDA13_HEADER)('CUDA 13 and CUDA 12 record structs, constants and layouts match /usr/local/cuda/include', () => {
    const out = compileAndRun([`-I${CUDA13_INCLUDE}`]);
    expect(out).toMatch(/CUPTI_API_VERSION 13\d{4}\): \d+ checks passed/);
    expect(Number(/(\d+) checks/.exec(out)![1])).toBeGreaterThan(250);
    expect(out).toContain('Kernel10 216');
    expect(out).toContain('Kernel9 208');
    expect(out).toContain('cuptiSubscribe_v2: CUpti_SubscriberParams_STRUCT_SIZE 32');
  });

  it.skipIf(!DEBIAN_HEADER || !CUDA_H_DIR)('CUDA 11.8 record structs and constants match Debian libcupti-dev (/usr/include)', () => {
    const out = compileAndRun(CUDA_H_DIR === '/usr/include' ? [] : ['-idirafter', CUDA_H_DIR ?? '/nonexistent']);
    expect(out).toMatch(/CUPTI_API_VERSION 18\): \d+ checks passed/);
    expect(Number(/(\d+) checks/.exec(out)![1])).toBeGreaterThan(150);
    expect(out).toContain('Kernel8 200');
  });
});
