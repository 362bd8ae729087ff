/**
 * NVTX-style ranges and marks from JS, recorded on the capture clock so they line up with the
 * kernels in the trace (domain "gpu-telemetry.js"). When no capture is live they cost a function
 * call and nothing is recorded. Ranges are recorded on the JS thread that armed the capture.
 *
 *   await nvtx.range('prefill', () => model.prefill(tokens));   // sync or async fn
 *   nvtx.push('decode'); …; nvtx.pop();
 *   nvtx.mark('cache-evicted');
 */
import { GpuTelemetryError } from './errors.js';

/** @internal What a live capture offers the nvtx functions. */
export interface NvtxSink {
  /** Now on the capture clock (ns relative to the capture's base). */
  timestamp(): number;
  /** A finished range (end > start) or a mark (end === start). */
  record(startNs: number, endNs: number, name: string, isRange: boolean): void;
}

let sink: NvtxSink | null = null;

/** @internal Set by the capture while it is live; null otherwise. */
export function setNvtxSink(next: NvtxSink | null): void {
  sink = next;
}

/** @internal */
export function currentNvtxSink(): NvtxSink | null {
  return sink;
}

interface Open {
  name: string;
  sink: NvtxSink | null;
  startNs: number;
}

const stack: Open[] = [];
const MAX_DEPTH = 1024;

function checkName(name: unknown, fn: string): asserts name is string {
  if (typeof name !== 'string') {
    throw new GpuTelemetryError('INVALID_OPTION', `nvtx.${fn}(name): name must be a string, not ${name === null ? 'null' : typeof name}`, {
      option: 'name',
    });
  }
}

function finish(open: Open): void {
  const s = open.sink;
  if (s !== null && s === sink) s.record(open.startNs, s.timestamp(), open.name, true);
}

export const nvtx = Object.freeze({
  /**
   * Runs `fn` inside a range named `name` and returns what it returns; for a promise, the range ends
   * when it settles (and the returned promise settles the same way).
   */
  range<T>(name: string, fn: () => T): T {
    checkName(name, 'range');
    const s = sink;
    if (s === null) return fn();
    const open: Open = { name, sink: s, startNs: s.timestamp() };
    let result: T;
    try {
      result = fn();
    } catch (e) {
      finish(open);
      throw e;
    }
    const maybe = result as unknown as { then?: unknown; finally?: unknown } | null;
    if (maybe !== null && typeof maybe === 'object' && typeof maybe.then === 'function') {
      if (typeof maybe.finally === 'function') {
        return (result as unknown as Promise<unknown>).finally(() => finish(open)) as unknown as T;
      }
      (result as unknown as PromiseLike<unknown>).then(
        () => finish(open),
        () => finish(open),
      );
      return result;
    }
    finish(open);
    return result;
  },

  /** Opens a range on this thread's stack; returns its depth (0 for the outermost), -1 past 1024 levels. */
  push(name: string): number {
    checkName(name, 'push');
    if (stack.length >= MAX_DEPTH) return -1;
    const s = sink;
    stack.push({ name, sink: s, startNs: s !== null ? s.timestamp() : 0 });
    return stack.length - 1;
  },

  /** Closes the innermost pushed range; returns the depth it had, or -1 when none was open. */
  pop(): number {
    const open = stack.pop();
    if (!open) return -1;
    finish(open);
    return stack.length;
  },

  /** An instant event. */
  mark(name: string): void {
    checkName(name, 'mark');
    const s = sink;
    if (s === null) return;
    const t = s.timestamp();
    s.record(t, t, name, false);
  },
});

export type Nvtx = typeof nvtx;
