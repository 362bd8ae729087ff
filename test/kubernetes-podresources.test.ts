/**
 * The PodResources client against a fake kubelet on a unix socket: good replies, and every way the
 * socket can let it down (missing, not a socket, hung, garbage, over-size, wrong service).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyCallError, listPodResources, PodResourcesError } from '../src/kubernetes/podresources.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { encodeReply, GARBAGE_MESSAGE, gpuPod, startFakeKubelet, tempSocketPath, type FakeKubelet, type ReplyPod } from './fake-kubelet.js';

const opts = { timeoutMs: 1000, maxReceiveBytes: 16 * 1024 * 1024 };
const UUID0 = 'GPU-9e5651b0-0000-5349-4d00-51b0ef953636';
let servers: FakeKubelet[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function fake(...args: Parameters<typeof startFakeKubelet>) {
  const s = await startFakeKubelet(...args);
  servers.push(s);
  return s;
}
async function failure(p: Promise<unknown>): Promise<PodResourcesError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PodResourcesError);
    return e as PodResourcesError;
  }
  throw new Error('expected a failure');
}

/** A reply of about `bytes` bytes: many pods with a NIC device each (not GPUs) plus one GPU pod. */
function bigReply(bytes: number): ReplyPod[] {
  const pods: ReplyPod[] = [gpuPod('llm-0', [UUID0])];
  const id = 'x'.repeat(200);
  const perPod = 255; // bytes per pod below, encoded
  for (let i = 0; pods.length * perPod < bytes; i++) {
    pods.push({ name: `batch-${i}`, namespace: 'etl', containers: [{ name: 'worker', devices: [{ resourceName: 'example.com/nic', deviceIds: [`${id}-${i}`] }] }] });
  }
  return pods;
}

describe('listPodResources', () => {
  it('reads the pods and their devices', async () => {
    const k = await fake({ kind: 'reply', pods: [gpuPod('llm-0', [UUID0]), { name: 'cpu-only', namespace: 'default', containers: [{ name: 'c', devices: [] }] }] });
    const { list, ignored, bytes } = await listPodResources(k.socket, opts);
    expect(ignored).toBe(0);
    expect(bytes).toBeGreaterThan(50);
    expect(list.pods).toEqual([{ name: 'llm-0', namespace: 'ml', containers: [{ name: 'main', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: [UUID0] }] }] }]);
  });

  it('an empty reply is an empty list, not an error', async () => {
    const k = await fake({ kind: 'reply', pods: [] });
    expect((await listPodResources(k.socket, opts)).list.pods).toEqual([]);
  });

  it("a 10 MiB reply is read whole (gRPC's default 4 MiB limit would refuse it)", async () => {
    const pods = bigReply(10 * 1024 * 1024);
    const k = await fake({ kind: 'raw', bytes: encodeReply(pods) }); // encoded up front: only the client is timed
    const t0 = performance.now();
    // The longest the event loop is held while the reply arrives and is decoded: a scrape would wait that long.
    let longestGapMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
    }, 1);
    const { list, bytes, decodeMs } = await listPodResources(k.socket, { ...opts, timeoutMs: 30_000 });
    clearInterval(ticker);
    const ms = performance.now() - t0;
    expect(bytes).toBeGreaterThan(10 * 1024 * 1024 - 1024);
    expect(bytes).toBeLessThan(16 * 1024 * 1024);
    // only the GPU pod is kept: the NIC pods are skipped undecoded
    expect(list.pods.map((p) => p.name)).toEqual(['llm-0']);
    console.log(
      `10 MiB reply (${pods.length} pods, ${bytes} bytes): ${ms.toFixed(0)} ms for the call, ` +
        `decode ${decodeMs.toFixed(0)} ms in slices, longest event-loop gap ${longestGapMs.toFixed(0)} ms`,
    );
  });

  it('a reply over maxReceiveBytes is REPLY_TOO_LARGE', async () => {
    const k = await fake({ kind: 'reply', pods: bigReply(2 * 1024 * 1024) });
    const e = await failure(listPodResources(k.socket, { ...opts, maxReceiveBytes: 1024 * 1024 }));
    expect(e.code).toBe('REPLY_TOO_LARGE');
  });

  it('a missing socket is SOCKET_MISSING', async () => {
    const e = await failure(listPodResources(path.join(path.dirname(tempSocketPath()), 'nope.sock'), opts));
    expect(e.code).toBe('SOCKET_MISSING');
    expect(e.message).toMatch(/no kubelet pod-resources socket/);
  });

  it('a regular file is NOT_A_SOCKET', async () => {
    const file = path.join(path.dirname(tempSocketPath()), 'file');
    fs.writeFileSync(file, 'x');
    expect((await failure(listPodResources(file, opts))).code).toBe('NOT_A_SOCKET');
  });

  it('a socket nobody listens on (a dead kubelet left it) is UNAVAILABLE', async () => {
    const socket = tempSocketPath();
    // bound but never listening: connect() is refused
    execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', socket]);
    expect(fs.statSync(socket).isSocket()).toBe(true);
    const e = await failure(listPodResources(socket, opts));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it('a hung gRPC server is TIMEOUT at the deadline', async () => {
    const k = await fake({ kind: 'hang' });
    // a call that outlived its deadline much would make this test time out
    const e = await failure(listPodResources(k.socket, { ...opts, timeoutMs: 300 }));
    expect(e.code).toBe('TIMEOUT');
    expect(e.message).toBe('no reply within 300 ms');
  });

  it('a socket that accepts and never speaks is TIMEOUT', async () => {
    const k = await fake({ kind: 'silent-socket' });
    const e = await failure(listPodResources(k.socket, { ...opts, timeoutMs: 300 }));
    expect(e.code).toBe('TIMEOUT');
  });

  it('garbage bytes on the socket (not HTTP/2) are BAD_REPLY, with the reason', async () => {
    const k = await fake({ kind: 'garbage-socket' });
    const e = await failure(listPodResources(k.socket, opts));
    expect(e.code).toBe('BAD_REPLY');
    expect(e.message).toMatch(/does not speak gRPC/);
  });

  it('a gRPC reply that is not a PodResources message is BAD_REPLY', async () => {
    const k = await fake({ kind: 'raw', bytes: GARBAGE_MESSAGE });
    const e = await failure(listPodResources(k.socket, opts));
    expect(e.code).toBe('BAD_REPLY');
  });

  it('a server without the service is UNIMPLEMENTED', async () => {
    const k = await fake({ kind: 'status', code: grpc.status.UNIMPLEMENTED, details: 'unknown service v1.PodResourcesLister' });
    expect((await failure(listPodResources(k.socket, opts))).code).toBe('UNIMPLEMENTED');
  });

  it('a server that refuses is PERMISSION_DENIED', async () => {
    const k = await fake({ kind: 'status', code: grpc.status.PERMISSION_DENIED, details: 'no' });
    expect((await failure(listPodResources(k.socket, opts))).code).toBe('PERMISSION_DENIED');
  });
});

