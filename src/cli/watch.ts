/** `gpu-telemetry watch`: a live terminal view of every GPU, redrawn in place. */
import type { GpuSnapshot } from '../snapshot.js';
import { formatValue } from '../format.js';
import { openGpuTelemetry, type GpuTelemetry } from '../telemetry.js';
import { intOption, parse, type Io } from './common.js';

export const WATCH_HELP = `Usage: gpu-telemetry watch [options]

A live view of every GPU, refreshed in place: utilisation, tensor-pipe activity,
memory, power, temperature and clock-event (throttle) reasons. q or Ctrl-C quits.

Options:
  --simulate NAME     use the driver simulator
  --interval-ms N     refresh interval (default 1000)
  --nvml PATH         NVML library to load
  --count N           stop after N refreshes (default: run until quit)
  -h, --help          show this help
`;

const ESC = '\x1b[';

function bar(ratio: number | null, width: number, color: boolean): string {
  if (ratio === null) return `${' '.repeat(width)}`.replace(/ {3}$/, 'n/a');
  const filled = Math.round(Math.max(0, Math.min(1, ratio)) * width);
  const body = '█'.repeat(filled) + '░'.repeat(width - filled);
  if (!color) return body;
  const c = ratio > 0.9 ? '31' : ratio > 0.6 ? '33' : '32';
  return `${ESC}${c}m${body}${ESC}0m`;
}

function pct(v: number | null): string {
  return v === null ? '  n/a' : `${(v * 100).toFixed(0).padStart(4)}%`;
}

/** One frame of the view (pure: the tests render it without a terminal). */
export function renderWatch(gpu: GpuTelemetry, snap: GpuSnapshot, opts: { width?: number; color?: boolean } = {}): string {
  const width = Math.max(60, opts.width ?? 100);
  const color = opts.color ?? false;
  const barWidth = Math.max(10, Math.floor((width - 40) / 2));
  const out: string[] = [];
  const when = new Date(snap.takenAt).toISOString().slice(11, 19);
  out.push(
    `gpu-telemetry watch · driver ${gpu.driver.driverVersion} · ${snap.devices.length} GPU(s) · ${when}` +
      (gpu.driver.simulated ? ` · SIMULATED (${gpu.driver.scenario})` : '') +
      (snap.stale ? ` · STALE: ${snap.staleReason}` : ''),
  );
  for (const d of snap.devices) {
    const f = d.fields;
    const memRatio = f.memoryUsedBytes !== null && f.memoryTotalBytes ? f.memoryUsedBytes / f.memoryTotalBytes : null;
    const powerRatio = f.powerWatts !== null && f.powerLimitWatts ? f.powerWatts / f.powerLimitWatts : null;
    out.push('');
    out.push(`GPU ${d.index} ${d.name}${d.state !== 'ok' ? `  [${d.state.toUpperCase()}]` : ''}`);
    out.push(`  util   ${bar(f.gpuUtilizationRatio, barWidth, color)} ${pct(f.gpuUtilizationRatio)}   tensor ${bar(f.tensorActiveRatio, barWidth, color)} ${pct(f.tensorActiveRatio)}`);
    out.push(
      `  memory ${bar(memRatio, barWidth, color)} ${pct(memRatio)}   ${formatValue('bytes', f.memoryUsedBytes)} / ${formatValue('bytes', f.memoryTotalBytes)}` +
        (d.source.memoryUsedBytes === 'meminfo' ? ' (system, unified)' : ''),
    );
    out.push(
      `  power  ${bar(powerRatio, barWidth, color)} ${pct(powerRatio)}   ${formatValue('W', f.powerWatts)} / ${formatValue('W', f.powerLimitWatts)}` +
        `   temp ${formatValue('Cel', f.temperatureGpuCelsius)}   SM ${formatValue('Hz', f.smClockHz)}`,
    );
    const reasons = d.clockEventReasons;
    out.push(`  clocks held by: ${reasons === null ? 'n/a' : reasons.length ? reasons.join(', ') : 'nothing'}` +
      (f.xidErrors ? `   XIDs: ${f.xidErrors} (last ${f.lastXid})` : ''));
  }
  return out.map((l) => (l.length > width + 40 ? l.slice(0, width + 40) : l)).join('\n');
}

export async function watchCommand(argv: string[], io: Io, input: NodeJS.ReadStream = process.stdin): Promise<number> {
  const { values } = parse(argv, {
    simulate: { type: 'string' },
    'interval-ms': { type: 'string' },
    nvml: { type: 'string' },
    count: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(WATCH_HELP);
    return 0;
  }
  const intervalMs = intOption('interval-ms', values['interval-ms'], 1000, 50, 3_600_000);
  const count = values.count === undefined ? Infinity : intOption('count', values.count, 1, 1, 1_000_000);
  const gpu = await openGpuTelemetry({
    intervalMs,
    ...(values.simulate !== undefined ? { simulate: values.simulate } : {}),
    ...(values.nvml !== undefined ? { libraries: { nvml: values.nvml } } : {}),
  });
  const tty = process.stdout.isTTY === true;
  let frames = 0;
  let quit = false;
  const onKey = (key: Buffer) => {
    if (key[0] === 0x71 /* q */ || key[0] === 0x03 /* Ctrl-C */) quit = true;
  };
  if (tty && input.isTTY) {
    input.setRawMode(true);
    input.on('data', onKey);
  }
  const onSignal = () => (quit = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (tty) io.out(`${ESC}?25l`); // hide the cursor while redrawing
    for await (const snap of gpu.samples()) {
      const frame = renderWatch(gpu, snap, { width: process.stdout.columns ?? 100, color: tty });
      io.out(tty ? `${ESC}H${ESC}2J${frame}\n` : `${frame}\n\n`);
      if (++frames >= count || quit) break;
    }
  } finally {
    if (tty) io.out(`${ESC}?25h`);
    if (tty && input.isTTY) {
      input.off('data', onKey);
      input.setRawMode(false);
      input.pause();
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await gpu.close();
  }
  return 0;
}
