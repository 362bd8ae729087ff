/**
 * What a real NVIDIA driver does that a friendly simulator would not: the facts of NVML's newest
 * header (go-nvml gen/nvml/nvml.h, NVML API 13) played by the simulator, each checked through the
 * real loader and sampler. Every test here failed against the code before the fix it guards
 * (issue #11): PCIe byte counters read from the wrong field ids, value types NVML added later,
 * ATS addressing, MIG mode, NVLink beyond 18 links and down links, DCGM's 0 on PCIe cards, and
 * XID events around a lost GPU.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { constantScenario, nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

const GiB = 2 ** 30;
// The simulator's PCIe counters grow at max × (0.02 + 0.25 load) (TX) and max × (0.01 + 0.20 load) (RX).
const TX_AT_HALF = 64e9 * (0.02 + 0.25 * 0.5);
const RX_AT_HALF = 64e9 * (0.01 + 0.2 * 0.5);

const flags: string[] = [];
function flagFile(): string {
  const file = writeScenario({}).replace(/\.json$/, '.flag');
  flags.push(file);
  return file;
}
afterEach(() => {
  for (const f of flags.splice(0)) fs.rmSync(f, { force: true });
});

describe('PCIe byte counters (NVML_FI_DEV_PCIE_COUNT_TX_BYTES = 197, _RX_BYTES = 198)', () => {
  it('TX and RX come from their own counters; field 196 (a T.Limit temperature) is not read as bytes', async () => {
    // GPM off and no DCGM: the NVML path, as on L4/L40S/Ada or older drivers.
    const file = writeScenario(constantScenario({}, { gpm: false }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 3)).devices[0];
      expect(d.source.pcieTxBytesPerSecond).toBe('nvml');
      expect(d.fields.pcieTxBytesPerSecond! / TX_AT_HALF).toBeCloseTo(1, 2);
      expect(d.fields.pcieRxBytesPerSecond! / RX_AT_HALF).toBeCloseTo(1, 2);
    });
  });

  for (const bits of [64, 32] as const) {
    it(`a ${bits}-bit counter that wraps between two samples still gives the rate (never pending, never negative)`, async () => {
      // Start 1.5 GB below the wrap point: at ~7 GB/s TX the counter wraps within the first second.
      const start = bits === 64 ? 2 ** 64 - 1.5e9 : 2 ** 32 - 1.5e9;
      const file = writeScenario(
        constantScenario({}, { gpm: false, pcie: { generation: 5, width: 16, maxBytesPerSecond: 64e9, counterBits: bits, counterStartBytes: start } }),
      );
      await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
        await nextSamples(gpu, 2);
        const seen: number[] = [];
        const statuses = new Set<string>();
        for (let i = 0; i < 15; i++) {
          const d = (await nextSamples(gpu, 1)).devices[0];
          statuses.add(d.status.pcieTxBytesPerSecond);
          if (d.fields.pcieTxBytesPerSecond !== null) seen.push(d.fields.pcieTxBytesPerSecond / TX_AT_HALF);
        }
        expect([...statuses]).toEqual(['ok']);
        for (const ratio of seen) expect(ratio).toBeCloseTo(1, 1);
      });
    });
  }
});

describe('every NVML value type', () => {
  it('NVML_VALUE_TYPE_UNSIGNED_SHORT (6) is read; an unknown type is an error with the reason, never NaN published as ok', async () => {
    // Memory temperature (field 82) answered as unsigned short, remapped rows (142) in a type this
    // build cannot know.
    const file = writeScenario(constantScenario({}, { gpm: false, fieldValueTypes: { '82': 6, '142': 17 } }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.status.temperatureMemoryCelsius).toBe('ok');
      expect(d.fields.temperatureMemoryCelsius).toBe(61);
      expect(d.status.remappedRowsCorrectable).toBe('error');
      expect(d.fields.remappedRowsCorrectable).toBeNull();
      expect(d.reasons.remappedRowsCorrectable).toMatch(/value type 17/);
      // The general rule: a null value is never `ok`.
      for (const [name, status] of Object.entries(d.status)) {
        if (status === 'ok') expect.soft(d.fields[name as keyof typeof d.fields], name).not.toBeNull();
      }
    });
  });
});

describe('unified memory from nvmlDeviceGetAddressingMode (ATS), not only the name GB10', () => {
  function meminfo(totalKiB: number, availableKiB: number): string {
    const file = writeScenario({}).replace(/\.json$/, '.meminfo');
    fs.writeFileSync(file, `MemTotal:       ${totalKiB} kB\nMemFree:        1000 kB\nMemAvailable:   ${availableKiB} kB\n`);
    return file;
  }

  it('an ATS device of another name with no framebuffer of its own reads memory from meminfo', async () => {
    const mem = meminfo(64 * 1024 * 1024, 40 * 1024 * 1024);
    const file = writeScenario(
      constantScenario({}, { name: 'NVIDIA Thor-like SoC', addressingMode: 'ats', memoryInfo: 'not_supported', nvlink: null, processes: [] }),
    );
    await withTelemetry({ simulate: file, intervalMs: 100, meminfoPath: mem }, async (gpu) => {
      expect(gpu.devices[0].unifiedMemory).toBe(true);
      expect(gpu.devices[0].unifiedMemoryReason).toMatch(/ATS/);
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.source.memoryUsedBytes).toBe('meminfo');
      expect(d.fields.memoryUsedBytes).toBe(24 * GiB);
    });
  });

  it('HMM on a discrete card is not unified memory, even with a framebuffer larger than system memory', async () => {
    const mem = meminfo(64 * 1024 * 1024, 40 * 1024 * 1024); // 64 GiB of system memory, 80 GB card
    const file = writeScenario(constantScenario({}, { addressingMode: 'hmm' }));
    await withTelemetry({ simulate: file, intervalMs: 100, meminfoPath: mem }, async (gpu) => {
      expect(gpu.devices[0].unifiedMemory).toBe(false);
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.source.memoryUsedBytes).toBe('nvml');
      expect(d.fields.memoryUsedBytes).toBe(11 * GiB);
    });
  });

  it('gh200: ATS, but NVML reports its 96 GB of HBM3: framebuffer figures from NVML, no meminfo fallback', async () => {
    await withTelemetry({ simulate: 'gh200', intervalMs: 100 }, async (gpu) => {
      const info = gpu.devices[0];
      expect(info.unifiedMemory).toBe(false);
      expect(info.memoryTotalBytes).toBeGreaterThan(90e9);
      expect(info.memoryTotalBytes).toBeLessThan(110e9);
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.source.memoryTotalBytes).toBe('nvml');
      expect(d.fields.memoryUsedBytes).toBeGreaterThanOrEqual(d.fields.gpuProcessMemoryBytes!);
      expect(d.status.memoryReservedBytes).toBe('ok');
    });
  });
});

describe('MIG mode on the parent GPU', () => {
  it('utilisation is not_supported and memory / processes no_permission, each saying MIG; re-probed when MIG is switched off', async () => {
    const mig = flagFile();
    fs.writeFileSync(mig, '');
    const file = writeScenario(constantScenario({}, { gpm: false, mig: { enabled: true, whenFileExists: mig } }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.migMode).toBe(true);
      expect(d.status.gpuUtilizationRatio).toBe('not_supported');
      expect(d.reasons.gpuUtilizationRatio).toMatch(/MIG mode/);
      for (const f of ['memoryUsedBytes', 'memoryFreeBytes', 'processCount', 'gpuProcessMemoryBytes'] as const) {
        expect.soft(d.status[f], f).toBe('no_permission');
        expect.soft(d.reasons[f], f).toMatch(/MIG mode/);
      }
      // The rest of the device is fine.
      expect(d.state).toBe('ok');
      expect(d.status.powerWatts).toBe('ok');

      fs.rmSync(mig); // MIG disabled (nvidia-smi -mig 0): whole-device figures come back
      const after = await waitFor(() => {
        const s = gpu.snapshot().devices[0];
        return s.status.gpuUtilizationRatio === 'ok' && s.status.memoryUsedBytes === 'ok' ? s : undefined;
      }, 20_000);
      expect(after.migMode).toBe(false);
      expect(after.fields.gpuUtilizationRatio).toBe(0.5);
    });
  });
});

describe('NVLink', () => {
  it('36 links (NVML_NVLINK_MAX_LINKS since NVML 13.3) are all read', async () => {
    const file = writeScenario(constantScenario({}, { gpm: false, nvlink: { links: 36, maxBytesPerSecondPerLink: 25e9 } }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      expect(gpu.devices[0].nvlinkCount).toBe(36);
      const d = (await nextSamples(gpu, 3)).devices[0];
      expect(d.nvlinks.map((l) => l.link)).toEqual([...Array(36).keys()]);
      expect(d.fields.nvlinkActiveLinks).toBe(36);
      expect(d.fields.nvlinkTxBytesPerSecond! / (36 * 25e9 * 0.6 * 0.5)).toBeCloseTo(1, 2);
    });
  });

  it('a down link is not part of the total; an up link that fails makes the total an error naming the link', async () => {
    const file = writeScenario(constantScenario({}, { gpm: false, nvlink: { links: 18, down: [3] } }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 3)).devices[0];
      expect(d.fields.nvlinkActiveLinks).toBe(17);
      expect(d.status.nvlinkTxBytesPerSecond).toBe('ok');
      expect(d.fields.nvlinkTxBytesPerSecond! / (17 * 25e9 * 0.6 * 0.5)).toBeCloseTo(1, 2);
      const down = d.nvlinks.find((l) => l.link === 3)!;
      expect(down).toEqual({ link: 3, up: false, txBytesPerSecond: null, rxBytesPerSecond: null });
    });
    const failing = writeScenario(constantScenario({}, { gpm: false, nvlink: { links: 18, failing: [5] } }));
    await withTelemetry({ simulate: failing, intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 3)).devices[0];
      expect(d.status.nvlinkTxBytesPerSecond).toBe('error');
      expect(d.fields.nvlinkTxBytesPerSecond).toBeNull();
      expect(d.reasons.nvlinkTxBytesPerSecond).toMatch(/link 5\b.*NVML_ERROR_UNKNOWN/);
    });
  });

  /** Driver calls per sample of a one-GPU scenario, averaged over `samples` samples. */
  async function callsPerSample(device: Record<string, unknown>, samples = 8): Promise<number> {
    const file = writeScenario(constantScenario({}, { gpm: false, ...device }));
    return withTelemetry({ simulate: file, intervalMs: 50 }, async (gpu) => {
      await nextSamples(gpu, 2);
      const s0 = gpu.stats();
      await nextSamples(gpu, samples);
      const s1 = gpu.stats();
      return (s1.vendorCalls - s0.vendorCalls) / (s1.samples - s0.samples);
    });
  }

  it('link states come with the counters, in the one nvmlDeviceGetFieldValues call (NVML_FI_DEV_NVLINK_GET_STATE = 165), not a call per link', async () => {
    // A call into the driver is an ioctl: 18 links × 8 GPUs was 144 of ~350 calls per sample.
    const without = await callsPerSample({ nvlink: null });
    const with18 = await callsPerSample({ nvlink: { links: 18, down: [3] } });
    expect(with18 - without).toBeLessThan(2);
  });

  // NCCL reads the field only from Hopper on (SM 9.0, CUDA 11.8) and asks per link before; a
  // stand-in may fill in ids it does not know with 0. Either way: the per-link calls, same result.
  for (const stateField of ['not_supported', 'zero'] as const) {
    it(`a driver whose field 165 answers ${stateField} gets each link state asked on its own (nvmlDeviceGetNvLinkState), with the same result`, async () => {
      const without = await callsPerSample({ nvlink: null });
      const perLink = await callsPerSample({ nvlink: { links: 18, down: [3], stateField } });
      expect(perLink - without).toBeGreaterThan(16);
      const file = writeScenario(constantScenario({}, { gpm: false, nvlink: { links: 18, down: [3], stateField } }));
      await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
        const d = (await nextSamples(gpu, 3)).devices[0];
        expect(d.fields.nvlinkActiveLinks).toBe(17);
        expect(d.fields.nvlinkTxBytesPerSecond! / (17 * 25e9 * 0.6 * 0.5)).toBeCloseTo(1, 2);
        expect(d.nvlinks.find((l) => l.link === 3)).toEqual({ link: 3, up: false, txBytesPerSecond: null, rxBytesPerSecond: null });
        expect(d.nvlinks.filter((l) => l.up === true)).toHaveLength(17);
      });
    });
  }

  it('a GPU that NVML says has no NVLink reports the NVLink rates not_supported, whatever DCGM says', async () => {
    // DCGM answers its NVLink profiling fields on a PCIe card too (with 0 on real machines).
    const file = writeScenario(constantScenario({ dcgm: {} }, { nvlink: null }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('active');
      const d = (await nextSamples(gpu, 4)).devices[0];
      expect(d.source.smActiveRatio).toBe('dcgm');
      for (const f of ['nvlinkTxBytesPerSecond', 'nvlinkRxBytesPerSecond'] as const) {
        expect(d.status[f]).toBe('not_supported');
        expect(d.fields[f]).toBeNull();
        expect(d.source[f]).toBe('nvml');
      }
    });
  });
});

