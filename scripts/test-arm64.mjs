#!/usr/bin/env node
/**
 * npm run test:arm64: the arm64 test subset (test/arm64/*.test.mjs, node:test) run by Node for
 * arm64 under qemu-user, against the built dist/ and the shipped prebuilds/linux-arm64/ (the
 * runner sets node-gyp-build's PREBUILDS_ONLY=1, so build/ — an x64 build — is never looked at).
 *
 *   node scripts/test-arm64.mjs [--native] [file-filter…]
 *
 * --native runs the same files with this machine's Node instead (a quick check of the tests
 * themselves). Needs: `npm run prebuild` (or `--arch arm64`) done, dist/ built, qemu-user and the
 * arm64 C/C++ runtimes installed; the arm64 Node is fetched once (scripts/arm64-toolchain.mjs).
 * The real-NVML test wants libnvidia-ml1:arm64 and skips, saying so, without it.
 *
 * No -L / QEMU_LD_PREFIX is passed to qemu: with the multiarch libc installed, adding the cross
 * sysroot makes Node spin at 100% forever. A file that runs longer than 10 minutes is killed and
 * fails (a hang guard, not a timing assertion).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, ToolchainError, arm64Node, crossCompiler, elfArch, qemu } from './arm64-toolchain.mjs';

const FILE_TIMEOUT_MS = 10 * 60_000;
const args = process.argv.slice(2);
const native = args.includes('--native');
const filters = args.filter((a) => a !== '--native');

function fail(message) {
  console.error(`test-arm64: ${message}`);
  process.exit(1);
}

const arch = native ? process.arch : 'arm64';
if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) fail('dist/ is not built: run "npm run build:ts" (npm ci does it)');
const prebuildDir = path.join(ROOT, 'prebuilds', `linux-${arch}`);
for (const f of ['gpu-telemetry.node', 'gpu_telemetry_sim.so', 'gpu_telemetry_sim_legacy.so', 'libgpu_telemetry_inject.so']) {
  const file = path.join(prebuildDir, f);
  if (elfArch(file) !== arch) {
    fail(`${path.relative(ROOT, file)} is ${fs.existsSync(file) ? `not an ${arch} build` : 'missing'}: run "npm run prebuild" first`);
  }
}

let command;
let prefix;
let env = { ...process.env, PREBUILDS_ONLY: '1', GPU_TELEMETRY_TEST_ARCH: arch };
delete env.QEMU_LD_PREFIX;
if (native) {
  command = process.execPath;
  prefix = [];
  env = { ...env, GPU_TELEMETRY_TEST_CC: 'gcc' };
} else {
  try {
    const q = qemu();
    const node = arm64Node();
    command = q;
    prefix = [node.node];
    // The injection test builds its fake CUDA application for arm64 with the cross compiler.
    let cc = '';
    try {
      cc = crossCompiler().cc;
    } catch {
      // no cross compiler: that test skips, saying so
    }
    env = { ...env, GPU_TELEMETRY_QEMU: q, GPU_TELEMETRY_TEST_CC: cc };
    console.log(`arm64 subset: ${path.relative(ROOT, node.node)} (Node ${node.version}) under ${q}, on this ${os.arch()} machine`);
  } catch (e) {
    if (e instanceof ToolchainError) fail(e.message);
    throw e;
  }
}

const dir = path.join(ROOT, 'test', 'arm64');
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.test.mjs') && (filters.length === 0 || filters.some((x) => f.includes(x))))
  .sort();
if (files.length === 0) fail(`no test file in test/arm64 matches ${filters.join(' ')}`);

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(command, [...prefix, '--test-reporter=spec', path.join(dir, file)], { cwd: ROOT, env, stdio: 'inherit' });
    const guard = setTimeout(() => {
      console.error(`test-arm64: ${file} still running after ${FILE_TIMEOUT_MS / 60_000} min: killed`);
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolve({ file, ok: code === 0, code: code ?? signal, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const started = Date.now();
const results = [];
for (const file of files) {
  console.log(`\n== ${file} (${arch}${native ? ', native' : ', qemu'})`);
  results.push(await runFile(file));
}
const total = (Date.now() - started) / 1000;
console.log(`\narm64 subset (${native ? `native ${arch}` : 'arm64 under qemu-user'}):`);
for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.file.padEnd(24)} ${r.seconds.toFixed(1).padStart(6)} s${r.ok ? '' : ` (exit ${r.code})`}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`Files: ${results.length - failed} passed, ${failed} failed · ${total.toFixed(1)} s`);
process.exit(failed ? 1 : 0);
