/**
 * arm64: the CLI as an installed user runs it — `snapshot --simulate gb10`, and `serve` answering
 * /metrics, with the simulator (gpu_telemetry_up 1) and with the real arm64 NVML and no driver
 * (gpu_telemetry_up 0, still answering).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { CLI, metricValue, runNode, spawnNode, waitFor } from './harness.mjs';

const running = [];
after(() => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
});

async function serve(args) {
  const child = spawnNode([CLI, 'serve', '--port', '0', '--interval-ms', '200', ...args]);
  running.push(child);
  const port = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}: ${child.err}`);
    const m = /serving http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(child.out);
    return m ? Number(m[1]) : undefined;
  });
  return { child, url: `http://127.0.0.1:${port}/metrics` };
}

async function stop(child) {
  child.kill('SIGTERM');
  const { code } = await child.exited;
  assert.equal(code, 0, `serve exit code (stderr: ${child.err})`);
}

test('snapshot --simulate gb10 prints the GB10 and its meminfo-sourced memory', async () => {
  const r = await runNode([CLI, 'snapshot', '--simulate', 'gb10']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /SIMULATED \(scenario gb10\)/);
  assert.match(r.out, /NVIDIA GB10 \(simulated\).*unified memory/);
  assert.match(r.out, /memoryTotalBytes\s+[\d.]+ GiB\s+meminfo/);
});

test('serve --simulate gb10 answers /metrics with gpu_telemetry_up 1 and the GPU\'s series', async () => {
  const { child, url } = await serve(['--simulate', 'gb10']);
  const text = await waitFor(async () => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const body = await res.text();
    return metricValue(body, 'gpu_memory_used_bytes') !== undefined ? body : undefined;
  });
  assert.equal(metricValue(text, 'gpu_telemetry_up'), 1);
  assert.equal(metricValue(text, 'gpu_telemetry_device_up', { gpu: '0' }), 1);
  assert.ok(metricValue(text, 'gpu_sm_clock_hertz', { gpu: '0' }) > 0);
  assert.match(text, /gpu_telemetry_build_info\{[^}]*simulated="true"/);
  await stop(child);
});

test('serve with the real arm64 NVML and no driver: still answers, gpu_telemetry_up 0', async () => {
  const { child, url } = await serve([]);
  assert.match(child.err, /GPUs unavailable: DRIVER_NOT_LOADED/);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.equal(metricValue(text, 'gpu_telemetry_up'), 0);
  await stop(child);
});
