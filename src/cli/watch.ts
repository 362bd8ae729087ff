/**
 * `gpu-telemetry watch`: a live terminal view of every GPU. On a terminal it draws on the
 * alternate screen and redraws in place (like htop / nvitop), fitted to the window's width and
 * height; piped, it prints plain frames without escape codes.
 */
import fs from 'node:fs';
import type { DeviceSample, GpuSnapshot } from '../snapshot.js';
import { formatValue } from '../format.js';
import { openGpuTelemetry, type GpuTelemetry } from '../telemetry.js';
import { intOption, parse, type Io } from './common.js';

export const WATCH_HELP = `Usage: gpu-telemetry watch [options]

A live view of every GPU, redrawn in place: utilisation, tensor-pipe activity,
memory (with its source), power, temperature and clock-event (throttle) reasons.
On a terminal it uses the alternate screen (your scrollback is left alone) and fits
the window: one compact row per GPU when the full view does not fit. Piped, it
prints plain frames. q or Ctrl-C quits.

Options:
  --simulate NAME     use the driver simulator
  --interval-ms N     refresh interval (default 1000)
  --nvml PATH         NVML library to load
  --count N           stop after N refreshes (default: run until quit)
  -h, --help          show this help
`;

const ESC = '\x1b[';
/** Enter the alternate screen, hide the cursor. */
export const SCREEN_ENTER = `${ESC}?1049h${ESC}?25l`;
/** Show the cursor, leave the alternate screen (the shell's screen comes back as it was). */
export const SCREEN_LEAVE = `${ESC}?25h${ESC}?1049l`;
/** Cursor home and clear: each frame replaces the last one. */
const FRAME_START = `${ESC}H${ESC}2J`;

/** Rows of one GPU in the full view: a blank line, the name, util, memory, power, clocks. */
const FULL_ROWS_PER_GPU = 6;

export interface WatchRenderOptions {
  /** Terminal columns (default 100); every line is cut to fit. */
  width?: number;
  /** Terminal rows (default: unlimited, as when piped). The frame never has more lines. */
  height?: number;
  /** ANSI colours on the bars (default false). */
  color?: boolean;
  /** Cut lines to `width` (default true; piped output keeps whole lines). */
  cut?: boolean;
}

function bar(ratio: number | null, width: number, color: boolean): string {
  if (width <= 0) return '';
  if (ratio === null) return 'n/a'.padStart(width);
  const filled = Math.round(Math.max(0, Math.min(1, ratio)) * width);
  const body = '█'.repeat(filled) + '░'.repeat(width - filled);
  if (!color) return body;
  const c = ratio > 0.9 ? '31' : ratio > 0.6 ? '33' : '32';
  return `${ESC}${c}m${body}${ESC}0m`;
}

function pct(v: number | null): string {
  return v === null ? ' n/a' : `${(v * 100).toFixed(0)}%`.padStart(4);
}