describe('XID events around a lost GPU', () => {
  it('the healthy GPUs keep counting after another one is lost, and the lost GPU keeps its count', async () => {
    const base = constantScenario({}, { gpm: false, nvlink: null });
    const file = writeScenario({
      ...base,
      devices: [{ ...base.devices[0], count: 3 }],
      faults: [{ type: 'gpu_lost', device: 2, atMs: 1000 }],
      xids: [
        { device: 2, atMs: 990, code: 79 },
        { device: 0, atMs: 2000, code: 31, count: 3, ratePerSecond: 10 },
      ],
    });
    await withTelemetry({ simulate: file, intervalMs: 100, lostRetryMs: 60_000 }, async (gpu) => {
      const snap = await waitFor(() => {
        const s = gpu.snapshot();
        return s.devices[0].fields.xidErrors === 3 && s.devices[2].state === 'gpu_lost' ? s : undefined;
      }, 20_000);
      expect(snap.devices[0].fields.lastXid).toBe(31);
      expect(snap.devices[1].fields.xidErrors).toBe(0);
      // The event stream, not the lost device, says what happened to it: its last words stay.
      expect(snap.devices[2].status.xidErrors).toBe('ok');
      expect(snap.devices[2].fields.xidErrors).toBe(1);
      expect(snap.devices[2].fields.lastXid).toBe(79);
      expect(snap.devices[2].status.powerWatts).toBe('gpu_lost');
    });
  });
});

