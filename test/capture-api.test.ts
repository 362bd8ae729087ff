/**
 * capture.arm() and the CaptureHandle against a fake NativeCapture that follows the contract:
 * options, steps, busy, cancel, timeout, start failures, JS NVTX ranges, OpenTelemetry.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { context, ROOT_CONTEXT, trace, type Context, type ContextManager, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { CAPTURE_LIMITS, captureStats, createKernelCapture, GpuTelemetryError, JS_NVTX_DOMAIN, nvtx, openGpuTelemetry } from '../src/index.js';
import { KernelCapture, cuptiCandidates } from '../src/capture/capture.js';
import { resolveCaptureOptions } from '../src/capture/options.js';
import { fakeFactory, FakeNative } from './capture-fixtures.js';

const config = { cuptiLibrary: '/opt/fake/libcupti.so', simulator: null };

function errorOf(fn: () => unknown): GpuTelemetryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GpuTelemetryError);
    return e as GpuTelemetryError;
  }
  throw new Error('did not throw');
}

let capture: KernelCapture;
beforeEach(() => {
  FakeNative.reset();
  capture = new KernelCapture(config, fakeFactory);
});
afterEach(async () => {
  const live = capture.active;
  if (live) await live.cancel().catch(() => undefined);
});

describe('capture options', () => {
  it('defaults', () => {
    expect(resolveCaptureOptions(undefined)).toEqual({
      steps: 10,
      startAfterSteps: 0,
      stepRange: null,
      stepDomain: null,
      maxBytes: 64 << 20,
      maxRecords: 1_000_000,
      bufferBytes: 4 << 20,
      timeoutMs: 60_000,
      kinds: { kernels: true, memcpy: true, memset: true, runtimeApi: true, driverApi: false, nvtx: true },
      flushIntervalMs: 100,
      drainTimeoutMs: 1000,
    });
    // A small maxBytes shrinks the default buffer so that four fit.
    expect(resolveCaptureOptions({ maxBytes: 1 << 20 }).bufferBytes).toBe(256 << 10);
  });

  it.each([
    [{ steps: 0 }, 'steps', /options\.steps: must be from 1 to 100000 steps, not 0/],
    [{ steps: 2.5 }, 'steps', /whole number/],
    [{ steps: '5' }, 'steps', /not "5"/],
    [{ startAfterSteps: -1 }, 'startAfterSteps', /from 0 to 1000000/],
    [{ maxBytes: 1000 }, 'maxBytes', /from 1048576 to 4294967296 bytes/],
    [{ maxRecords: 0 }, 'maxRecords', /from 1 to 50000000 records/],
    [{ timeoutMs: 50 }, 'timeoutMs', /from 100 to 3600000 milliseconds/],
    [{ timeoutMs: Infinity }, 'timeoutMs', /not Infinity/],
    [{ bufferBytes: 1024 }, 'bufferBytes', /from 65536/],
    [{ maxBytes: 1 << 20, bufferBytes: 1 << 20 }, 'bufferBytes', /at most half of maxBytes \(524288 bytes\)/],
    [{ bufferBytes: 65537 }, 'bufferBytes', /multiple of 8/],
    [{ stepRange: '' }, 'stepRange', /name of an NVTX range/],
    [{ stepRange: 'x'.repeat(300) }, 'stepRange', /at most 256 characters/],
    [{ stepRange: 'decode', kinds: { nvtx: false } }, 'kinds.nvtx', /must stay on when stepRange is set/],
    [{ kinds: { tensors: true } }, 'kinds.tensors', /unknown record kind/],
    [{ kinds: { kernels: 'yes' } }, 'kinds.kernels', /true or false/],
    [{ kinds: [] }, 'kinds', /must be an object/],
    [
      { kinds: { kernels: false, memcpy: false, memset: false, runtimeApi: false, driverApi: false, nvtx: false } },
      'kinds',
      /nothing would be captured/,
    ],
    [{ stepz: 3 }, 'stepz', /unknown capture option \(allowed: steps, /],
  ])('%j → INVALID_OPTION naming %s', (options, option, message) => {
    const e = errorOf(() => resolveCaptureOptions(options));
    expect(e.code).toBe('INVALID_OPTION');
    expect(e.option).toBe(option);
    expect(e.message).toMatch(message);
  });

  it('documented caps are the enforced ones', () => {
    expect(() => resolveCaptureOptions({ steps: CAPTURE_LIMITS.steps.max })).not.toThrow();
    expect(() => resolveCaptureOptions({ steps: CAPTURE_LIMITS.steps.max + 1 })).toThrow(/steps/);
    expect(() => resolveCaptureOptions({ maxBytes: CAPTURE_LIMITS.maxBytes.max })).not.toThrow();
  });

  it('arm() validates before anything native happens', () => {
    expect(errorOf(() => capture.arm({ steps: -3 })).code).toBe('INVALID_OPTION');
    expect(FakeNative.instances).toHaveLength(0);
  });
});

describe('where the CUPTI library comes from', () => {
  it('simulate and libraries.cupti exclude each other; createKernelCapture validates its options', async () => {
    await expect(openGpuTelemetry({ simulate: 'a100-pcie-2', libraries: { cupti: '/x/libcupti.so' } })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      option: 'simulate',
      message: expect.stringMatching(/the simulator is also the CUPTI library/),
    });
    expect(errorOf(() => createKernelCapture({ simulate: 'a100-pcie-2', libraries: { cupti: '/x' } })).option).toBe('simulate');
    expect(errorOf(() => createKernelCapture({ libraries: { nvml: '/x' } } as never)).option).toBe('libraries.nvml');
    expect(errorOf(() => createKernelCapture({ libraries: { cupti: '' } })).option).toBe('libraries.cupti');
    expect(errorOf(() => createKernelCapture({ sample: 1 } as never)).option).toBe('sample');
    expect(errorOf(() => createKernelCapture({ simulate: 'no-such-scenario' })).code).toBe('INVALID_OPTION');
  });
});

describe('CUPTI library candidates', () => {
  it('explicit path, the simulator, the environment, then the defaults', () => {
    expect(cuptiCandidates({ cuptiLibrary: '/x/libcupti.so.12', simulator: null })).toEqual(['/x/libcupti.so.12']);
    expect(cuptiCandidates({ cuptiLibrary: null, simulator: { libraryPath: '/sim.so', scenarioText: '{}' } })).toEqual(['/sim.so']);
    const saved = process.env.GPU_TELEMETRY_CUPTI_LIB;
    try {
      process.env.GPU_TELEMETRY_CUPTI_LIB = '/env/libcupti.so';
      expect(cuptiCandidates({ cuptiLibrary: null, simulator: null })).toEqual(['/env/libcupti.so']);
      delete process.env.GPU_TELEMETRY_CUPTI_LIB;
      const defaults = cuptiCandidates({ cuptiLibrary: null, simulator: null });
      expect(defaults[0]).toBe('libcupti.so');
      expect(defaults).toContain('libcupti.so.13');
    } finally {
      if (saved === undefined) delete process.env.GPU_TELEMETRY_CUPTI_LIB;
      else process.env.GPU_TELEMETRY_CUPTI_LIB = saved;
    }
  });
});

describe('CaptureHandle', () => {
  it('captures the requested steps, tags records, and leaves nothing enabled', async () => {
    const cap = capture.arm({ steps: 3, maxBytes: 8 << 20, kinds: { driverApi: true } });
    // arm() returns at once: CUPTI is set up on the capture thread.
    expect(cap.state).toBe('starting');
    expect(cap.progress.state).toBe('starting');
    await cap.ready;
    const native = FakeNative.last;
    expect(native.options).toMatchObject({
      cuptiCandidates: ['/opt/fake/libcupti.so'],
      steps: 3,
      maxBytes: 8 << 20,
      bufferBytes: 2 << 20,
      maxRecords: 1_000_000,
      startAfterSteps: 0,
      stepRange: null,
      flushIntervalMs: 100,
      drainTimeoutMs: 1000,
      kinds: { kernels: true, memcpy: true, memset: true, runtimeApi: true, driverApi: true, nvtx: true },
    });
    expect(native.options.simulatorScenario).toBeUndefined();
    expect(cap.id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(cap.state).toBe('capturing');
    expect(capture.active).toBe(cap);
    cap.step();
    expect(cap.progress).toMatchObject({ state: 'capturing', steps: 1, stepsRequested: 3 });
    cap.step();
    cap.step();
    cap.step(); // after the last step: ignored by the native side, harmless
    const t = await cap.done;
    expect(t.meta).toMatchObject({ id: cap.id, reason: 'steps', truncated: false, stepsRequested: 3, stepsCaptured: 3 });
    expect(t.steps).toHaveLength(3);
    expect(t.kernels.map((k) => k.step)).toEqual([0, 1, 2]);
    expect(t.kernels[0].name).toBe('fake_kernel');
    expect(native.enabled).toBe(false);
    expect(native.closed).toBe(true);
    expect(cap.state).toBe('finished');
    expect(cap.progress).toMatchObject({ state: 'finished', steps: 3, records: 6, bytes: 0 });
    expect(capture.active).toBeNull();
    const calls = native.stepCalls;
    cap.step(); // the serving loop keeps calling step(): a no-op now
    expect(native.stepCalls).toBe(calls);
  });

  it('capture.step() reaches the live capture, and is a no-op without one or in stepRange mode', async () => {
    capture.step(); // nothing live: nothing happens
    expect(FakeNative.instances).toHaveLength(0);
    const cap = capture.arm({ steps: 2 });
    await cap.ready;
    capture.step();
    capture.step();
    expect((await cap.done).meta.stepsCaptured).toBe(2);
    const ranged = capture.arm({ steps: 2, stepRange: 'decode_step' });
    await ranged.ready;
    expect(() => capture.step()).not.toThrow();
    expect(FakeNative.last.stepCalls).toBe(0);
    await ranged.cancel();
  });

  it('startAfterSteps: waits for that many boundaries first', async () => {
    const cap = capture.arm({ steps: 2, startAfterSteps: 3 });
    await cap.ready;
    expect(cap.state).toBe('waiting');
    for (let i = 0; i < 5; i++) cap.step();
    const t = await cap.done;
    expect(t.meta.startAfterSteps).toBe(3);
    expect(t.meta.stepsCaptured).toBe(2);
    // step 0 runs from the 3rd boundary to the 4th
    expect(t.steps[0].startNs).toBe(FakeNative.last.boundaries[2]);
  });

  it('a second arm while one is live is CAPTURE_BUSY; after it ends, arming works again', async () => {
    const first = capture.arm({ steps: 1 });
    // Busy from arm() on, while still starting too.
    expect(errorOf(() => capture.arm({ steps: 1 })).code).toBe('CAPTURE_BUSY');
    await first.ready;
    const e = errorOf(() => capture.arm({ steps: 1 }));
    expect(e.code).toBe('CAPTURE_BUSY');
    expect(e.message).toContain(first.id);
    // Another controller in the same process is refused too (CUPTI has one subscriber).
    expect(errorOf(() => new KernelCapture(config, fakeFactory).arm()).code).toBe('CAPTURE_BUSY');
    expect(FakeNative.instances).toHaveLength(1);
    first.step();
    await first.done;
    const second = capture.arm({ steps: 1 });
    await second.ready;
    expect(second.id).not.toBe(first.id);
    second.step();
    expect((await second.done).meta.reason).toBe('steps');
  });

  it('cancel() resolves done with what was captured (truncated), then a new arm works', async () => {
    const cap = capture.arm({ steps: 5 });
    await cap.ready;
    cap.step();
    cap.step();
    const t = await cap.cancel();
    expect(FakeNative.last.stopCalls).toEqual(['cancelled']);
    expect(t.meta).toMatchObject({ reason: 'cancelled', truncated: true, stepsCaptured: 2 });
    expect(FakeNative.last.enabled).toBe(false);
    expect(FakeNative.last.closed).toBe(true);
    expect(await cap.cancel()).toBe(t); // idempotent
    const again = capture.arm({ steps: 1 });
    await again.ready;
    again.step();
    await again.done;
  });

  it('timeoutMs: stop("timeout"), done resolves with a timed-out trace', async () => {
    // The timeout counts from arm(); 1 s leaves room for the step below on a loaded machine.
    const cap = capture.arm({ steps: 5, timeoutMs: 1000 });
    await cap.ready;
    cap.step();
    const t = await cap.done;
    expect(FakeNative.last.stopCalls).toEqual(['timeout']);
    expect(t.meta).toMatchObject({ reason: 'timeout', truncated: true, stepsCaptured: 1 });
    expect(FakeNative.last.closed).toBe(true);
    expect(capture.active).toBeNull();
  });

  it('a timeout while still waiting for startAfterSteps gives an empty trace, not an error', async () => {
    const cap = capture.arm({ steps: 5, startAfterSteps: 100, timeoutMs: 100 });
    await cap.ready;
    const t = await cap.done;
    expect(t.meta).toMatchObject({ reason: 'timeout', stepsCaptured: 0, truncated: true });
    expect(t.kernels).toEqual([]);
  });

  it.each([
    ['CUPTI_BUSY', 'CUPTI_BUSY'],
    ['UNSUPPORTED_CUPTI_VERSION', 'UNSUPPORTED_CUPTI_VERSION'],
    ['LIBRARY_NOT_FOUND', 'LIBRARY_NOT_FOUND'],
    ['SYMBOL_MISSING', 'SYMBOL_MISSING'],
    ['CUPTI_ERROR', 'CUPTI_ERROR'],
    ['INVALID_SCENARIO', 'INVALID_SCENARIO'],
    ['SOMETHING_NEW', 'CUPTI_ERROR'],
  ])('a start failing with %s (on the capture thread) → ready and done reject with %s and the vendor details; nothing stays live', async (nativeCode, code) => {
    FakeNative.nextStart = {
      ok: false,
      code: nativeCode,
      message: 'cuptiSubscribe failed: CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED',
      vendorCode: 39,
      vendorMessage: 'CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED',
      libraryPath: '/opt/fake/libcupti.so',
    };
    const cap = capture.arm({ steps: 1 }); // returns at once
    expect(cap.state).toBe('starting');
    expect(capture.active).toBe(cap);
    const e = await cap.ready.then(
      () => null,
      (err: unknown) => err as GpuTelemetryError,
    );
    expect(e).toBeInstanceOf(GpuTelemetryError);
    expect(e!.code).toBe(code);
    expect(e!.message).toMatch(/^capture\.arm\(\): cuptiSubscribe failed/);
    expect(e!.vendorCode).toBe(39);
    expect(e!.vendorMessage).toBe('CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED');
    expect(e!.libraryPath).toBe('/opt/fake/libcupti.so');
    await expect(cap.done).rejects.toBe(e);
    expect(cap.state).toBe('failed');
    expect(FakeNative.last.closed).toBe(true);
    expect(capture.active).toBeNull();
    FakeNative.nextStart = { ok: true };
    const next = capture.arm({ steps: 1 });
    await next.ready;
    await next.cancel();
  });

  it('a refusal start() knows at once (another capture live elsewhere in the process) still throws from arm()', () => {
    FakeNative.nextRefusal = { ok: false, code: 'CAPTURE_BUSY', message: 'another kernel-trace capture is live in this process' };
    const e = errorOf(() => capture.arm({ steps: 1 }));
    expect(e.code).toBe('CAPTURE_BUSY');
    expect(capture.active).toBeNull();
  });

  it('a stop while the capture is starting takes effect once it has started; done resolves (cancelled)', async () => {
    FakeNative.holdStart = true;
    const cap = capture.arm({ steps: 5 });
    cap.step(); // ignored while starting
    const done = cap.cancel();
    expect(cap.state).toBe('stopping');
    FakeNative.last.finishStart();
    const t = await done;
    expect(t.meta).toMatchObject({ reason: 'cancelled', stepsCaptured: 0 });
    await cap.ready; // settled: the start is over
    expect(capture.active).toBeNull();
  });

  it('an addon without NativeCapture is ADDON_LOAD_FAILED', () => {
    const broken = new KernelCapture(config, () => {
      throw new Error('NativeCapture is missing');
    });
    const e = errorOf(() => broken.arm());
    expect(e.code).toBe('ADDON_LOAD_FAILED');
    expect(broken.active).toBeNull();
  });

  it('a CUPTI error before any record rejects done with CAPTURE_FAILED', async () => {
    FakeNative.forceReason = 'error';
    const cap = capture.arm({ steps: 2, timeoutMs: 100 });
    await cap.ready;
    await expect(cap.done).rejects.toMatchObject({ code: 'CAPTURE_FAILED' });
    expect(cap.state).toBe('failed');
    expect(FakeNative.last.closed).toBe(true);
    expect(capture.active).toBeNull();
  });

  it('stats(): process-wide counters of armed, ended (by outcome), truncated, records and drops', async () => {
    const before = capture.stats();
    const ended = (s: typeof before, outcome: string) => s.ended[outcome] ?? 0;
    // A refused arm counts nothing.
    errorOf(() => capture.arm({ steps: 0 }));
    expect(capture.stats().armed).toBe(before.armed);

    FakeNative.holdStart = true;
    const a = capture.arm({ steps: 1 });
    // Live (busy) while starting, armed once CUPTI is set up.
    expect(capture.stats()).toMatchObject({ active: true, armed: before.armed });
    FakeNative.holdStart = false;
    FakeNative.last.finishStart();
    await a.ready;
    expect(capture.stats()).toMatchObject({ active: true, armed: before.armed + 1 });
    a.step();
    const t = await a.done;
    const cancelled = capture.arm({ steps: 5 });
    await cancelled.ready;
    cancelled.step();
    const tc = await cancelled.cancel();
    FakeNative.forceReason = 'error';
    const failed = capture.arm({ steps: 2, timeoutMs: 100 });
    await failed.ready;
    await expect(failed.done).rejects.toMatchObject({ code: 'CAPTURE_FAILED' });
    // A start that fails on the capture thread is neither armed nor ended.
    FakeNative.nextStart = { ok: false, code: 'CUPTI_BUSY', message: 'held' };
    await expect(capture.arm({ steps: 1 }).done).rejects.toMatchObject({ code: 'CUPTI_BUSY' });
    FakeNative.nextStart = { ok: true, cuptiVersion: 130001 };

    const after = capture.stats();
    expect(after.active).toBe(false);
    expect(after.activeBytes).toBe(0);
    expect(after.armed).toBe(before.armed + 3);
    expect(ended(after, 'steps')).toBe(ended(before, 'steps') + 1);
    expect(ended(after, 'cancelled')).toBe(ended(before, 'cancelled') + 1);
    expect(ended(after, 'failed')).toBe(ended(before, 'failed') + 1);
    expect(after.truncated).toBe(before.truncated + 1); // the cancelled one: 1 of 5 steps
    const kept = (x: typeof t) => x.kernels.length + x.memcpys.length + x.memsets.length + x.apiCalls.length + x.ranges.length;
    expect(after.records).toBe(before.records + kept(t) + kept(tc));
    expect(after.droppedByCupti).toBe(before.droppedByCupti + t.meta.droppedByCupti + tc.meta.droppedByCupti);
    // The same numbers from the package's export (what the exporters read).
    expect(captureStats()).toEqual(after);
  });

  it('step() is refused when steps are counted by NVTX ranges', async () => {
    const cap = capture.arm({ steps: 2, stepRange: 'decode_step' });
    await cap.ready;
    expect(FakeNative.last.options.stepRange).toBe('decode_step');
    expect(errorOf(() => cap.step()).message).toMatch(/counts NVTX ranges named "decode_step"/);
  });

  it('closing the owner ends a live capture with reason "closed"', async () => {
    let closed = false;
    const owned = new KernelCapture(config, fakeFactory, () => closed);
    const cap = owned.arm({ steps: 3 });
    await cap.ready;
    cap.step();
    closed = true;
    owned.closeInstance();
    const t = await cap.done;
    expect(t.meta.reason).toBe('closed');
    expect(errorOf(() => owned.arm()).code).toBe('CLOSED');
  });
});

describe('nvtx from JS', () => {
  it('is free and records nothing without a live capture', async () => {
    expect(nvtx.range('idle', () => 42)).toBe(42);
    await expect(nvtx.range('idle', async () => 'x')).resolves.toBe('x');
    expect(nvtx.push('a')).toBe(0);
    expect(nvtx.pop()).toBe(0);
    expect(nvtx.pop()).toBe(-1);
    nvtx.mark('nothing');
    expect(() => nvtx.range(42 as unknown as string, () => 1)).toThrow(/name must be a string/);
  });

  it('records sync and async ranges, push/pop and marks on the capture clock, tagged with steps', async () => {
    const cap = capture.arm({ steps: 2 });
    await cap.ready;
    nvtx.range('prefill', () => undefined);
    const slow = nvtx.range('async-work', () => new Promise<string>((r) => setTimeout(() => r('done'), 5)));
    expect(nvtx.push('outer')).toBe(0);
    expect(nvtx.push('inner')).toBe(1);
    expect(nvtx.pop()).toBe(1);
    nvtx.mark('checkpoint');
    expect(nvtx.pop()).toBe(0);
    await expect(slow).resolves.toBe('done');
    await expect(nvtx.range('failing', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(() =>
      nvtx.range('throwing', () => {
        throw new Error('sync boom');
      }),
    ).toThrow('sync boom');
    cap.step();
    cap.step();
    const t = await cap.done;
    const js = t.ranges.filter((r) => r.domain === JS_NVTX_DOMAIN);
    expect(js.map((r) => [r.name, r.kind])).toEqual([
      ['prefill', 'range'],
      ['inner', 'range'],
      ['checkpoint', 'mark'],
      ['outer', 'range'],
      ['async-work', 'range'],
      ['failing', 'range'],
      ['throwing', 'range'],
    ]);
    for (const r of js) {
      expect(r.processId).toBe(process.pid);
      expect(r.endNs).toBeGreaterThanOrEqual(r.startNs);
      expect(r.step).toBe(0); // all before the first step() boundary
    }
    const outer = js.find((r) => r.name === 'outer')!;
    const inner = js.find((r) => r.name === 'inner')!;
    expect(inner.startNs).toBeGreaterThan(outer.startNs);
    expect(inner.endNs).toBeLessThan(outer.endNs);
    expect(t.meta.jsRanges).toEqual({ recorded: 7, dropped: 0 });
    // After the capture: free again.
    nvtx.range('after', () => undefined);
    const next = capture.arm({ steps: 1 });
    await next.ready;
    next.step();
    expect((await next.done).ranges).toEqual([]);
  });

  it('a range that outlives its capture is dropped, not mixed into the next', async () => {
    const cap = capture.arm({ steps: 1 });
    await cap.ready;
    nvtx.push('long');
    cap.step();
    await cap.done;
    const next = capture.arm({ steps: 1 });
    await next.ready;
    nvtx.pop();
    next.step();
    expect((await next.done).ranges).toEqual([]);
  });

  it('JS ranges beyond maxRecords are counted as dropped', async () => {
    const cap = capture.arm({ steps: 1, maxRecords: 3 });
    await cap.ready;
    for (let i = 0; i < 5; i++) nvtx.mark(`m${i}`);
    expect(cap.progress.droppedByUs).toBe(2);
    cap.step();
    const t = await cap.done;
    expect(t.meta.jsRanges).toEqual({ recorded: 3, dropped: 2 });
    expect(t.meta.droppedByUs).toBe(2);
    expect(t.meta.truncated).toBe(true);
  });
});

describe('OpenTelemetry', () => {
  class StackContextManager implements ContextManager {
    private current: Context = ROOT_CONTEXT;
    active(): Context {
      return this.current;
    }
    with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
      const prev = this.current;
      this.current = ctx;
      try {
        return fn.call(thisArg, ...args);
      } finally {
        this.current = prev;
      }
    }
    bind<T>(_ctx: Context, target: T): T {
      return target;
    }
    enable(): this {
      return this;
    }
    disable(): this {
      this.current = ROOT_CONTEXT;
      return this;
    }
  }

  interface RecordedSpan {
    name: string;
    ctx: SpanContext;
    parent: SpanContext | undefined;
    attributes: Record<string, unknown>;
    ended: boolean;
    status: unknown;
  }
  const spans: RecordedSpan[] = [];
  let next = 1;
  const tracer: Tracer = {
    startSpan(name, options, ctx) {
      const parent = ctx ? trace.getSpan(ctx)?.spanContext() : undefined;
      const rec: RecordedSpan = {
        name,
        ctx: { traceId: parent?.traceId ?? '0af7651916cd43dd8448eb211c80319c', spanId: (next++).toString(16).padStart(16, '0'), traceFlags: 1 },
        parent,
        attributes: { ...(options?.attributes ?? {}) },
        ended: false,
        status: null,
      };
      spans.push(rec);
      const span: Span = {
        spanContext: () => rec.ctx,
        setAttribute: (k, v) => ((rec.attributes[k] = v), span),
        setAttributes: (a) => (Object.assign(rec.attributes, a), span),
        addEvent: () => span,
        addLink: () => span,
        addLinks: () => span,
        setStatus: (s) => ((rec.status = s), span),
        updateName: () => span,
        end: () => {
          rec.ended = true;
        },
        isRecording: () => !rec.ended,
        recordException: () => undefined,
      };
      return span;
    },
    startActiveSpan: (() => {
      throw new Error('not used');
    }) as Tracer['startActiveSpan'],
  };

  beforeEach(() => {
    context.setGlobalContextManager(new StackContextManager());
    trace.setGlobalTracerProvider({ getTracer: () => tracer });
  });
  afterEach(() => {
    trace.disable();
    context.disable();
  });

  it('puts the active span ids into meta and records a gpu.kernel_capture child span', async () => {
    const request = tracer.startSpan('handle request');
    const cap = context.with(trace.setSpan(context.active(), request), () => capture.arm({ steps: 2 }));
    await cap.ready;
    cap.step();
    cap.step();
    const t = await cap.done;
    const span = spans.find((s) => s.name === 'gpu.kernel_capture')!;
    expect(span.parent).toEqual(request.spanContext());
    expect(t.meta.otel).toEqual({
      traceId: request.spanContext().traceId,
      spanId: request.spanContext().spanId,
      captureSpanId: span.ctx.spanId,
    });
    expect(span.ended).toBe(true);
    expect(span.attributes).toMatchObject({
      'gpu.capture.id': cap.id,
      'gpu.capture.steps_requested': 2,
      'gpu.capture.reason': 'steps',
      'gpu.capture.steps': 2,
      'gpu.capture.truncated': false,
    });
  });

  it('with no active span: the capture span is a root span, meta.otel has its trace and spanId null', async () => {
    const cap = capture.arm({ steps: 1 });
    await cap.ready; // a step before the capture is armed is ignored
    cap.step();
    const t = await cap.done;
    const span = spans.filter((s) => s.name === 'gpu.kernel_capture').at(-1)!;
    expect(span.parent ?? null).toBeNull();
    expect(t.meta.otel).toEqual({ traceId: span.ctx.traceId, spanId: null, captureSpanId: span.ctx.spanId });
  });

  it('a failed start ends the span with an error status', async () => {
    FakeNative.nextStart = { ok: false, code: 'CUPTI_BUSY', message: 'another profiler holds CUPTI' };
    await expect(capture.arm().done).rejects.toThrow(/another profiler/);
    const span = spans[spans.length - 1];
    expect(span.name).toBe('gpu.kernel_capture');
    expect(span.ended).toBe(true);
    expect(span.status).toMatchObject({ code: 2, message: expect.stringMatching(/^CUPTI_BUSY/) });
  });
});

describe('without an OpenTelemetry SDK', () => {
  it('meta.otel is null', async () => {
    const cap = capture.arm({ steps: 1 });
    await cap.ready;
    cap.step();
    expect((await cap.done).meta.otel).toBeNull();
  });
});