/** Cuts a line to `width` visible characters (escape sequences take no room and are kept whole). */
export function fitLine(line: string, width: number): string {
  let visible = 0;
  let out = '';
  let colored = false;
  for (let i = 0; i < line.length; ) {
    if (line[i] === '\x1b') {
      const m = /^\x1b\[[0-9;?]*[A-Za-z]/.exec(line.slice(i));
      if (m) {
        out += m[0];
        colored = m[0] !== `${ESC}0m`;
        i += m[0].length;
        continue;
      }
    }
    if (visible >= width) return colored ? `${out}${ESC}0m` : out;
    const cp = line.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    out += ch;
    visible++;
    i += ch.length;
  }
  return out;
}

/** The part of a name worth a compact row: no vendor prefix, no "(simulated)" (the header says it). */
function shortName(name: string): string {
  return name.replace(/^NVIDIA /, '').replace(/ \(simulated\)$/, '');
}

function memoryRatio(d: DeviceSample): number | null {
  const f = d.fields;
  return f.memoryUsedBytes !== null && f.memoryTotalBytes ? f.memoryUsedBytes / f.memoryTotalBytes : null;
}

/** Where the memory figures come from, always shown: `nvml`, or system memory on unified-memory GPUs. */
function memorySource(d: DeviceSample, long: boolean): string {
  const src = d.source.memoryUsedBytes;
  if (d.fields.memoryUsedBytes === null) return `${src === 'none' ? 'no source' : src}: ${d.status.memoryUsedBytes}`;
  if (src === 'meminfo') return long ? 'meminfo, unified memory' : 'meminfo';
  return src;
}

/** "40.1/79.6 GiB": both figures in the total's unit. */
function memoryPair(used: number | null, total: number | null): string {
  if (used === null || total === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let scale = 1;
  while (total / scale >= 1024 && i < units.length - 1) {
    scale *= 1024;
    i++;
  }
  return `${(used / scale).toFixed(1)}/${(total / scale).toFixed(1)} ${units[i]}`;
}

function reasonsText(d: DeviceSample): string {
  const r = d.clockEventReasons;
  const text = r === null ? 'n/a' : r.length ? r.join(', ') : 'nothing';
  return d.fields.xidErrors ? `${text}; XIDs: ${d.fields.xidErrors} (last ${d.fields.lastXid})` : text;
}

function stateTag(d: DeviceSample): string {
  return d.state === 'ok' ? '' : `  [${d.state.toUpperCase()}]`;
}

function header(gpu: GpuTelemetry, snap: GpuSnapshot): string[] {
  const when = new Date(snap.takenAt).toISOString().slice(11, 19);
  const lines = [
    `gpu-telemetry watch · driver ${gpu.driver.driverVersion} · ${snap.devices.length} GPU(s) · ${when}` +
      (gpu.driver.simulated ? ` · SIMULATED (${gpu.driver.scenario})` : ''),
  ];
  if (snap.stale) lines.push(`STALE: ${snap.staleReason}`);
  return lines;
}

function fullView(d: DeviceSample, width: number, color: boolean): string[] {
  const f = d.fields;
  const barWidth = Math.max(10, Math.min(40, Math.floor((width - 50) / 2)));
  const powerRatio = f.powerWatts !== null && f.powerLimitWatts ? f.powerWatts / f.powerLimitWatts : null;
  const mem = memoryRatio(d);
  return [
    '',
    `GPU ${d.index} ${d.name}${stateTag(d)}`,
    `  util   ${bar(f.gpuUtilizationRatio, barWidth, color)} ${pct(f.gpuUtilizationRatio)}   tensor ${bar(f.tensorActiveRatio, barWidth, color)} ${pct(f.tensorActiveRatio)}`,
    `  memory ${bar(mem, barWidth, color)} ${pct(mem)}   ${formatValue('bytes', f.memoryUsedBytes)} / ${formatValue('bytes', f.memoryTotalBytes)}` +
      `  (source: ${memorySource(d, true)})`,
    `  power  ${bar(powerRatio, barWidth, color)} ${pct(powerRatio)}   ${formatValue('W', f.powerWatts)} / ${formatValue('W', f.powerLimitWatts)}` +
      `   temp ${formatValue('Cel', f.temperatureGpuCelsius)}   SM ${formatValue('Hz', f.smClockHz)}`,
    `  clocks held by: ${reasonsText(d)}`,
  ];
}

interface Column {
  id: string;
  title: string;
  width: number;
  /** Dropped first when the terminal is narrow: the highest number goes first; 0 never. */
  drop: number;
  cell: (d: DeviceSample) => string;
}

function compactView(devices: readonly DeviceSample[], width: number, color: boolean): string[] {
  const nameWidth = Math.min(18, Math.max(4, ...devices.map((d) => shortName(d.name).length)));
  const barWidth = 10;
  const columns: Column[] = [
    { id: 'gpu', title: 'GPU', width: 3, drop: 0, cell: (d) => String(d.index).padStart(3) },
    { id: 'name', title: 'NAME', width: nameWidth, drop: 4, cell: (d) => shortName(d.name).slice(0, nameWidth) },
    { id: 'bar', title: 'UTIL', width: barWidth, drop: 6, cell: (d) => bar(d.fields.gpuUtilizationRatio, barWidth, color) },
    { id: 'util', title: 'UTIL', width: 4, drop: 0, cell: (d) => pct(d.fields.gpuUtilizationRatio) },
    { id: 'tensor', title: 'TENS', width: 4, drop: 0, cell: (d) => pct(d.fields.tensorActiveRatio) },
    { id: 'memory', title: 'MEMORY', width: 13, drop: 0, cell: (d) => memoryPair(d.fields.memoryUsedBytes, d.fields.memoryTotalBytes) },
    { id: 'source', title: 'SOURCE', width: 7, drop: 0, cell: (d) => memorySource(d, false) },
    {
      id: 'power',
      title: 'POWER',
      width: 11,
      drop: 3,
      cell: ({ fields: f }) =>
        f.powerWatts === null ? '—' : `${f.powerWatts.toFixed(0)}/${f.powerLimitWatts === null ? '?' : f.powerLimitWatts.toFixed(0)} W`,
    },
    { id: 'temp', title: 'TEMP', width: 5, drop: 2, cell: ({ fields: f }) => (f.temperatureGpuCelsius === null ? '—' : `${f.temperatureGpuCelsius.toFixed(0)}°C`) },
    { id: 'sm', title: 'SM CLOCK', width: 8, drop: 5, cell: ({ fields: f }) => (f.smClockHz === null ? '—' : `${(f.smClockHz / 1e6).toFixed(0)} MHz`) },
  ];
  const reasonsMin = 14;
  const total = (cols: Column[]) => cols.reduce((n, c) => n + c.width + 2, 0);
  let shown = columns;
  while (total(shown) + reasonsMin > width && shown.some((c) => c.drop > 0)) {
    const worst = Math.max(...shown.map((c) => c.drop));
    shown = shown.filter((c) => c.drop !== worst);
  }
  const hasBar = shown.some((c) => c.id === 'bar');
  // With the bar shown, UTIL heads the bar and the percentage column beside it has no title.
  const rows = [[...shown.map((c) => (c.id === 'util' && hasBar ? '' : c.title).padEnd(c.width)), 'CLOCKS HELD BY'].join('  ')];
  for (const d of devices) {
    if (d.state === 'gpu_lost' || d.state === 'error') {
      const why = Object.entries(d.reasons).find(([k]) => d.status[k as keyof DeviceSample['status']] === d.state)?.[1] ?? '';
      rows.push(`${String(d.index).padStart(3)}  ${shortName(d.name).slice(0, nameWidth).padEnd(nameWidth)}  [${d.state.toUpperCase()}] ${why}`);
      continue;
    }
    const cells = shown.map((c) => {
      const text = c.cell(d);
      // Bars are exactly their width already (and may carry colour codes).
      return c.id === 'bar' ? text : text.padEnd(c.width);
    });
    rows.push([...cells, `${reasonsText(d)}${d.state === 'stale' ? ' [STALE]' : ''}`].join('  '));
  }
  return rows;
}

/**
 * One frame of the view (pure: the tests render it without a terminal). The full view takes six
 * rows per GPU; when that does not fit `height`, every GPU gets one compact row, and when even
 * that does not fit, the last line says how many GPUs are not shown.
 */
export function renderWatch(gpu: GpuTelemetry, snap: GpuSnapshot, opts: WatchRenderOptions = {}): string {
  const width = Math.max(20, Math.floor(opts.width ?? 100));
  const height = Math.max(3, Math.floor(opts.height ?? Infinity));
  const color = opts.color ?? false;
  const head = header(gpu, snap);
  let lines: string[];
  if (head.length + snap.devices.length * FULL_ROWS_PER_GPU <= height) {
    lines = [...head, ...snap.devices.flatMap((d) => fullView(d, width, color))];
  } else {
    const compact = compactView(snap.devices, width, color);
    const room = height - head.length - 1; // one blank line under the header
    if (compact.length <= room) {
      lines = [...head, '', ...compact];
    } else {
      const shown = Math.max(0, room - 2); // the column header, and the "not shown" line
      const hidden = snap.devices.length - shown;
      lines = [...head, '', ...compact.slice(0, shown + 1), `… ${hidden} more GPU(s) not shown: the terminal has ${height} rows`];
    }
  }
  const cut = opts.cut ?? true;
  return lines
    .slice(0, height)
    .map((l) => (cut ? fitLine(l, width) : l))
    .join('\n');
}

interface Terminal {
  columns?: number;
  rows?: number;
  isTTY?: boolean;
  fd?: number;
  on(event: 'resize', fn: () => void): unknown;
  off(event: 'resize', fn: () => void): unknown;
}

export async function watchCommand(
  argv: string[],
  io: Io,
  input: NodeJS.ReadStream = process.stdin,
  output: Terminal = process.stdout,
  signals: NodeJS.EventEmitter = process,
): Promise<number> {
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
  const tty = output.isTTY === true;
  const keys = tty && input.isTTY === true;

  let frames = 0;
  let failure: unknown = null;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let last: GpuSnapshot | null = null;

  const draw = (snap: GpuSnapshot) => {
    try {
      last = snap;
      if (tty) {
        const frame = renderWatch(gpu, snap, { width: output.columns ?? 80, height: output.rows ?? 24, color: true });
        io.out(`${FRAME_START}${frame}`); // no trailing newline: a full-height frame must not scroll
      } else {
        io.out(`${renderWatch(gpu, snap, { width: output.columns ?? 100, cut: false })}\n\n`);
      }
      if (++frames >= count) finish();
    } catch (e) {
      failure = e;
      finish();
    }
  };

  // Whatever ends the process (an error, a closed pipe's exit), the terminal is given back.
  let restored = !tty;
  const restore = () => {
    if (restored) return;
    restored = true;
    try {
      fs.writeSync(output.fd ?? 1, SCREEN_LEAVE);
    } catch {
      // the terminal is gone: nothing to restore
    }
  };
  const onKey = (key: Buffer) => {
    if (key[0] === 0x71 /* q */ || key[0] === 0x51 /* Q */ || key[0] === 0x03 /* Ctrl-C */) finish();
  };
  const onSignal = () => finish();
  const onResize = () => {
    if (last) draw(gpu.snapshot());
  };
  const onSample = (snap: GpuSnapshot) => draw(snap);
  // No new sample while a driver call hangs: redraw anyway so the STALE line shows.
  const staleCheck = setInterval(() => {
    const snap = gpu.snapshot();
    if (snap.stale) draw(snap);
  }, Math.max(intervalMs, 1000));

  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  process.on('exit', restore);
  try {
    if (tty) {
      io.out(SCREEN_ENTER);
      output.on('resize', onResize);
    }
    if (keys) {
      input.setRawMode(true);
      input.on('data', onKey);
    }
    gpu.on('sample', onSample);
    await finished;
  } finally {
    clearInterval(staleCheck);
    gpu.off('sample', onSample);
    if (tty) output.off('resize', onResize);
    if (keys) {
      input.off('data', onKey);
      input.setRawMode(false);
      input.pause();
    }
    if (tty) {
      io.out(SCREEN_LEAVE);
      restored = true;
    }
    process.off('exit', restore);
    signals.off('SIGINT', onSignal);
    signals.off('SIGTERM', onSignal);
    await gpu.close();
  }
  if (failure) throw failure;
  return 0;
}
