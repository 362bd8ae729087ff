import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIELDS, openGpuTelemetry, type FieldName, type GpuTelemetry, type GpuTelemetryOptions } from '../src/index.js';

/** Fields NVML answers by polling (not events, not profiling), minus `except`. */
export function polledNvmlFields(except: FieldName[] = []): FieldName[] {
  const events: FieldName[] = ['xidErrors', 'lastXid'];
  return FIELDS.filter((f) => f.sources.includes('nvml') && !events.includes(f.name) && !except.includes(f.name)).map(
    (f) => f.name,
  );
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined/false) or the time runs out. */
export async function waitFor<T>(check: () => T | undefined | false, timeoutMs = 10_000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-telemetry-test-'));
let counter = 0;

/** Writes a scenario object to a temporary .json file and returns its path. */
export function writeScenario(scenario: object): string {
  const file = path.join(tmpRoot, `scenario-${process.pid}-${counter++}.json`);
  fs.writeFileSync(file, JSON.stringify(scenario));
  return file;
}

export function threadCount(): number {
  return fs.readdirSync('/proc/self/task').length;
}

export function rssBytes(): number {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Opens, runs `fn`, always closes. */
export async function withTelemetry<T>(options: GpuTelemetryOptions, fn: (gpu: GpuTelemetry) => Promise<T>): Promise<T> {
  const gpu = await openGpuTelemetry(options);
  try {
    return await fn(gpu);
  } finally {
    await gpu.close();
  }
}

/** Waits until the snapshot's seq has advanced by `n` samples. */
export async function nextSamples(gpu: GpuTelemetry, n = 1, timeoutMs = 10_000) {
  const start = gpu.snapshot().seq;
  return waitFor(() => {
    const s = gpu.snapshot();
    return s.seq >= start + n ? s : undefined;
  }, timeoutMs);
}

/** A one-device H100-like scenario with a constant, noise-free load (exact expectations). */
export function constantScenario(overrides: Record<string, unknown> = {}, device: Record<string, unknown> = {}) {
  return {
    name: 'test-constant',
    seed: 42,
    tickMs: 100,
    devices: [
      {
        name: 'NVIDIA H100 80GB HBM3',
        memoryTotalBytes: 85520809984,
        memoryReservedBytes: 556793856,
        computeCapability: [9, 0],
        pcie: { generation: 5, width: 16, maxBytesPerSecond: 64e9 },
        clocksMHz: { sm: 1980, memory: 2619, graphics: 1980, smIdle: 345, memoryIdle: 2619 },
        power: { idleWatts: 100, limitWatts: 700 },
        thermal: { ambientCelsius: 30, maxCelsius: 80, memoryOffsetCelsius: 6 },
        fan: true,
        ecc: { volatileCorrected: 3, volatileUncorrected: 1, aggregateCorrected: 17, aggregateUncorrected: 2 },
        nvlink: { links: 18, maxBytesPerSecondPerLink: 25e9 },
        load: { shape: 'constant', value: 0.5, noise: 0 },
        processes: [
          { pid: 1111, usedMemoryBytes: 10 * 2 ** 30 },
          { pid: 2222, usedMemoryBytes: 2 ** 30 },
          { pid: 3333, usedMemoryBytes: null },
        ],
        ...device,
      },
    ],
    ...overrides,
  };
}
