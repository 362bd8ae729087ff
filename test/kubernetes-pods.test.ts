/**
 * KubernetesPods: options validation, the cached answer readers get, status and its changes,
 * keeping the last good answer for maxStaleMs, and against a real (fake) kubelet socket.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GpuTelemetryError } from '../src/errors.js';
import { createKubernetesPods, type KubernetesPods, type KubernetesStatus } from '../src/kubernetes/pods.js';
import { PodResourcesError, type ListResult } from '../src/kubernetes/podresources.js';
import { resolveKubernetesOptions } from '../src/kubernetes/options.js';
import type { PodResourcesList } from '../src/kubernetes/mapping.js';
import { gpuPod, startFakeKubelet } from './fake-kubelet.js';

const U = (i: number) => `GPU-9e5651b0-0000-5349-4d00-51b0ef95363${i}`;
const gpus = Object.freeze([0, 1].map((i) => Object.freeze({ index: i, uuid: U(i), pciBusId: `00000000:1${i}:00.0` })));
const one: PodResourcesList = { pods: [{ name: 'llm-0', namespace: 'ml', containers: [{ name: 'server', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: [U(0)] }] }] }] };
const result = (list: PodResourcesList): ListResult => ({ list, ignored: 0, bytes: 100, decodeMs: 0.1 });

const open: KubernetesPods[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});
function make(list: () => Promise<ListResult>, options: Parameters<typeof createKubernetesPods>[0] = {}, now?: () => number) {
  const p = createKubernetesPods({ podResourcesSocket: '/nonexistent/kubelet.sock', ...options }, { list, readMinors: async () => [], ...(now ? { now } : {}) });
  open.push(p);
  return p;
}

describe('options', () => {
  it('defaults', () => {
    expect(resolveKubernetesOptions(undefined)).toEqual({
      podResourcesSocket: '/var/lib/kubelet/pod-resources/kubelet.sock',
      refreshMs: 5000,
      timeoutMs: 2000,
      maxReplyBytes: 16 * 1024 * 1024,
      maxStaleMs: 15000,
      resourceNames: [],
      procRoot: '/proc',
    });
  });
  it.each([
    [{ refreshMs: 10 }, 'refreshMs'],
    [{ refreshMs: 1.5e3 + 0.5 }, 'refreshMs'],
    [{ timeoutMs: '1000' }, 'timeoutMs'],
    [{ podResourcesSocket: 'relative.sock' }, 'podResourcesSocket'],
    [{ podResourcesSocket: '/a\0b' }, 'podResourcesSocket'],
    [{ maxReplyBytes: 1 }, 'maxReplyBytes'],
    [{ maxStaleMs: -1 }, 'maxStaleMs'],
    [{ resourceNames: ['nope'] }, 'resourceNames[0]'],
    [{ resourceNames: 'example.com/gpu' }, 'resourceNames'],
    [{ socket: '/x' }, 'socket'],
  ])('%j → INVALID_OPTION naming %s', (o, option) => {
    try {
      resolveKubernetesOptions(o, 'kubernetes');
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(GpuTelemetryError);
      expect((e as GpuTelemetryError).code).toBe('INVALID_OPTION');
      expect((e as GpuTelemetryError).option).toBe(`kubernetes.${option}`);
    }
  });
  it('refuses a non-object', () => {
    expect(() => createKubernetesPods('x' as never)).toThrow(GpuTelemetryError);
    expect(() => createKubernetesPods(new Date() as never)).toThrow(/must be an object/);
  });
});

describe('KubernetesPods', () => {
  it('answers from the cache: devices(gpus)[i] and a mapping computed once per answer', async () => {
    let calls = 0;
    const p = make(async () => {
      calls++;
      return result(one);
    });
    expect(p.status().state).toBe('starting');
    await p.ready();
    expect(p.status()).toMatchObject({ state: 'up', code: null, pods: 1, calls: 1, failures: 0, replyBytes: 100 });
    expect(p.devices(gpus).map((d) => d.exclusive?.pod ?? null)).toEqual(['llm-0', null]);
    expect(p.map(gpus)).toBe(p.map(gpus)); // cached
    expect(calls).toBe(1); // readers never call the kubelet
  });

  it('a failure is a status with a code, and the last answer labels for maxStaleMs only', async () => {
    let t = 1_000_000;
    let fail: PodResourcesError | null = null;
    const p = make(
      async () => {
        if (fail) throw fail;
        return result(one);
      },
      { refreshMs: 1000, maxStaleMs: 3000 },
      () => t,
    );
    await p.ready();
    const seen: KubernetesStatus[] = [];
    p.on('status', (s) => seen.push(s));
    fail = new PodResourcesError('TIMEOUT', 'no reply within 2000 ms');
    t += 1000;
    await p.refresh();
    expect(p.status()).toMatchObject({ state: 'down', code: 'TIMEOUT', reason: 'no reply within 2000 ms', failures: 1 });
    expect(p.map(gpus)?.gpus[0].exclusive?.pod).toBe('llm-0'); // still within maxStaleMs
    t += 2000; // 3000 ms since the last answer
    expect(p.map(gpus)).toBeNull(); // older than maxStaleMs: no labels
    expect(p.devices(gpus)[0]).toMatchObject({ containers: [], exclusive: null });
    await p.refresh(); // same code again: no new status event
    fail = new PodResourcesError('SOCKET_MISSING', 'gone');
    await p.refresh();
    fail = null;
    await p.refresh();
    expect(seen.map((s) => [s.state, s.code])).toEqual([
      ['down', 'TIMEOUT'],
      ['down', 'SOCKET_MISSING'],
      ['up', null],
    ]);
    expect(p.map(gpus)?.gpus[0].exclusive?.pod).toBe('llm-0');
  });

  it('maxStaleMs 0 drops labels at the first failure', async () => {
    let fail = false;
    const p = make(async () => {
      if (fail) throw new PodResourcesError('UNAVAILABLE', 'x');
      return result(one);
    }, { maxStaleMs: 0 });
    await p.ready();
    fail = true;
    await p.refresh();
    expect(p.map(gpus)).toBeNull();
  });

  it('a non-PodResourcesError from the list function is ERROR, not a crash', async () => {
    const p = make(async () => {
      throw new TypeError('boom');
    });
    await p.ready();
    expect(p.status()).toMatchObject({ state: 'down', code: 'ERROR', reason: 'boom' });
  });

  it('concurrent refreshes share one call', async () => {
    let calls = 0;
    let release!: () => void;
    const p = make(async () => {
      calls++;
      await new Promise<void>((r) => (release = r));
      return result(one);
    });
    const a = p.refresh(); // joins the first call, started at creation
    const b = p.refresh();
    expect(a).toBe(b);
    await vi.waitFor(() => expect(calls).toBe(1));
    release();
    await a;
    expect(calls).toBe(1);
  });

  it('close() stops it: status closed, later refreshes do nothing', async () => {
    let calls = 0;
    const p = make(async () => {
      calls++;
      return result(one);
    });
    await p.ready();
    p.close();
    p.close();
    await p.refresh();
    expect(calls).toBe(1);
    expect(p.status().state).toBe('closed');
  });

  it('close() ends a call stuck on a hung kubelet at once, not at its deadline', async () => {
    const k = await startFakeKubelet({ kind: 'hang' });
    try {
      const p = createKubernetesPods({ podResourcesSocket: k.socket, timeoutMs: 60_000 });
      open.push(p);
      await vi.waitFor(() => expect(k.calls()).toBe(1), { timeout: 10_000 });
      p.close();
      await p.ready(); // the first call has ended: this test would time out otherwise
      expect(p.status().state).toBe('closed');
    } finally {
      await k.close();
    }
  }, 20_000);

  it('against a fake kubelet socket: up, then the kubelet hangs: TIMEOUT', async () => {
    const k = await startFakeKubelet({ kind: 'reply', pods: [gpuPod('llm-0', [U(1)])] });
    try {
      const p = createKubernetesPods({ podResourcesSocket: k.socket, timeoutMs: 300, refreshMs: 60_000 });
      open.push(p);
      await p.ready();
      expect(p.status()).toMatchObject({ state: 'up', pods: 1 });
      expect(p.devices(gpus)[1].exclusive).toEqual({ namespace: 'ml', pod: 'llm-0', container: 'main' });
      k.setBehaviour({ kind: 'hang' });
      await p.refresh();
      expect(p.status()).toMatchObject({ state: 'down', code: 'TIMEOUT' });
    } finally {
      await k.close();
    }
  });
});
