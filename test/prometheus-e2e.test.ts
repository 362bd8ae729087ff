/**
 * End to end: a real Prometheus (Debian's package) scrapes `gpu-telemetry serve --simulate` on
 * loopback with the shipped alert rules loaded; its query API sees the series of all 8 GPUs, and
 * after the simulator loses one GPU, gpu_telemetry_device_up for it is 0 (present, not absent)
 * and the XID 79 it reported just before falling off the bus is scraped and raises GpuXidErrors.
 * Then the fleet: h100-mig served in both naming modes next to a fake kubelet that assigns MIG
 * devices to pods, Prometheus negotiating OpenMetrics as it does by default: every dcgm-exporter
 * default counter arrives under dcgm-exporter's exact name, NVIDIA's dcgm-exporter dashboard's
 * panel queries find their series, and the MIG instances carry their pods.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startFakeKubelet, type FakeKubelet, type ReplyPod } from './fake-kubelet.js';
import { sleep, waitFor, withTelemetry } from './helpers.js';
import { PROMETHEUS, skipReason } from './system-packages.js';
import { DCGM_DEFAULT_METRICS } from '../src/index.js';

if (!PROMETHEUS) skipReason('prometheus', 'prometheus');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const children: ChildProcess[] = [];
const kubelets: FakeKubelet[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await sleep(200);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(kubelets.map((k) => k.close()));
});

/**
 * The panel queries of NVIDIA's Grafana dashboard for dcgm-exporter (NVIDIA/dcgm-exporter
 * grafana/dcgm-exporter-dashboard.json at d5e5f51, the "expr" of each target, lines 93, 191, 246,
 * 346, 404, 497, 587 and 677), and its template variables (label_values(DCGM_FI_DEV_GPU_TEMP,
 * instance) and (…, gpu)). Written down as facts; the dashboard itself is not copied here.
 */
