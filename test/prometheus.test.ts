/** The prom-client collector: names, units, labels, health series, and what is withheld when. */
import fs from 'node:fs';
import path from 'node:path';
import { Registry, type OpenMetricsContentType } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DCGM_DEFAULT_METRICS, DCGM_LABEL_NAMES, FIELDS, registerGpuMetrics, TelemetrySupervisor } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { parseExposition, type Line } from './exposition.js';
import { constantScenario, nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

const byName = (lines: Line[], name: string) => lines.filter((l) => l.name === name);

describe('registerGpuMetrics (default names)', () => {
  it('exports every real reading with gpu/uuid/model labels and base units', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      const registry = new Registry();
      registerGpuMetrics(registry, gpu);
      const { lines, types } = parseExposition(await registry.metrics());
      const snap = gpu.snapshot();
      const clocks = byName(lines, 'gpu_sm_clock_hertz');
      expect(clocks).toHaveLength(8);
      expect(Object.keys(clocks[0].labels)).toEqual(['gpu', 'uuid', 'model']);
      expect(clocks.find((l) => l.labels.gpu === '3')!.labels.uuid).toBe(gpu.devices[3].uuid);
      expect(types.get('gpu_energy_joules_total')).toBe('counter');
      expect(types.get('gpu_power_watts')).toBe('gauge');
      // A field with no real reading has no value series, and its health series says so.
      expect(byName(lines, 'gpu_fan_speed_ratio')).toHaveLength(0);
      const fan = byName(lines, 'gpu_telemetry_field_unavailable').filter((l) => l.labels.field === 'fanSpeedRatio');
      expect(fan).toHaveLength(8);
      expect(fan.every((l) => l.value === 1 && l.labels.source === 'nvml' && l.labels.status === 'not_supported' && l.labels.metric === 'gpu_fan_speed_ratio')).toBe(true);
      // A readable field has no health series (the budget), only its value series and the counts.
      expect(byName(lines, 'gpu_telemetry_field_unavailable').some((l) => l.labels.field === 'tensorActiveRatio')).toBe(false);
      const unreadable = snap.devices[0].fields;
      const readable = FIELDS.filter((f) => ['ok', 'pending', 'stale'].includes(snap.devices[0].status[f.name])).length;
      expect(byName(lines, 'gpu_telemetry_fields').filter((l) => l.labels.gpu === '0').map((l) => [l.labels.state, l.value])).toEqual([
        ['readable', readable],
        ['unreadable', FIELDS.length - readable],
      ]);
      expect(unreadable).toBeDefined();
      // Every ok field of the snapshot is exported, once per GPU.
      for (const f of FIELDS) {
        const okCount = snap.devices.filter((d) => d.status[f.name] === 'ok').length;
        expect.soft(byName(lines, f.prometheus).length, f.prometheus).toBe(okCount);
      }
      expect(byName(lines, 'gpu_telemetry_up')[0].value).toBe(1);
      expect(byName(lines, 'gpu_telemetry_device_up').map((l) => l.value)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
      expect(byName(lines, 'gpu_telemetry_build_info')[0].labels).toMatchObject({
        simulated: 'true',
        driver: '550.90.07',
        backend: 'nvml+dcgm+gpm',
      });
      expect(byName(lines, 'gpu_telemetry_sample_age_seconds')[0].value).toBeLessThan(5);
      expect(byName(lines, 'gpu_clock_event_reason_active')).toHaveLength(8 * 9);
      // The raw bitmask is a real reading too (listed in FIELDS, so it is emitted, with its unit).
      const mask = byName(lines, 'gpu_clock_event_reasons').find((l) => l.labels.gpu === '0')!;
      expect(mask.value).toBe(snap.devices[0].fields.clockEventReasons);
      expect(types.get('gpu_clock_event_reasons')).toBe('gauge');
      expect(await registry.getSingleMetricAsString('gpu_clock_event_reasons')).toMatch(/^# HELP gpu_clock_event_reasons .*Unit: bitmask .*Source: nvml/);
    });
  });

  it('scraping makes no driver call', async () => {
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 60_000 }, async (gpu) => {
      const registry = new Registry();
      registerGpuMetrics(registry, gpu);
      const before = gpu.stats().vendorCalls;
      for (let i = 0; i < 50; i++) await registry.metrics();
      expect(gpu.stats().vendorCalls).toBe(before);
    });
  });

  it('a lost GPU keeps gpu_telemetry_device_up at 0 and loses only its value series', async () => {
    const base = constantScenario();
    const file = writeScenario({ ...base, devices: [{ ...base.devices[0], count: 3 }], faults: [{ type: 'gpu_lost', device: 1, atMs: 300 }] });
    await withTelemetry({ simulate: file, intervalMs: 50 }, async (gpu) => {
      await waitFor(() => gpu.snapshot().devices[1].state === 'gpu_lost');
      const registry = new Registry();
      registerGpuMetrics(registry, gpu);
      const { lines } = parseExposition(await registry.metrics());
      expect(byName(lines, 'gpu_telemetry_device_up').map((l) => [l.labels.gpu, l.value])).toEqual([
        ['0', 1],
        ['1', 0],
        ['2', 1],
      ]);
      expect(byName(lines, 'gpu_power_watts').map((l) => l.labels.gpu)).toEqual(['0', '2']);
    });
  });

  it('per-link and per-process series are opt-in', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      const plain = new Registry();
      registerGpuMetrics(plain, gpu);
      const plainLines = parseExposition(await plain.metrics()).lines;
      expect(byName(plainLines, 'gpu_nvlink_link_up')).toHaveLength(0);
      expect(byName(plainLines, 'gpu_process_used_memory_bytes')).toHaveLength(0);
      const detailed = new Registry();
      registerGpuMetrics(detailed, gpu, { perLink: true, processes: true });
      const lines = parseExposition(await detailed.metrics()).lines;
      expect(byName(lines, 'gpu_nvlink_link_up')).toHaveLength(8 * 18);
      expect(byName(lines, 'gpu_nvlink_link_transmit_bytes_per_second')[0].labels).toMatchObject({ link: '0' });
      expect(byName(lines, 'gpu_process_used_memory_bytes')).toHaveLength(8 * 2);
    });
  });

  it('OpenMetrics output: counters carry _total, the body ends with # EOF', async () => {
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 }, async (gpu) => {
      const om = new Registry<OpenMetricsContentType>();
      om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      const text = new Registry();
      registerGpuMetrics([text, om as unknown as Registry], gpu);
      const body = await om.metrics();
      expect(body.endsWith('# EOF\n')).toBe(true);
      expect(body).toMatch(/^# TYPE gpu_energy_joules counter$/m);
      expect(body).toMatch(/^gpu_energy_joules_total\{/m);
      // Rendering OpenMetrics does not disturb the text registry's names.
      expect(await text.metrics()).toMatch(/^# TYPE gpu_energy_joules_total counter$/m);
    });
  });
});

