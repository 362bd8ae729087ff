/**
 * The series budget (issue #12 item 4), for every shipped scenario in both naming modes, without
 * opt-ins (no per-link, no per-process series) but with the kubelet assigning a pod to every GPU and
 * every MIG device (pod labels and pod_info: the worst case for labels):
 *  - per GPU at most 64 series in default naming, 32 in dcgm naming;
 *  - per MIG instance (a GPU instance: a tenant's GPU) at most 16 / 8 more;
 *  - at most 10 labels of ours on any series: 12 with the job and instance labels Prometheus adds.
 * The counts are printed (README "Series per GPU" and bench/ quote them).
 */
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { listScenarios, registerGpuMetrics, type GpuTelemetry } from '../src/index.js';
import { createKubernetesPods, type KubernetesPods } from '../src/kubernetes/pods.js';
import type { PodResourcesList } from '../src/kubernetes/mapping.js';
import { parseExposition, type Line } from './exposition.js';
import { nextSamples, withTelemetry } from './helpers.js';

const BUDGET = { default: { gpu: 64, instance: 16 }, dcgm: { gpu: 32, instance: 8 } } as const;
const MAX_OWN_LABELS = 10;

/** A pod on every GPU (by UUID) and on every MIG device (by MIG UUID), one container each. */
function everyDeviceHeld(gpu: GpuTelemetry): PodResourcesList {
  const pods: PodResourcesList['pods'][number][] = [];
  for (const d of gpu.snapshot().devices) {
    pods.push({ name: `job-${d.index}`, namespace: 'ml', containers: [{ name: 'main', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: [d.uuid] }] }] });
    for (const m of d.migInstances) {
      for (const c of m.computeInstances) {
        if (c.uuid) {
          pods.push({
            name: `tenant-${d.index}-${m.gpuInstanceId}-${c.computeInstanceId}`,
            namespace: 'ml',
            containers: [{ name: 'main', devices: [{ resourceName: `nvidia.com/mig-${m.profile}`, deviceIds: [c.uuid] }] }],
          });
        }
      }
    }
  }
  return { pods };
}

const entityOf = (l: Line): string | null => {
  const gpu = l.labels.gpu;
  if (gpu === undefined) return null;
  const gi = l.labels.gpu_instance ?? l.labels.GPU_I_ID;
  return gi === undefined ? `gpu ${gpu}` : `gpu ${gpu} instance ${gi}`;
};

const table: string[] = [];
afterAll(() => {
  process.stdout.write(`\nseries per GPU (per MIG instance), no opt-ins; with --per-link --processes:\n${table.join('\n')}\n`);
});

const scenarios = listScenarios().map((s) => s.name);

describe.each(scenarios)('%s', (scenario) => {
  it('stays within the budget in both naming modes', async () => {
    await withTelemetry({ simulate: scenario, intervalMs: 100, processUtilization: true }, async (gpu) => {
      await nextSamples(gpu, 3);
      const open: KubernetesPods[] = [];
      try {
        const k = createKubernetesPods(
          { refreshMs: 60_000 },
          { list: async () => ({ list: everyDeviceHeld(gpu), ignored: 0, bytes: 1, decodeMs: 0 }), readMinors: async () => [] },
        );
        open.push(k);
        await k.ready();
        const row: string[] = [];
        for (const names of ['default', 'dcgm'] as const) {
          const { lines } = parseExposition(registerGpuMetrics(new Registry(), gpu, { names, kubernetes: k }).renderText());
          const perEntity = new Map<string, number>();
          for (const l of lines) {
            expect.soft(Object.keys(l.labels).length, `${l.name} ${JSON.stringify(l.labels)}`).toBeLessThanOrEqual(MAX_OWN_LABELS);
            const e = entityOf(l);
            if (e) perEntity.set(e, (perEntity.get(e) ?? 0) + 1);
          }
          const gpus = [...perEntity].filter(([e]) => !e.includes('instance'));
          const instances = [...perEntity].filter(([e]) => e.includes('instance'));
          expect(gpus.length).toBe(gpu.devices.length);
          for (const [e, n] of gpus) expect.soft(n, `${names} ${e}`).toBeLessThanOrEqual(BUDGET[names].gpu);
          for (const [e, n] of instances) expect.soft(n, `${names} ${e}`).toBeLessThanOrEqual(BUDGET[names].instance);
          const max = (xs: [string, number][]) => (xs.length ? Math.max(...xs.map(([, n]) => n)) : 0);
          let optIns = '';
          if (names === 'default') {
            const { lines: all } = parseExposition(registerGpuMetrics(new Registry(), gpu, { names, kubernetes: k, perLink: true, processes: true }).renderText());
            const n = new Map<string, number>();
            for (const l of all) {
              const e = entityOf(l);
              if (e && !e.includes('instance')) n.set(e, (n.get(e) ?? 0) + 1);
            }
            optIns = ` → ${Math.max(...n.values())}`;
          }
          row.push(`${names} ${max(gpus)}${instances.length ? ` (${max(instances)})` : ''}${optIns}`);
        }
        table.push(`  ${scenario.padEnd(28)} ${row.join(' | ')}`);
      } finally {
        for (const k of open) k.close();
      }
    });
  }, 60_000);
});
