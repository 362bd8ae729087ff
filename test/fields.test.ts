/** The field list is one list: native (fields.def) and TypeScript (fields.ts) must agree. */
import { describe, expect, it } from 'vitest';
import { CLOCK_EVENT_REASONS, decodeClockEventReasons, FIELD_NAMES, FIELDS, FIELD_SOURCES, FIELD_STATUSES } from '../src/index.js';
import { loadNative } from '../src/native.js';

describe('field catalogue', () => {
  it('matches the native field table, in order', () => {
    expect(loadNative().fieldNames()).toEqual([...FIELD_NAMES]);
    expect(loadNative().constants().fieldCount).toBe(FIELDS.length);
  });

  it('names carry their unit and Prometheus names follow the conventions', () => {
    const suffix: Record<string, RegExp> = {
      Hz: /Hz$/,
      bytes: /Bytes$/,
      'bytes/s': /BytesPerSecond$/,
      W: /Watts$/,
      J: /Joules$/,
      Cel: /Celsius$/,
      ratio: /Ratio$/,
    };
    for (const f of FIELDS) {
      if (suffix[f.unit]) expect(f.name, f.name).toMatch(suffix[f.unit]);
      expect(f.prometheus, f.name).toMatch(/^gpu_[a-z0-9_]+$/);
      if (f.kind === 'counter') expect(f.prometheus, f.name).toMatch(/_total$/);
      expect(f.help.length, f.name).toBeGreaterThan(10);
    }
    expect(new Set(FIELDS.map((f) => f.prometheus)).size).toBe(FIELDS.length);
  });

  it('status and source codes are the native ones', () => {
    expect(FIELD_STATUSES).toEqual(['ok', 'not_supported', 'no_permission', 'gpu_lost', 'stale', 'error', 'pending']);
    expect(FIELD_SOURCES).toEqual(['none', 'nvml', 'dcgm', 'gpm', 'meminfo', 'derived']);
  });

  it('decodes clock-event reason bits, including unknown future bits', () => {
    expect(decodeClockEventReasons(0)).toEqual([]);
    expect(decodeClockEventReasons(0x1)).toEqual(['gpu_idle']);
    expect(decodeClockEventReasons(0x4 | 0x40)).toEqual(['sw_power_cap', 'hw_thermal_slowdown']);
    expect(decodeClockEventReasons(0x1000 | 0x8)).toEqual(['hw_slowdown', 'unknown_0x1000']);
    expect(CLOCK_EVENT_REASONS.map((r) => r.bit)).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256]);
  });
});

describe('the README field table', () => {
  it('lists every field with its unit and its sources in order', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { PACKAGE_ROOT } = await import('../src/paths.js');
    const readme = fs.readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
    for (const f of FIELDS) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${f.name}\` |`));
      expect.soft(row, f.name).toBeDefined();
      if (row) expect.soft(row.split('|').map((c) => c.trim()).slice(2, 5), f.name).toEqual([f.unit, f.kind, f.sources.join(' → ')]);
    }
  });
});
