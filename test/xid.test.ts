/** XID events: counted per device, delivered as events, bounded under a storm. */
import { describe, expect, it } from 'vitest';
import { openGpuTelemetry, type XidEvent } from '../src/index.js';
import { constantScenario, waitFor, withTelemetry, writeScenario } from './helpers.js';

function scenarioWithXids(xids: object[], count = 2) {
  const base = constantScenario();
  return { ...base, devices: [{ ...base.devices[0], count }], xids };
}

describe('XID events', () => {
  it('arrive as events, and as per-device xidErrors / lastXid fields', async () => {
    const file = writeScenario(scenarioWithXids([{ device: 1, atMs: 300, code: 48 }, { device: 1, atMs: 400, code: 63 }]));
    await withTelemetry({ simulate: file, intervalMs: 50 }, async (gpu) => {
      const first = gpu.snapshot().devices;
      expect(first[0].status.xidErrors).toBe('ok');
      expect(first[0].fields.xidErrors).toBe(0);
      expect(first[0].fields.lastXid).toBe(0); // 0: none seen since open
      const seen: XidEvent[] = [];
      gpu.on('xid', (e) => seen.push(e));
      await waitFor(() => seen.length === 2);
      expect(seen[0]).toMatchObject({ device: 1, xid: 48, description: 'double-bit ECC error', gpuInstanceId: null });
      expect(seen[1]).toMatchObject({ device: 1, xid: 63 });
      expect(seen[0].at).toBeGreaterThan(Date.now() - 60_000);
      const snap = await waitFor(() => {
        const s = gpu.snapshot();
        return s.devices[1].fields.xidErrors === 2 ? s : undefined;
      });
      expect(snap.devices[1].fields.lastXid).toBe(63);
      expect(snap.devices[0].fields.xidErrors).toBe(0);
      expect(gpu.recentXids().map((e) => e.xid)).toEqual([48, 63]);
    });
  });

  it('a storm (2,000/s) is counted exactly while the JS queue stays bounded', async () => {
    const file = writeScenario(scenarioWithXids([{ device: 0, atMs: 100, code: 13, count: 3000, ratePerSecond: 2000 }], 1));
    await withTelemetry({ simulate: file, intervalMs: 50 }, async (gpu) => {
      let events = 0;
      gpu.on('xid', () => events++);
      const snap = await waitFor(() => {
        const s = gpu.snapshot();
        return s.devices[0].fields.xidErrors === 3000 ? s : undefined;
      }, 15_000);
      expect(snap.devices[0].fields.lastXid).toBe(13);
      await waitFor(() => events + gpu.stats().xidEventsDropped === 3000);
      expect(gpu.recentXids()).toHaveLength(100);
    });
  });

  it('the shipped gpu-lost scenario reports XID 79 before the GPU drops', async () => {
    const gpu = await openGpuTelemetry({ simulate: 'fault-gpu-lost', intervalMs: 100 });
    try {
      const e = await new Promise<XidEvent>((resolve) => gpu.once('xid', resolve));
      expect(e).toMatchObject({ device: 2, xid: 79, description: 'GPU has fallen off the bus' });
      await waitFor(() => gpu.snapshot().devices[2].state === 'gpu_lost');
    } finally {
      await gpu.close();
    }
  });
});
