/** `gpu-telemetry snapshot`: every device and field, with units, status and source. */
import { FIELDS } from '../fields.js';
import { formatValue } from '../format.js';
import type { GpuSnapshot } from '../snapshot.js';
import { openGpuTelemetry, type GpuTelemetry } from '../telemetry.js';
import { intOption, parse, type Io } from './common.js';

export const SNAPSHOT_HELP = `Usage: gpu-telemetry snapshot [options]

Prints one sample of every GPU: each field with its value and unit, its status
(ok, not_supported, no_permission, gpu_lost, stale, error, pending) and its source.
It prints as soon as no field is pending: rates from counters need two samples,
GPM metrics two GPM samples at least 100 ms apart, a DCGM value an update cycle
(a field still pending after a second is printed as pending). --json also waits
for the second sample the per-link NVLink rates need.

Options:
  --json              print JSON (values in base units: Hz, bytes, W, J, °C, ratios 0-1)
  --simulate NAME     use the driver simulator (a scenario name or a .json path);
                      see "gpu-telemetry scenarios"
  --interval-ms N     sampling interval while waiting (default 20)
  --nvml PATH         NVML library to load (default libnvidia-ml.so.1)
  -h, --help          show this help
`;

export async function snapshotCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, {
    json: { type: 'boolean' },
    simulate: { type: 'string' },
    'interval-ms': { type: 'string' },
    nvml: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(SNAPSHOT_HELP);
    return 0;
  }
  // Sampling fast while waiting costs a few samples' worth of CPU and ends the wait as soon as
  // the readings exist: a counter rate after 20 ms rather than 250, a GPM pair at the first
  // sample 100 ms after the first GPM sample (the sampler never pairs two closer together).
  const intervalMs = intOption('interval-ms', values['interval-ms'], 20, 10, 60_000);
  const gpu = await openGpuTelemetry({
    intervalMs,
    ...(values.simulate !== undefined ? { simulate: values.simulate } : {}),
    ...(values.nvml !== undefined ? { libraries: { nvml: values.nvml } } : {}),
  });
  try {
    const snap = await settledSample(gpu, values.json === true);
    io.out(values.json ? `${JSON.stringify(toJson(gpu, snap), null, 2)}\n` : renderTable(gpu, snap));
  } finally {
    await gpu.close();
  }
  return 0;
}

/** How long the command waits at most for values still `pending` (DCGM's first update cycle). */
const PENDING_WAIT_MS = 1000;

/**
 * The first sample with nothing left to wait for: no field `pending`, the GPU's or a MIG instance's
 * (a rate's first sample, a GPM pair not yet 100 ms apart, DCGM before its first update), and with `perLinkRates` (JSON prints
 * them) a second sample when the first has an up link without rates. Often the first sample
 * itself (DCGM gives rates from its own counters). Never later than PENDING_WAIT_MS: a field that
 * is still pending then is printed as pending.
 */
async function settledSample(gpu: GpuTelemetry, perLinkRates: boolean): Promise<GpuSnapshot> {
  const first = gpu.snapshot();
  const settled = (snap: GpuSnapshot) =>
    !snap.devices.some((d) => {
      const st = d.status;
      for (const k in st) if (st[k as keyof typeof st] === 'pending') return true;
      for (const m of d.migInstances) {
        for (const k in m.status) if (m.status[k as keyof typeof m.status] === 'pending') return true;
      }
      return perLinkRates && snap.seq === first.seq && d.nvlinks.some((l) => l.up && (l.txBytesPerSecond === null || l.rxBytesPerSecond === null));
    });
  if (first.devices.length === 0 || settled(first)) return first;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => {
    timer = setTimeout(resolve, PENDING_WAIT_MS, null);
  });
  const it = gpu.samples();
  try {
    for (;;) {
      const next = await Promise.race([it.next(), deadline]);
      if (next === null || next.done) return gpu.snapshot();
      if (next.value.seq > first.seq && settled(next.value)) return next.value;
    }
  } finally {
    clearTimeout(timer);
    await it.return?.();
  }
}

