/**
 * arm64: the injection library from prebuilds/linux-arm64/ in an arm64 CUDA-like process (the fake
 * application, cross-built, run under qemu-user), armed by pid from the arm64 Node: start-up,
 * control socket, the capture engine in the target, records streamed back, a KernelTrace.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EXPECTED_ARCH, ROOT, importPackage, waitFor } from './harness.mjs';

const { armProcess, injectLibraryPath, listInjectedProcesses } = await importPackage();
const cc = process.env.GPU_TELEMETRY_TEST_CC ?? 'gcc';

test('an arm64 process with the injection library: armed by pid for 3 NVTX steps', { skip: cc === '' ? 'no aarch64 cross compiler (gcc-aarch64-linux-gnu)' : false }, async () => {
  const inject = injectLibraryPath();
  assert.equal(inject, path.join(ROOT, 'prebuilds', `linux-${EXPECTED_ARCH}`, 'libgpu_telemetry_inject.so'));
  const sim = path.join(ROOT, 'prebuilds', `linux-${EXPECTED_ARCH}`, 'gpu_telemetry_sim.so');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-arm64-inject-'));
  const xdg = path.join(dir, 'xdg');
  fs.mkdirSync(xdg, { mode: 0o700 });
  const app = path.join(dir, 'fake_cuda_app');
  execFileSync(cc, ['-std=c11', '-O1', path.join(ROOT, 'test', 'native', 'fake_cuda_app.c'), '-o', app, '-ldl', '-lpthread']);
  const scenario = path.join(dir, 'scenario.json');
  fs.writeFileSync(
    scenario,
    JSON.stringify({ name: 'arm64-inject', devices: [{ name: 'NVIDIA GB10 (simulated)', memoryTotalBytes: 128e9 }], cupti: { version: 130001, kernelsPerSecond: 0 } }),
  );
  process.env.XDG_RUNTIME_DIR = xdg;
  const qemu = process.env.GPU_TELEMETRY_QEMU;
  const argv = [app, '--scenario', scenario, '--step-sleep-us', '20000'];
  const child = spawn(qemu ?? argv[0], qemu ? argv : argv.slice(1), {
    env: { ...process.env, XDG_RUNTIME_DIR: xdg, GPU_TELEMETRY_CUPTI_LIB: sim, NVTX_INJECTION64_PATH: sim, CUDA_INJECTION64_PATH: inject },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  try {
    const ready = await waitFor(() => /READY pid=(\d+) injected=1/.exec(out) ?? undefined);
    const pid = Number(ready[1]);
    const listed = await listInjectedProcesses({ dir: path.join(xdg, 'gpu-telemetry') });
    assert.deepEqual(listed.map((p) => [p.pid, p.state]), [[pid, 'dormant']]);
    const trace = await armProcess(pid, { steps: 3, stepRange: 'decode_step', timeoutMs: 300_000 }).done;
    assert.equal(trace.meta.reason, 'steps');
    assert.equal(trace.meta.stepsCaptured, 3);
    assert.equal(trace.meta.pid, pid);
    for (let s = 0; s < 3; s++) {
      const names = trace.kernels.filter((k) => k.step === s).map((k) => k.name).sort();
      assert.match(names[0] ?? '', /^step\d+_k0$/);
      assert.equal(names.length, 3, `step ${s}: ${names.join(' ')}`);
    }
    JSON.parse(trace.toChromeTrace());
  } catch (e) {
    throw new Error(`${e.message}\n(target stderr: ${err})`);
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
