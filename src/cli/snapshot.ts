/** `gpu-telemetry snapshot`: every device and field, with units, status and source. */
import { FIELDS } from '../fields.js';
import { formatValue } from '../format.js';
import type { GpuSnapshot } from '../snapshot.js';
import { openGpuTelemetry, type GpuTelemetry } from '../telemetry.js';
import { intOption, parse, type Io } from './common.js';

export const SNAPSHOT_HELP = `Usage: gpu-telemetry snapshot [options]

Prints one sample of every GPU: each field with its value and unit, its status
(ok, not_supported, no_permission, gpu_lost, stale, error, pending) and its source.
Rates (PCIe, NVLink) need two samples, so it waits for the second one (and, up to a
second more, for values still pending: GPM pairs samples at least 100 ms apart).

Options:
  --json              print JSON (values in base units: Hz, bytes, W, J, °C, ratios 0-1)
  --simulate NAME     use the driver simulator (a scenario name or a .json path);
                      see "gpu-telemetry scenarios"
  --interval-ms N     sampling interval while waiting (default 250)
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
  const intervalMs = intOption('interval-ms', values['interval-ms'], 250, 10, 60_000);
  const gpu = await openGpuTelemetry({
    intervalMs,
    ...(values.simulate !== undefined ? { simulate: values.simulate } : {}),
    ...(values.nvml !== undefined ? { libraries: { nvml: values.nvml } } : {}),
  });
  try {
    const snap = await secondSample(gpu);
    io.out(values.json ? `${JSON.stringify(toJson(gpu, snap), null, 2)}\n` : renderTable(gpu, snap));
  } finally {
    await gpu.close();
  }
  return 0;
}

/**
 * The second sample, or a later one while fields are still `pending` (GPM pairs samples at least
 * 100 ms apart, DCGM's first value needs an update cycle), for at most a second more.
 */
async function secondSample(gpu: GpuTelemetry): Promise<GpuSnapshot> {
  const first = gpu.snapshot();
  if (first.devices.length === 0) return first;
  let deadline = Infinity;
  for await (const snap of gpu.samples()) {
    if (snap.seq < first.seq + 1) continue;
    const pending = snap.devices.some((d) => Object.values(d.status).includes('pending'));
    if (!pending) return snap;
    if (deadline === Infinity) deadline = Date.now() + 1000;
    if (Date.now() >= deadline) return snap;
  }
  return gpu.snapshot();
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