const NVIDIA_DASHBOARD_PANELS: [title: string, expr: string][] = [
  ['GPU Temperature', 'DCGM_FI_DEV_GPU_TEMP{instance=~"$instance", gpu=~"$gpu"}'],
  ['GPU Avg. Temp', 'avg(DCGM_FI_DEV_GPU_TEMP{instance=~"$instance", gpu=~"$gpu"})'],
  ['GPU Power Usage', 'DCGM_FI_DEV_POWER_USAGE{instance=~"$instance", gpu=~"$gpu"}'],
  ['GPU Power Total', 'sum(DCGM_FI_DEV_POWER_USAGE{instance=~"$instance", gpu=~"$gpu"})'],
  ['GPU SM Clocks', 'DCGM_FI_DEV_SM_CLOCK{instance=~"$instance", gpu=~"$gpu"} * 1000000'],
  ['GPU Utilization', 'DCGM_FI_DEV_GPU_UTIL{instance=~"$instance", gpu=~"$gpu"}'],
  ['GPU Framebuffer Mem Used', 'DCGM_FI_DEV_FB_USED{instance=~"$instance", gpu=~"$gpu"}'],
  ['Tensor Core Utilization', 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{instance=~"$instance", gpu=~"$gpu"}'],
];
const NVIDIA_DASHBOARD_VARIABLES: [variable: string, metric: string][] = [
  ['instance', 'DCGM_FI_DEV_GPU_TEMP'],
  ['gpu', 'DCGM_FI_DEV_GPU_TEMP'],
];

/**
 * A Prometheus on 127.0.0.1:promPort scraping each job's exporter every second, with the shipped
 * alert rules. No scrape_protocols setting: Prometheus 2.42 asks for OpenMetrics first.
 */
function startPrometheus(dir: string, promPort: number, jobs: Record<string, number>): { prometheus: ChildProcess; stderr: () => string } {
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${path.join(PACKAGE_ROOT, 'prometheus', 'alerts.yml')}`,
      'scrape_configs:',
      ...Object.entries(jobs).flatMap(([job, port]) => [`  - job_name: ${job}`, '    static_configs:', `      - targets: ['127.0.0.1:${port}']`]),
      '',
    ].join('\n'),
  );
  const prometheus = spawn(
    PROMETHEUS!,
    [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(prometheus);
  let err = '';
  prometheus.stderr!.on('data', (c) => (err += c));
  return { prometheus, stderr: () => err };
}

async function query(promPort: number, q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  expect(body.status).toBe('success');
  return body.data.result;
}

describe.skipIf(!PROMETHEUS)('Prometheus scraping gpu-telemetry serve', () => {
  it('sees all 8 GPUs, then the lost one at device_up 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-prom-'));
    const scenario = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'scenarios', 'h100-sxm-8.json'), 'utf8'));
    scenario.name = 'h100-sxm-8-loses-gpu-5';
    // GPU 5 falls off the bus when the test creates this file, not on a timer: Prometheus can take
    // a while to come up on a loaded machine, and the first half needs all 8 GPUs present.
    const trigger = path.join(dir, 'lose-gpu-5');
    scenario.faults = [{ type: 'gpu_lost', device: 5, whenFileExists: trigger }];
    // Its last words: XID 79 the instant before the loss (within one sampling interval of it).
    scenario.xids = [{ device: 5, atMs: 0, code: 79, whenFileExists: trigger }];
    const scenarioFile = path.join(dir, 'scenario.json');
    fs.writeFileSync(scenarioFile, JSON.stringify(scenario));

    const [exporterPort, promPort] = [await freePort(), await freePort()];
    const exporter = spawn(
      process.execPath,
      [path.join(PACKAGE_ROOT, 'dist', 'cli.js'), 'serve', '--simulate', scenarioFile, '--port', String(exporterPort), '--interval-ms', '200'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(exporter);
    let exporterOut = '';
    exporter.stdout!.on('data', (c) => (exporterOut += c));
    exporter.stderr!.on('data', (c) => (exporterOut += c));
    await waitFor(() => exporterOut.includes('serving http://'), 15_000);
    expect(exporterOut).toMatch(/found: driver 550\.90\.07 .* 8 GPUs .* SIMULATED/);

    const { prometheus, stderr: promErr } = startPrometheus(dir, promPort, { 'gpu-telemetry': exporterPort });

    // Prometheus comes up and scrapes us.
    let series: Awaited<ReturnType<typeof query>> = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        series = await query(promPort, 'gpu_telemetry_device_up');
        if (series.length === 8) break;
      } catch {
        // not listening yet
      }
      await sleep(250);
    }
    expect(prometheus.exitCode, promErr()).toBeNull();
    expect(series.map((s) => s.metric.gpu).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    expect((await query(promPort, 'up{job="gpu-telemetry"}'))[0].value[1]).toBe('1');
    const clocks = await query(promPort, 'gpu_sm_clock_hertz');
    expect(clocks).toHaveLength(8);
    expect(clocks[0].metric).toMatchObject({ model: 'NVIDIA H100 80GB HBM3 (simulated)' });
    expect((await query(promPort, 'gpu_tensor_pipe_active_ratio')).length).toBe(8);
    expect((await query(promPort, 'gpu_telemetry_build_info'))[0].metric).toMatchObject({ simulated: 'true' });

    fs.writeFileSync(trigger, '');
    let lost: Awaited<ReturnType<typeof query>> = [];
    const lostDeadline = Date.now() + 30_000;
    while (Date.now() < lostDeadline) {
      lost = await query(promPort, 'gpu_telemetry_device_up{gpu="5"} == 0');
      if (lost.length === 1) break;
      await sleep(250);
    }
    expect(lost).toHaveLength(1);
    expect(lost[0].value[1]).toBe('0');
    // The others are still up, and GPU 5's value series are gone (no stand-in numbers).
    expect((await query(promPort, 'gpu_telemetry_device_up == 1')).length).toBe(7);
    await sleep(1500);
    expect((await query(promPort, 'gpu_power_watts{gpu="5"}')).length).toBe(0);

    // The XID that announced the loss comes from the driver's event stream, not from reading the
    // lost GPU: its counter stays, and the shipped alert sees it (pending: `for: 1m` not yet over).
    expect((await query(promPort, 'gpu_xid_errors_total{gpu="5"}'))[0]?.value[1]).toBe('1');
    expect((await query(promPort, 'gpu_last_xid{gpu="5"}'))[0]?.value[1]).toBe('79');
    let alerts: Awaited<ReturnType<typeof query>> = [];
    const alertDeadline = Date.now() + 20_000;
    while (Date.now() < alertDeadline) {
      alerts = await query(promPort, 'ALERTS{alertname="GpuXidErrors"}');
      if (alerts.length > 0) break;
      await sleep(250);
    }
    expect(alerts.map((a) => a.metric.gpu)).toEqual(['5']);
    expect(['pending', 'firing']).toContain(alerts[0].metric.alertstate);
  }, 120_000);

  it('h100-mig in both naming modes: dcgm-exporter names whatever Prometheus negotiates, NVIDIA\'s dashboard queries, MIG instances with their pods', async () => {
    // The MIG devices' UUIDs (what the kubelet hands out) and the GPU UUIDs, as the simulator has them.
    const { gpuUuids, migUuid } = await withTelemetry({ simulate: 'h100-mig', intervalMs: 100 }, async (gpu) => {
      const s = await waitFor(() => (gpu.snapshot().devices[0].migInstances.length === 4 ? gpu.snapshot() : undefined));
      const byGi = new Map(s.devices[0].migInstances.map((m) => [m.gpuInstanceId, m.computeInstances[0].uuid!]));
      return { gpuUuids: s.devices.map((d) => d.uuid), migUuid: (gi: number) => byGi.get(gi)! };
    });
    const pod = (namespace: string, name: string, container: string, resourceName: string, deviceIds: string[]): ReplyPod => ({
      name,
      namespace,
      containers: [{ name: container, devices: [{ resourceName, deviceIds }] }],
    });
    const kubelet = await startFakeKubelet({
      kind: 'reply',
      pods: [
        pod('ml', 'llm-big', 'server', 'nvidia.com/mig-3g.40gb', [migUuid(2)]),
        pod('team-a', 'notebook', 'jupyter', 'nvidia.com/mig-1g.10gb', [migUuid(9)]),
        pod('team-b', 'batch', 'worker', 'nvidia.com/mig-1g.10gb', [migUuid(10)]),
        pod('ml', 'trainer-1', 'main', 'nvidia.com/gpu', [gpuUuids[1]]),
      ],
    });
    kubelets.push(kubelet);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-prom-mig-'));
    const serve = async (names: 'dcgm' | 'default', port: number, extra: string[]) => {
      const child = spawn(
        process.execPath,
        [path.join(PACKAGE_ROOT, 'dist', 'cli.js'), 'serve', '--simulate', 'h100-mig', '--names', names, '--port', String(port), '--interval-ms', '200', '--pod-resources-socket', kubelet.socket, '--pod-resources-refresh-ms', '1000', ...extra],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NAME: 'gpu-node-3' } },
      );
      children.push(child);
      let out = '';
      child.stdout!.on('data', (c) => (out += c));
      child.stderr!.on('data', (c) => (out += c));
      await waitFor(() => out.includes('serving http://'), 15_000);
      return () => out;
    };
    const [dcgmPort, defaultPort, promPort] = [await freePort(), await freePort(), await freePort()];
    await serve('dcgm', dcgmPort, []);
    await serve('default', defaultPort, ['--processes']);
    const { prometheus, stderr: promErr } = startPrometheus(dir, promPort, { dcgm: dcgmPort, default: defaultPort });

    // Until both targets are scraped with the MIG instances (per-instance GPM needs a pair) and pods.
    const deadline = Date.now() + 40_000;
    let ready = false;
    while (Date.now() < deadline && !ready) {
      try {
        const a = await query(promPort, 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{job="dcgm",GPU_I_ID="9",pod="notebook"}');
        const b = await query(promPort, 'gpu_tensor_pipe_active_ratio{job="default",gpu_instance="9",pod="notebook"}');
        const c = await query(promPort, 'gpu_process_sm_utilization_ratio{job="default",gpu="1"}');
        ready = a.length === 1 && b.length === 1 && c.length > 0;
      } catch {
        // not listening yet
      }
      if (!ready) await sleep(250);
    }
    expect(prometheus.exitCode, promErr()).toBeNull();
    expect(ready).toBe(true);

    // dcgm naming: every one of dcgm-exporter's default counters under its exact name, typed as
    // dcgm-exporter types it, and nothing renamed with an OpenMetrics _total suffix.
    for (const spec of DCGM_DEFAULT_METRICS) {
      expect.soft((await query(promPort, `${spec.name}{job="dcgm"}`)).length, spec.name).toBeGreaterThan(0);
    }
    expect(await query(promPort, '{job="dcgm",__name__=~"DCGM_.*_total"}')).toEqual([]);
    const meta = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets/metadata?match_target={job="dcgm"}&metric=DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`)).json()) as { data: { type: string }[] };
    expect(meta.data.map((m) => m.type)).toEqual(['counter']);
    // mJ since the driver loaded, as dcgm-exporter's counter (the GPU held by a pod carries it).
    const energy = await query(promPort, 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{job="dcgm",gpu="1"}');
    expect(energy[0].metric).toMatchObject({ pod: 'trainer-1', namespace: 'ml', container: 'main' });
    expect(Number(energy[0].value[1])).toBeGreaterThan(1e9);

    // NVIDIA's dashboard: every panel query finds series (GPU 0's utilisation is not reported in
    // MIG mode, so that panel shows GPUs 1-7), and its variables list the instance and the GPUs.
    for (const [title, expr] of NVIDIA_DASHBOARD_PANELS) {
      const q = expr.replaceAll('$instance', '.*').replaceAll('$gpu', '.*');
      expect.soft((await query(promPort, q)).length, title).toBeGreaterThan(0);
    }
    for (const [variable, metric] of NVIDIA_DASHBOARD_VARIABLES) {
      const res = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/label/${variable}/values?match[]=${metric}`)).json()) as { data: string[] };
      expect(res.data.length, variable).toBeGreaterThan(0);
    }
    const gpuValues = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/label/gpu/values?match[]=DCGM_FI_DEV_GPU_TEMP`)).json()) as { data: string[] };
    expect(gpuValues.data.sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    expect((await query(promPort, 'DCGM_FI_DEV_GPU_UTIL{job="dcgm"}')).map((r) => r.metric.gpu).sort()).toEqual(['1', '2', '3', '4', '5', '6', '7']);

    // MIG instances in dcgm naming: dcgm-exporter's GPU_I_ID / GPU_I_PROFILE, the pods that hold them.
    const fbUsed = await query(promPort, 'DCGM_FI_DEV_FB_USED{job="dcgm",gpu="0"}');
    expect(fbUsed.map((r) => [r.metric.GPU_I_ID, r.metric.GPU_I_PROFILE, r.metric.pod ?? null]).sort()).toEqual([
      ['10', '1g.10gb', 'batch'],
      ['11', '1g.10gb', null],
      ['2', '3g.40gb', 'llm-big'],
      ['9', '1g.10gb', 'notebook'],
    ]);
    expect(fbUsed[0].metric).toMatchObject({ Hostname: 'gpu-node-3', UUID: gpuUuids[0], device: 'nvidia0' });
    // Default naming: the same instances, our labels.
    const used = await query(promPort, 'gpu_memory_used_bytes{job="default",gpu="0"}');
    expect(used.map((r) => [r.metric.gpu_instance, r.metric.gpu_instance_profile, r.metric.namespace ?? null]).sort()).toEqual([
      ['10', '1g.10gb', 'team-b'],
      ['11', '1g.10gb', null],
      ['2', '3g.40gb', 'ml'],
      ['9', '1g.10gb', 'team-a'],
    ]);
    // The parent's own figures are honest: utilisation not supported in MIG mode, memory needs privileges.
    const unavailable = await query(promPort, 'gpu_telemetry_field_unavailable{job="default",gpu="0"}');
    expect(unavailable.map((r) => [r.metric.field, r.metric.status]).sort()).toEqual(
      expect.arrayContaining([
        ['gpuUtilizationRatio', 'not_supported'],
        ['memoryUsedBytes', 'no_permission'],
        ['processUtilization', 'not_supported'],
      ]),
    );
    // Per-process series: MIG processes with their instance; whole GPUs with utilisation.
    const procs = await query(promPort, 'gpu_process_used_memory_bytes{job="default",gpu="0"}');
    expect(procs.map((r) => [r.metric.pid, r.metric.gpu_instance]).sort()).toEqual([
      ['5201', '2'],
      ['5301', '9'],
      ['5401', '10'],
      ['5402', '10'],
    ]);
    expect((await query(promPort, 'gpu_process_sm_utilization_ratio{job="default",gpu="1",pid="4101"}'))[0].value[1]).not.toBe('');
    expect((await query(promPort, 'gpu_telemetry_mig_device_info{job="default"}')).length).toBe(4);
    // pod_info for the MIG instances, with the instance.
    const info = await query(promPort, 'gpu_telemetry_pod_info{job="default"}');
    expect(info.map((r) => [r.metric.gpu, r.metric.gpu_instance ?? null, r.metric.pod]).sort()).toEqual([
      ['0', '10', 'batch'],
      ['0', '2', 'llm-big'],
      ['0', '9', 'notebook'],
      ['1', null, 'trainer-1'],
    ]);
    // Both targets were scraped in OpenMetrics or text as each offered, and neither broke.
    expect((await query(promPort, 'up')).map((r) => [r.metric.job, r.value[1]]).sort()).toEqual([
      ['dcgm', '1'],
      ['default', '1'],
    ]);
  }, 120_000);
});
