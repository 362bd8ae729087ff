/**
 * GB10 (DGX Spark) and other unified-memory GPUs: memory from /proc/meminfo, link fields honestly
 * not supported; and the rule that a NOT_SUPPORTED on a discrete card is never masked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIELDS } from '../src/index.js';
import { SCENARIO_DIR } from '../src/paths.js';
import { constantScenario, nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

const KiB = 1024;
const GiB = 2 ** 30;

function meminfoFile(totalKiB: number, availableKiB: number, freeKiB = 1000): string {
  const file = writeScenario({}).replace(/\.json$/, '.meminfo');
  fs.writeFileSync(file, `MemTotal:       ${totalKiB} kB\nMemFree:        ${freeKiB} kB\nMemAvailable:   ${availableKiB} kB\nCached:  5 kB\n`);
  return file;
}

function readMeminfoKiB(file: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(file, 'utf8'));
  return Number(m![1]);
}

const LINK_FIELDS = [
  'pcieTxBytesPerSecond',
  'pcieRxBytesPerSecond',
  'pcieLinkGeneration',
  'pcieLinkWidth',
  'pcieReplayErrors',
  'nvlinkActiveLinks',
  'nvlinkTxBytesPerSecond',
  'nvlinkRxBytesPerSecond',
] as const;

describe('gb10 scenario', () => {
  it('memory fields come from the meminfo file, the GPU processes from NVML, links are not_supported', async () => {
    await withTelemetry({ simulate: 'gb10', intervalMs: 50 }, async (gpu) => {
      const info = gpu.devices[0];
      expect(info.unifiedMemory).toBe(true);
      expect(info.unifiedMemoryReason).toMatch(/GB10/);
      const file = path.join(SCENARIO_DIR, 'gb10.meminfo');
      const total = readMeminfoKiB(file, 'MemTotal') * KiB;
      const available = readMeminfoKiB(file, 'MemAvailable') * KiB;
      expect(info.memoryTotalBytes).toBe(total);

      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.fields.memoryTotalBytes).toBe(total);
      expect(d.fields.memoryFreeBytes).toBe(available); // MemAvailable, not MemFree
      expect(d.fields.memoryUsedBytes).toBe(total - available);
      for (const f of ['memoryTotalBytes', 'memoryUsedBytes', 'memoryFreeBytes'] as const) {
        expect(d.source[f]).toBe('meminfo');
        expect(d.status[f]).toBe('ok');
      }
      expect(d.status.memoryReservedBytes).toBe('not_supported');
      expect(d.fields.gpuProcessMemoryBytes).toBe(64424509440 + 1288490188);
      expect(d.source.gpuProcessMemoryBytes).toBe('nvml');
      for (const f of LINK_FIELDS) {
        expect.soft(d.status[f], f).toBe('not_supported');
        expect.soft(d.fields[f], f).toBeNull();
        expect.soft(d.reasons[f], f).toMatch(/unified-memory GPU on NVLink-C2C/);
      }
      // Nothing else lost: clocks, power, temperature, utilisation are real readings.
      for (const f of ['smClockHz', 'powerWatts', 'temperatureGpuCelsius', 'gpuUtilizationRatio', 'processCount'] as const) {
        expect.soft(d.status[f], f).toBe('ok');
      }
    });
  });

  it('re-reads meminfo every sample', async () => {
    const file = meminfoFile(100 * GiB / KiB, 90 * GiB / KiB);
    await withTelemetry({ simulate: 'gb10', intervalMs: 50, meminfoPath: file }, async (gpu) => {
      expect((await nextSamples(gpu, 1)).devices[0].fields.memoryUsedBytes).toBe(10 * GiB);
      fs.writeFileSync(file, `MemTotal: ${100 * GiB / KiB} kB\nMemAvailable: ${40 * GiB / KiB} kB\n`);
      const s = await waitFor(() => {
        const snap = gpu.snapshot();
        return snap.devices[0].fields.memoryUsedBytes === 60 * GiB ? snap : undefined;
      });
      expect(s.devices[0].fields.memoryFreeBytes).toBe(40 * GiB);
    });
  });

  it('an unreadable or malformed meminfo is an error status with a reason, not a number', async () => {
    for (const meminfoPath of ['/nonexistent/meminfo', meminfoFile(0, 0).replace(/$/, '')]) {
      if (meminfoPath !== '/nonexistent/meminfo') fs.writeFileSync(meminfoPath, 'MemTotal: 1000 kB\n'); // no MemAvailable
      await withTelemetry({ simulate: 'gb10', intervalMs: 50, meminfoPath }, async (gpu) => {
        const d = (await nextSamples(gpu, 1)).devices[0];
        expect(d.status.memoryUsedBytes).toBe('error');
        expect(d.fields.memoryUsedBytes).toBeNull();
        expect(d.source.memoryUsedBytes).toBe('meminfo');
        expect(d.reasons.memoryUsedBytes).toMatch(/meminfo/);
        expect(d.status.smClockHz).toBe('ok');
      });
    }
  });

  it('a GB10 whose memory call answers with figures that are not the pool still uses meminfo', async () => {
    const file = meminfoFile(120 * GiB / KiB, 100 * GiB / KiB);
    const scenario = constantScenario({ meminfo: file }, { name: 'NVIDIA GB10', memoryInfo: 'ok', memoryTotalBytes: 4 * GiB, memoryReservedBytes: 0, nvlink: null, processes: [] });
    await withTelemetry({ simulate: writeScenario(scenario), intervalMs: 50 }, async (gpu) => {
      const d = (await nextSamples(gpu, 1)).devices[0];
      expect(gpu.devices[0].unifiedMemory).toBe(true);
      expect(d.fields.memoryTotalBytes).toBe(120 * GiB);
      expect(d.source.memoryTotalBytes).toBe('meminfo');
    });
  });
});

describe('a discrete GPU whose memory call answers NOT_SUPPORTED', () => {
  it('keeps not_supported: system memory never masks a fault', async () => {
    const file = meminfoFile(512 * GiB / KiB, 400 * GiB / KiB);
    const scenario = constantScenario({ meminfo: file }, { memoryInfo: 'not_supported' });
    await withTelemetry({ simulate: writeScenario(scenario), intervalMs: 50 }, async (gpu) => {
      expect(gpu.devices[0].unifiedMemory).toBe(false);
      expect(gpu.devices[0].memoryTotalBytes).toBeNull();
      const d = (await nextSamples(gpu, 2)).devices[0];
      for (const f of ['memoryTotalBytes', 'memoryUsedBytes', 'memoryFreeBytes', 'memoryReservedBytes'] as const) {
        expect(d.status[f], f).toBe('not_supported');
        expect(d.source[f], f).toBe('nvml');
        expect(d.fields[f], f).toBeNull();
      }
      // Its links are real: PCIe and NVLink still report.
      expect(d.status.pcieLinkGeneration).toBe('ok');
      expect(d.status.nvlinkActiveLinks).toBe('ok');
    });
  });
});

it('every field the catalogue lists has a known status on every shipped scenario', async () => {
  for (const name of ['h100-sxm-8', 'a100-pcie-2', 'gb10']) {
    await withTelemetry({ simulate: name, intervalMs: 50 }, async (gpu) => {
      const snap = await nextSamples(gpu, 2);
      for (const d of snap.devices) {
        for (const f of FIELDS) {
          expect(['ok', 'not_supported'], `${name} ${f.name}: ${d.reasons[f.name]}`).toContain(d.status[f.name]);
          if (d.status[f.name] !== 'ok') expect(d.reasons[f.name]!.length, f.name).toBeGreaterThan(10);
        }
      }
    });
  }
});