describe('close()', () => {
  it('never shuts NVML down under the XID thread still waiting in it (the simulator aborts if it does)', async () => {
    expect(process.env.GTSIM_STRICT).toBe('1');
    const base = constantScenario({}, { gpm: false, nvlink: null });
    const file = writeScenario({
      ...base,
      devices: [{ ...base.devices[0], count: 2 }],
      xids: [{ device: 1, atMs: 0, code: 13, count: 1e6, ratePerSecond: 500 }],
    });
    for (let i = 0; i < 20; i++) {
      const gpu = await (await import('../src/index.js')).openGpuTelemetry({ simulate: file, intervalMs: 10 });
      await nextSamples(gpu, 1);
      await gpu.close(); // returns without waiting for the event thread's wait
    }
    // Still alive: no contract violation aborted the process. Let the last event threads finish.
    await new Promise((r) => setTimeout(r, 600));
  });
});

describe('the driver goes away while GPM is between two samples', () => {
  it('a device in error carries no GPM value over from the last pair', async () => {
    const gone = flagFile();
    const file = writeScenario(
      constantScenario({ faults: [{ type: 'driver_gone', code: 9, whenFileExists: gone }] }, { gpm: true, nvlink: null }),
    );
    // 10 ms samples: GPM computes a pair every >= 100 ms and re-publishes it in between.
    await withTelemetry({ simulate: file, intervalMs: 10 }, async (gpu) => {
      await waitFor(() => gpu.snapshot().devices[0].status.tensorActiveRatio === 'ok');
      fs.writeFileSync(gone, '');
      const errorSamples = [];
      const deadline = Date.now() + 20_000;
      while (errorSamples.length < 12 && Date.now() < deadline) {
        const s = await nextSamples(gpu, 1);
        if (s.devices[0].state === 'error') errorSamples.push(s.devices[0]);
      }
      expect(errorSamples.length).toBe(12);
      for (const d of errorSamples) {
        const readable = Object.entries(d.status).filter(([, st]) => st === 'ok').map(([f]) => f);
        expect(readable.filter((f) => f !== 'xidErrors' && f !== 'lastXid')).toEqual([]);
        expect(d.status.tensorActiveRatio).toBe('error');
      }
    });
  });
});
