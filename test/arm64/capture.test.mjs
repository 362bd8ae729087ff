/**
 * arm64: a kernel-trace capture on the simulated CUPTI (the capture engine's buffer pool, the
 * simulator's producer thread, records parsed by the CUDA 13 layout) → KernelTrace, Chrome trace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { importPackage, sleep } from './harness.mjs';

const { openGpuTelemetry } = await importPackage();

test('arm 5 steps on capture-decode-loop: 5 steps, kernels with names, a Chrome trace that parses', async () => {
  const gpu = await openGpuTelemetry({ simulate: 'capture-decode-loop', intervalMs: 200 });
  try {
    const cap = gpu.capture.arm({ steps: 5, timeoutMs: 120_000 });
    for (let i = 0; i < 5; i++) {
      await sleep(30);
      cap.step();
    }
    const trace = await cap.done;
    assert.equal(trace.meta.reason, 'steps');
    assert.equal(trace.meta.stepsCaptured, 5);
    assert.equal(trace.meta.simulated, true);
    assert.equal(trace.meta.layout, 'cuda13');
    assert.equal(trace.steps.length, 5);
    assert.ok(trace.kernels.length > 0, 'kernels captured');
    assert.ok(trace.kernels.every((k) => typeof k.name === 'string' && k.name.length > 0 && k.endNs >= k.startNs));
    const { traceEvents } = JSON.parse(trace.toChromeTrace());
    assert.ok(traceEvents.some((e) => e.ph === 'X' && e.cat === 'kernel'), 'kernel events in the Chrome trace');
    const summary = trace.summary();
    assert.equal(summary.stepDurations.count, 5);
    assert.ok(summary.topKernels.length > 0);
  } finally {
    const live = gpu.capture.active;
    if (live) await live.cancel().catch(() => undefined);
    await gpu.close();
  }
});
