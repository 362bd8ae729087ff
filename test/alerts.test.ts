/** The shipped alert rules: valid for Prometheus, and each one fires (and stays quiet) as intended. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIELDS } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { PROMTOOL, skipReason } from './system-packages.js';

if (!PROMTOOL) skipReason('promtool', 'prometheus');
const rules = path.join(PACKAGE_ROOT, 'prometheus', 'alerts.yml');

describe.skipIf(!PROMTOOL)('prometheus/alerts.yml', () => {
  it('passes promtool check rules', () => {
    const out = execFileSync(PROMTOOL!, ['check', 'rules', rules], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('passes the promtool unit tests (every alert fires on its fault, quiet when healthy)', () => {
    const out = execFileSync(PROMTOOL!, ['test', 'rules', 'alerts.test.yml'], {
      encoding: 'utf8',
      cwd: path.join(PACKAGE_ROOT, 'test', 'prometheus'),
    });
    expect(out).toMatch(/SUCCESS/);
  });
});

it('every alert has a for: and a runbook, and only uses metric names the exporter emits', () => {
  const text = fs.readFileSync(rules, 'utf8');
  const alerts = text.split(/\n\s+- alert: /).slice(1);
  expect(alerts.length).toBeGreaterThanOrEqual(10);
  for (const a of alerts) {
    expect(a, a.split('\n')[0]).toMatch(/\n\s+for: \d+m/);
    expect(a, a.split('\n')[0]).toMatch(/\n\s+runbook: "/);
  }
  const known = new Set([
    ...FIELDS.map((f) => f.prometheus),
    'gpu_clock_event_reason_active',
    'gpu_telemetry_up',
    'gpu_telemetry_device_up',
    'gpu_telemetry_sample_stale',
    'gpu_telemetry_sample_age_seconds',
    'gpu_telemetry_backend_up',
    'gpu_telemetry_field_unavailable',
    'up',
  ]);
  const exprs = [...text.matchAll(/expr: (.*)/g)].map((m) => m[1]);
  for (const expr of exprs) {
    for (const name of expr.match(/\b(gpu_[a-z0-9_]+|up)\b(?=[{\s[]|$)/g) ?? []) {
      expect(known.has(name), `${name} in ${expr}`).toBe(true);
    }
  }
});
