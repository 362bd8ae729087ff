/** The shipped Grafana dashboard: current with its generator, and only real metric names. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FIELDS } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';

const file = path.join(PACKAGE_ROOT, 'dashboards', 'gpu-telemetry.json');

it('is what scripts/gen-dashboard.mjs generates', () => {
  const before = fs.readFileSync(file, 'utf8');
  execFileSync(process.execPath, [path.join(PACKAGE_ROOT, 'scripts', 'gen-dashboard.mjs')], { encoding: 'utf8' });
  expect(fs.readFileSync(file, 'utf8')).toBe(before);
});

it('every panel query uses metric names the exporter emits, through the datasource variable', () => {
  const dash = JSON.parse(fs.readFileSync(file, 'utf8'));
  expect(dash.uid).toBe('gpu-telemetry');
  const known = new Set([
    ...FIELDS.map((f) => f.prometheus),
    'gpu_clock_event_reason_active',
    'gpu_telemetry_up',
    'gpu_telemetry_device_up',
    'gpu_telemetry_sample_stale',
    'gpu_telemetry_sample_age_seconds',
    'gpu_telemetry_field_unavailable',
    'gpu_telemetry_fields',
    'gpu_telemetry_mig_device_info',
    'gpu_process_used_memory_bytes',
    'gpu_process_sm_utilization_ratio',
    'gpu_telemetry_build_info',
  ]);
  const panels = dash.panels.filter((p: { type: string }) => p.type !== 'row');
  expect(panels.length).toBeGreaterThan(25);
  const rows = dash.panels.filter((p: { type: string }) => p.type === 'row').map((p: { title: string }) => p.title);
  for (const wanted of ['Fleet', 'Activity', 'Memory', 'Clocks', 'Power', 'NVLink', 'XID', 'Exporter health']) {
    expect(rows.some((r: string) => r.includes(wanted)), wanted).toBe(true);
  }
  for (const p of panels) {
    expect(p.datasource.uid).toBe('${datasource}');
    for (const t of p.targets) {
      // Metric names, not label names (gpu_instance="" selects whole GPUs).
      for (const name of t.expr.match(/\bgpu_[a-z0-9_]+\b(?!\s*(?:=|!=|=~|!~))/g) ?? []) expect(known.has(name), `${name} in ${p.title}`).toBe(true);
    }
  }
});