describe('when the GPUs cannot be read', () => {
  it('gpu_telemetry_up is 0 with the reason; the health series stay', async () => {
    const supervisor = new TelemetrySupervisor({ libraries: { nvml: '/nonexistent/libnvidia-ml.so.1' } }, { reopenMs: 60_000 });
    await supervisor.start();
    try {
      const registry = new Registry();
      registerGpuMetrics(registry, supervisor);
      const { lines } = parseExposition(await registry.metrics());
      expect(byName(lines, 'gpu_telemetry_up')[0].value).toBe(0);
      expect(byName(lines, 'gpu_telemetry_down_info')[0]).toMatchObject({ value: 1, labels: { code: 'LIBRARY_NOT_FOUND' } });
      expect(byName(lines, 'gpu_telemetry_build_info')).toHaveLength(1);
      expect(byName(lines, 'gpu_sm_clock_hertz')).toHaveLength(0);
    } finally {
      await supervisor.close();
    }
  });

  it('a stuck sampler withholds value series and says so', async () => {
    const base = constantScenario();
    const file = writeScenario({ ...base, faults: [{ type: 'hang', call: 'nvmlDeviceGetPowerUsage', atMs: 300, durationMs: 3000 }] });
    await withTelemetry({ simulate: file, intervalMs: 50, staleAfterMs: 500, closeTimeoutMs: 100 }, async (gpu) => {
      await waitFor(() => gpu.snapshot().stale);
      const registry = new Registry();
      registerGpuMetrics(registry, gpu);
      const { lines } = parseExposition(await registry.metrics());
      expect(byName(lines, 'gpu_telemetry_sample_stale')[0].value).toBe(1);
      expect(byName(lines, 'gpu_telemetry_sample_age_seconds')[0].value).toBeGreaterThan(0.5);
      expect(byName(lines, 'gpu_sm_clock_hertz')).toHaveLength(0);
      // A hung call makes the sample stale, not the GPU dead: device_up means lost or in error only.
      expect(gpu.snapshot().devices[0].state).toBe('stale');
      expect(byName(lines, 'gpu_telemetry_device_up').map((l) => l.value)).toEqual([1]);
    });
  });
});

