/**
 * The objects snapshot() returns, as a reader sees them: frozen, plain-looking (keys, JSON, spread,
 * structuredClone, util.inspect), and each part of a device from the sample it belongs to, however
 * late it is first read (parts are decoded on first read, from a block that is reused later).
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIELD_NAMES, type DeviceSample } from '../src/index.js';
import { loadNative, type NativeHandle } from '../src/native.js';
import { SnapshotDecoder } from '../src/snapshot-decoder.js';
import { waitFor, withTelemetry } from './helpers.js';

const KEYS = [
  'index',
  'uuid',
  'name',
  'state',
  'fields',
  'status',
  'source',
  'reasons',
  'clockEventReasons',
  'nvlinks',
  'processes',
  'processesTruncated',
  'processUtilization',
  'migMode',
  'migInstances',
  'migInstancesReason',
  'migInstancesTruncated',
];

async function newSample(gpu: { stats(): { samples: number } }, after: number): Promise<void> {
  await waitFor(() => gpu.stats().samples > after, 10_000, 2);
}

describe('snapshot objects', () => {
  it('are frozen and look like plain objects to keys, JSON, spread, structuredClone and inspect', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 20 }, async (gpu) => {
      await newSample(gpu, gpu.stats().samples);
      const snap = gpu.snapshot();
      const d = snap.devices[0];
      expect(Object.keys(d)).toEqual(KEYS);
      expect(Object.getPrototypeOf(d)).toBe(Object.prototype);
      expect(Object.isFrozen(snap.devices)).toBe(true);
      expect(Object.isFrozen(d)).toBe(true);
      for (const part of [d.fields, d.status, d.source, d.reasons, d.nvlinks, d.processes]) expect(Object.isFrozen(part)).toBe(true);
      expect(Object.keys(d.fields)).toEqual([...FIELD_NAMES]);
      expect(Object.isFrozen(d.migInstances)).toBe(true);
      expect(() => {
        (d as { state: string }).state = 'gpu_lost';
      }).toThrow(TypeError);
      expect(() => {
        (d.fields as Record<string, number>).powerWatts = 1;
      }).toThrow(TypeError);

      const plain = JSON.parse(JSON.stringify(d)) as DeviceSample;
      expect(Object.keys(plain)).toEqual(KEYS);
      expect(structuredClone(d)).toEqual(plain);
      expect({ ...d }).toEqual(plain);
      expect(d).toEqual(plain);
      expect(inspect(d, { depth: 1 })).not.toMatch(/Getter/);
      expect(inspect(d, { depth: 4 })).toContain(`powerWatts: ${d.fields.powerWatts}`);
    });
  });

  it('reads every part from its own sample, however late it is first read (blocks are reused only when done)', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 3_600_000 }, async (gpu) => {
      const layout = (gpu as unknown as { handle: NativeHandle }).handle.layout();
      const c = loadNative().constants();
      const decoder = new SnapshotDecoder(layout, c, gpu.devices);
      /** Writes sample k into the block the next sample is copied to (what readSnapshot does). */
      const write = (k: number) => {
        const b = decoder.buffer;
        const n = layout.devices;
        new Float64Array(b, layout.valuesOffset, n * c.fieldCount).fill(k);
        new Uint8Array(b, layout.statusOffset, n * c.fieldCount).fill(0);
        new Uint8Array(b, layout.sourceOffset, n * c.fieldCount).fill(1);
        new Int32Array(b, layout.codesOffset, n * c.fieldCount).fill(0);
        const links = new Float64Array(b, layout.linksOffset, n * c.maxLinks * c.linkStride).fill(NaN);
        const procs = new Float64Array(b, layout.processesOffset, n * c.maxProcesses * c.processStride).fill(NaN);
        const meta = new Float64Array(b, layout.deviceMetaOffset, n * c.deviceMetaStride).fill(0);
        for (let d = 0; d < n; d++) {
          for (let l = 0; l < 4; l++) {
            const o = (d * c.maxLinks + l) * c.linkStride;
            links.set([1, k * 1000 + d * 10 + l, k], o);
          }
          for (let p = 0; p < k % 3; p++) procs.set([k * 100 + p, k * 1e9], (d * c.maxProcesses + p) * c.processStride);
          meta.set([0, k % 3, 0, 4], d * c.deviceMetaStride);
          meta[d * c.deviceMetaStride + 5] = -1;
          meta[d * c.deviceMetaStride + 6] = -1;
        }
      };
      const samples: { k: number; devices: readonly DeviceSample[] }[] = [];
      for (let k = 1; k <= 8; k++) {
        write(k);
        decoder.newSample();
        const devices = decoder.decodeDevices(false);
        samples.push({ k, devices });
        if (k % 3 === 0) structuredClone(devices); // every part decoded: this block can be reused
        else expect(devices[0].fields.powerWatts).toBe(k); // one part only: the block stays with it
        await Promise.resolve(); // the decoder makes its next block and device objects after the caller
      }
      // However little of each sample was read, the blocks are a bounded pool (the oldest sample's
      // remaining parts are decoded to take its block back).
      expect((decoder as unknown as { blocks: unknown[] }).blocks.length).toBeLessThanOrEqual(2);
      for (const { k, devices } of samples) {
        for (const d of devices) {
          expect(d.fields.smClockHz).toBe(k);
          expect(d.nvlinks.map((l) => l.txBytesPerSecond)).toEqual([0, 1, 2, 3].map((l) => k * 1000 + d.index * 10 + l));
          expect(d.processes.map((p) => p.pid)).toEqual(Array.from({ length: k % 3 }, (_, p) => k * 100 + p));
          expect(d.status.smClockHz).toBe('ok');
          expect(d.source.smClockHz).toBe('nvml');
        }
      }
    });
  });

  it('a part read before and after later samples is the same object', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 10 }, async (gpu) => {
      const snap = gpu.snapshot();
      const first = snap.devices[2].fields;
      const clone = structuredClone(snap.devices[2]);
      await newSample(gpu, gpu.stats().samples + 3);
      expect(snap.devices[2].fields).toBe(first);
      expect(structuredClone(snap.devices[2])).toEqual(clone);
      expect(gpu.snapshot().seq).toBeGreaterThan(snap.seq);
    });
  });
});