describe('permission denied, for real', () => {
  // The kubelet's socket is root's; a non-root exporter cannot connect. Run the client as nobody
  // (this needs root to switch to, as the CI machines are) against a root-owned 0700 socket.
  it.skipIf(process.getuid?.() !== 0)('a non-root process on the root-owned socket gets PERMISSION_DENIED', async () => {
    const k = await fake({ kind: 'reply', pods: [] });
    fs.chmodSync(path.dirname(k.socket), 0o755);
    fs.chmodSync(k.socket, 0o700);
    const script = `
      import { listPodResources } from ${JSON.stringify(pathToFileURL(path.join(PACKAGE_ROOT, 'dist', 'kubernetes', 'podresources.js')).href)};
      try { await listPodResources(process.argv[1], { timeoutMs: 2000, maxReceiveBytes: 1 << 20 }); console.log('OK'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, k.socket], { uid: 65534, gid: 65534, encoding: 'utf8' });
    const r = JSON.parse(out.trim()) as { code: string; message: string };
    expect(r.code).toBe('PERMISSION_DENIED');
    expect(r.message).toMatch(/EACCES/);
    // and the socket's directory closed to others: the path cannot even be looked at
    fs.chmodSync(path.dirname(k.socket), 0o700);
    const r2 = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, k.socket], { uid: 65534, gid: 65534, encoding: 'utf8' }).trim());
    expect(r2.code).toBe('PERMISSION_DENIED');
  });
});

describe('classifyCallError', () => {
  it('maps a connect EACCES (a non-root process on the root-owned socket) to PERMISSION_DENIED', () => {
    const e = classifyCallError({ code: grpc.status.UNAVAILABLE, details: 'No connection established. Last error: Error: connect EACCES /var/lib/kubelet/pod-resources/kubelet.sock' }, 1000, 1);
    expect(e.code).toBe('PERMISSION_DENIED');
  });
  it('keeps unknown statuses as ERROR with the status number', () => {
    const e = classifyCallError({ code: grpc.status.ABORTED, details: 'x' }, 1000, 1);
    expect(e.code).toBe('ERROR');
    expect(e.grpcCode).toBe(grpc.status.ABORTED);
  });
});