describe('names: dcgm', () => {
  it('covers dcgm-exporter\'s published default counters: same name, type and help, or a stated reason', () => {
    const published = JSON.parse(
      fs.readFileSync(path.join(PACKAGE_ROOT, 'test', 'fixtures', 'dcgm-exporter-default-counters.json'), 'utf8'),
    ) as { counters: { name: string; type: string; help: string }[]; notEmitted: Record<string, string> };
    const ours = new Map(DCGM_DEFAULT_METRICS.map((m) => [m.name, m]));
    for (const c of published.counters) {
      if (c.type === 'label') {
        expect.soft(DCGM_LABEL_NAMES as readonly string[], c.name).toContain(c.name);
        continue;
      }
      if (published.notEmitted[c.name]) {
        expect.soft(ours.has(c.name), c.name).toBe(false);
        continue;
      }
      expect.soft(ours.get(c.name), c.name).toMatchObject({ type: c.type, help: c.help });
    }
    // Every row but vGPU licensing: 24 metrics, and the driver version as a label.
    expect(DCGM_DEFAULT_METRICS).toHaveLength(published.counters.filter((c) => c.type !== 'label').length - Object.keys(published.notEmitted).length);
    expect(DCGM_DEFAULT_METRICS).toHaveLength(24);
    // Nothing of ours claims a dcgm-exporter name the file does not have.
    const publishedNames = new Set(published.counters.map((c) => c.name));
    for (const m of DCGM_DEFAULT_METRICS) expect.soft(publishedNames.has(m.name), m.name).toBe(true);
  });

  it('emits dcgm-exporter\'s names, types, units and labels', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      const registry = new Registry();
      registerGpuMetrics(registry, gpu, { names: 'dcgm', hostname: 'node-7' });
      const { lines, types } = parseExposition(await registry.metrics());
      const snap = gpu.snapshot();
      const dcgmNames = new Set(lines.map((l) => l.name).filter((n) => n.startsWith('DCGM_')));
      expect([...dcgmNames].sort()).toEqual(DCGM_DEFAULT_METRICS.map((m) => m.name).filter((n) => byName(lines, n).length > 0).sort());
      for (const spec of DCGM_DEFAULT_METRICS) expect.soft(types.get(spec.name), spec.name).toBe(spec.type);
      const sm = byName(lines, 'DCGM_FI_DEV_SM_CLOCK').find((l) => l.labels.gpu === '0')!;
      expect(Object.keys(sm.labels)).toEqual([...DCGM_LABEL_NAMES]);
      expect(sm.labels).toMatchObject({ device: 'nvidia0', Hostname: 'node-7', UUID: gpu.devices[0].uuid, pci_bus_id: gpu.devices[0].pciBusId });
      expect(sm.value).toBe(snap.devices[0].fields.smClockHz! / 1e6);
      const fb = byName(lines, 'DCGM_FI_DEV_FB_USED').find((l) => l.labels.gpu === '0')!;
      expect(fb.value).toBe(snap.devices[0].fields.memoryUsedBytes! / 1048576);
      const util = byName(lines, 'DCGM_FI_DEV_GPU_UTIL').find((l) => l.labels.gpu === '0')!;
      expect(util.value).toBeCloseTo(snap.devices[0].fields.gpuUtilizationRatio! * 100, 9);
      const energy = byName(lines, 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION').find((l) => l.labels.gpu === '0')!;
      expect(energy.value).toBeCloseTo(snap.devices[0].fields.energyJoules! * 1000, 3);
      // Our health series are there too (dcgm-exporter has none).
      expect(byName(lines, 'gpu_telemetry_up')[0].value).toBe(1);
    });
  });
});

describe('options that do not apply are refused, never ignored', () => {
  it('perLink / processes with names: dcgm is INVALID_OPTION naming both options', async () => {
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 }, async (gpu) => {
      for (const [extra, option] of [
        [{ perLink: true }, 'perLink'],
        [{ processes: true }, 'processes'],
      ] as const) {
        const registry = new Registry();
        let error: unknown;
        try {
          registerGpuMetrics(registry, gpu, { names: 'dcgm', ...extra });
        } catch (e) {
          error = e;
        }
        expect(error, option).toMatchObject({ code: 'INVALID_OPTION', option });
        expect((error as Error).message).toMatch(new RegExp(`^options\\.${option}: ${option} and names: 'dcgm' cannot be combined`));
        expect(registry.getMetricsAsArray(), 'nothing half-registered').toHaveLength(0);
        // false asks for nothing: accepted.
        expect(() => registerGpuMetrics(new Registry(), gpu, { names: 'dcgm', [option]: false })).not.toThrow();
      }
    });
  });
});

describe('renderText (the server\'s fast path)', () => {
  it('renders exactly what prom-client renders from the same collector, in both naming modes', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      // The sample age is the only value that moves between two renderings.
      const normalise = (t: string) => t.replace(/^gpu_telemetry_sample_age_seconds .*$/m, 'gpu_telemetry_sample_age_seconds AGE');
      for (const options of [{ names: 'dcgm' as const, hostname: 'a"b\\c\nd' }, { perLink: true, processes: true }, {}]) {
        const registry = new Registry();
        const metrics = registerGpuMetrics(registry, gpu, options);
        // Compare two renderings of the same sample: prom-client's is async, and on a loaded
        // machine it can outlast the 100 ms interval, so retry while a new sample lands between.
        let viaPromClient = '';
        let direct = '';
        for (let attempt = 0; attempt < 50; attempt++) {
          await new Promise((r) => setImmediate(r)); // the collector keeps a scrape's snapshot until its tick ends
          const seq = gpu.snapshot().seq;
          viaPromClient = normalise(await registry.metrics());
          direct = normalise(metrics.renderText());
          if (gpu.snapshot().seq === seq) break;
        }
        expect(direct).toBe(viaPromClient);
        expect(viaPromClient).toContain(options.names === 'dcgm' ? 'Hostname="a\\"b\\\\c\\nd"' : 'gpu_sm_clock_hertz{');
      }
    });
  });
});