export function toJson(gpu: GpuTelemetry, snap: GpuSnapshot) {
  return {
    driver: gpu.driver,
    takenAt: new Date(snap.takenAt).toISOString(),
    ageMs: snap.ageMs,
    stale: snap.stale,
    staleReason: snap.staleReason,
    devices: snap.devices.map((d) => ({
      ...gpu.devices[d.index],
      state: d.state,
      fields: Object.fromEntries(
        FIELDS.map((f) => [
          f.name,
          {
            value: d.fields[f.name],
            unit: f.unit,
            status: d.status[f.name],
            source: d.source[f.name],
            ...(d.reasons[f.name] ? { reason: d.reasons[f.name] } : {}),
          },
        ]),
      ),
      clockEventReasons: d.clockEventReasons,
      nvlinks: d.nvlinks,
      processes: d.processes,
      processesTruncated: d.processesTruncated,
      processUtilization: d.processUtilization,
      migMode: d.migMode,
      migInstances: d.migInstances,
      ...(d.migInstancesReason ? { migInstancesReason: d.migInstancesReason } : {}),
    })),
  };
}

export function renderTable(gpu: GpuTelemetry, snap: GpuSnapshot): string {
  const lines: string[] = [];
  const drv = gpu.driver;
  lines.push(
    `driver ${drv.driverVersion || '?'} · NVML ${drv.nvmlVersion || '?'}` +
      (drv.simulated ? ` · SIMULATED (scenario ${drv.scenario})` : '') +
      ` · ${snap.devices.length} GPU${snap.devices.length === 1 ? '' : 's'} · sample ${new Date(snap.takenAt).toISOString()}` +
      (snap.stale ? ` · STALE: ${snap.staleReason}` : ''),
  );
  if (snap.devices.length === 0) lines.push('no NVIDIA GPU found');
  for (const d of snap.devices) {
    const info = gpu.devices[d.index];
    lines.push('');
    lines.push(
      `GPU ${d.index}  ${d.name}  ${d.uuid}  ${info.pciBusId}  state: ${d.state}` +
        (info.unifiedMemory ? '  unified memory' : ''),
    );
    const width = Math.max(...FIELDS.map((f) => f.name.length));
    for (const f of FIELDS) {
      const st = d.status[f.name];
      let shown = formatValue(f.unit, d.fields[f.name]);
      if (f.name === 'clockEventReasons' && d.clockEventReasons) {
        shown = d.clockEventReasons.length ? d.clockEventReasons.join(', ') : 'none';
      }
      const tail = st === 'ok' ? d.source[f.name] : `${st} (${d.reasons[f.name] ?? ''})`;
      lines.push(`  ${f.name.padEnd(width)}  ${shown.padStart(14)}  ${tail}`);
    }
    if (d.nvlinks.length) {
      const up = d.nvlinks.filter((l) => l.up).length;
      lines.push(`  nvlinks: ${up}/${d.nvlinks.length} up`);
    }
    if (d.processes.length) {
      const util = (p: (typeof d.processes)[number]) => (p.smUtilizationRatio === null ? '' : `, SM ${formatValue('ratio', p.smUtilizationRatio)}`);
      lines.push(
        `  processes: ${d.processes
          .map((p) => `${p.pid} (${formatValue('bytes', p.usedMemoryBytes)}${util(p)}${p.gpuInstanceId === null ? '' : `, GI ${p.gpuInstanceId}`})`)
          .join(', ')}${d.processesTruncated ? ', …' : ''}`,
      );
    }
    if (d.migMode) lines.push(`  MIG mode: on${d.migInstancesReason ? ` — ${d.migInstancesReason}` : ''}`);
    for (const m of d.migInstances) {
      const f = m.fields;
      const activity = f.tensorActiveRatio === null ? (m.status.tensorActiveRatio) : `tensor ${formatValue('ratio', f.tensorActiveRatio)}, SM ${formatValue('ratio', f.smActiveRatio)}`;
      lines.push(
        `  GI ${String(m.gpuInstanceId).padStart(2)} ${(m.profile ?? '?').padEnd(9)} ${m.computeInstances.map((c) => c.uuid ?? '?').join(' ')}  ` +
          `memory ${formatValue('bytes', f.memoryUsedBytes)} / ${formatValue('bytes', f.memoryTotalBytes)}, ${f.processCount ?? '?'} processes, ${activity}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
