/**
 * NVML GPM against the simulator's GPM, which behaves like the real driver here:
 * - NVIDIA: "The interval between two nvmlGpmSampleGet() calls should be greater than 100ms due to
 *   the internal sample refresh rate" (NVIDIA/go-nvml gen/nvml/nvml.h, lines 13861-13862 and
 *   13911-13912). The simulated GPM answers a pair closer than 100 ms with SUCCESS and zeros (one
 *   internal refresh read twice), so a client that pairs samples at its sampling interval publishes
 *   zeros as readings.
 * - A GPU reset restarts the device's counters and clock: a pair with one sample from before a
 *   loss and one from after gives SUCCESS and values that mean nothing.
 */
import { describe, expect, it } from 'vitest';
import type { GpuTelemetry } from '../src/index.js';
import { constantScenario, waitFor, withTelemetry, writeScenario } from './helpers.js';

/** One H100 (GPM, no DCGM), constant load 0.5 and a constant, noise-free tensor activity of 0.5. */
function gpmScenario(overrides: Record<string, unknown> = {}) {
  return writeScenario(
    constantScenario({ name: 'gpm-test', ...overrides }, { profile: { tensorActive: { shape: 'constant', value: 0.5, noise: 0 } } }),
  );
}

// PCIe TX of the constant scenario: max × (0.02 + 0.25 × load) = 64e9 × 0.145 bytes/s.
const PCIE_TX = 64e9 * (0.02 + 0.25 * 0.5);

interface Reading {
  seq: number;
  state: string;
  status: string;
  source: string;
  tensor: number | null;
  pcieTx: number | null;
  reason: string | undefined;
}

/** Every published sample (polled faster than the interval) until `until` says stop. */
async function readUntil(gpu: GpuTelemetry, until: (r: Reading[]) => boolean, timeoutMs = 20_000): Promise<Reading[]> {
  const out: Reading[] = [];
  let seq = -1;
  await waitFor(
    () => {
      const s = gpu.snapshot();
      if (s.seq !== seq) {
        seq = s.seq;
        const d = s.devices[0];
        out.push({
          seq: s.seq,
          state: d.state,
          status: d.status.tensorActiveRatio,
          source: d.source.tensorActiveRatio,
          tensor: d.fields.tensorActiveRatio,
          pcieTx: d.fields.pcieTxBytesPerSecond,
          reason: d.reasons.tensorActiveRatio,
        });
      }
      return until(out);
    },
    timeoutMs,
    5,
  );
  return out;
}

function expectReal(r: Reading) {
  expect(r.source, `sample ${r.seq}`).toBe('gpm');
  expect(r.tensor, `tensor activity of sample ${r.seq}`).toBe(0.5);
  expect(r.pcieTx, `PCIe TX of sample ${r.seq}`).not.toBeNull();
  expect(Math.abs(r.pcieTx! - PCIE_TX) / PCIE_TX, `PCIe TX of sample ${r.seq}: ${r.pcieTx}`).toBeLessThan(1e-6);
}

describe('GPM pairs are at least 100 ms apart, whatever intervalMs is', () => {
  it('at intervalMs 10: pending until the first pair, then only real readings (never a refresh read twice)', async () => {
    await withTelemetry({ simulate: gpmScenario(), intervalMs: 10 }, async (gpu) => {
      expect(gpu.backends.gpm.state).toBe('active');
      const first = gpu.snapshot().devices[0];
      expect(first.status.tensorActiveRatio).toBe('pending');
      expect(first.source.tensorActiveRatio).toBe('gpm');
      expect(first.reasons.tensorActiveRatio).toMatch(/GPM .*100 ms/);
      // Until 40 ok readings have been seen (several pairs: a pair every >= 100 ms, the values
      // re-published between pairs).
      const readings = await readUntil(gpu, (r) => r.filter((x) => x.status === 'ok').length >= 40);
      const firstOk = readings.findIndex((r) => r.status === 'ok');
      for (const r of readings.slice(0, firstOk)) expect(r.status, `sample ${r.seq} before the first pair`).toBe('pending');
      for (const r of readings.slice(firstOk)) {
        expect(r.status, `sample ${r.seq}`).toBe('ok');
        expectReal(r);
      }
    });
  });

  it('at intervalMs 100 the values are real from the first ok on', async () => {
    await withTelemetry({ simulate: gpmScenario(), intervalMs: 100 }, async (gpu) => {
      const readings = await readUntil(gpu, (r) => r.filter((x) => x.status === 'ok').length >= 8);
      for (const r of readings.filter((x) => x.status === 'ok')) expectReal(r);
    });
  });
});

describe('GPM across a GPU loss (a reset)', () => {
  it('never pairs a sample from before the loss with one from after: pending again, then real values', async () => {
    const file = gpmScenario({ faults: [{ type: 'gpu_lost', device: 0, atMs: 1500, durationMs: 1000 }] });
    await withTelemetry({ simulate: file, intervalMs: 200, lostRetryMs: 100 }, async (gpu) => {
      // Until the device has been lost, come back, and given two ok readings since.
      const readings = await readUntil(gpu, (r) => {
        const lost = r.findIndex((x) => x.state === 'gpu_lost');
        return lost >= 0 && r.slice(lost).filter((x) => x.state === 'ok' && x.status === 'ok').length >= 2;
      });
      const lost = readings.findIndex((r) => r.state === 'gpu_lost');
      const back = readings.findIndex((r, i) => i > lost && r.state === 'ok');
      expect(lost).toBeGreaterThan(0);
      expect(back).toBeGreaterThan(lost);
      for (const r of readings.slice(lost, back)) expect(r.status).toBe('gpu_lost');
      // The first sample after the GPU is back starts a new pair.
      expect(readings[back].status, `first sample after the loss: ${JSON.stringify(readings[back])}`).toBe('pending');
      for (const r of readings.slice(back).filter((x) => x.status === 'ok')) expectReal(r);
      for (const r of readings.slice(0, lost).filter((x) => x.status === 'ok')) expectReal(r);
    });
  });

});
