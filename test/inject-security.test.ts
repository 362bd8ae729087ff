/**
 * The injection library's control socket under attack: another user (the 0700 folder, then
 * SO_PEERCRED when the folder's mode was loosened), unsafe socket folders, and garbage, oversize and
 * malformed messages. The target must answer each with an error (and a log line), never crash, and
 * still capture afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { armProcess, GpuTelemetryError } from '../src/index.js';
import { FRAME, FrameDecoder, HEADER_BYTES, MAGIC, MAX_REQUEST_BYTES, decodeJson, encodeFrame } from '../src/inject/protocol.js';
import { waitFor } from './helpers.js';
import { canSwitchUid, killAllTargets, makeBench, RawClient, socketOf, startTarget, type Bench, type Target } from './inject-helpers.js';

let bench: Bench;
beforeAll(() => {
  bench = makeBench();
  process.env.XDG_RUNTIME_DIR = bench.xdg;
});
afterEach(async () => {
  vi.restoreAllMocks();
  await killAllTargets();
});
afterAll(() => bench.cleanup());

/** Still alive and serving: the program answers, the socket says hello, and it can be captured. */
async function expectHealthy(t: Target): Promise<void> {
  expect(t.child.exitCode).toBeNull();
  expect(await t.ask('state', 'STATE')).toBe('STATE subscribed=0 kinds=');
  const c = await RawClient.connect(socketOf(bench.xdg, t.pid));
  c.json({ op: 'hello' });
  expect(await c.next('hello')).toMatchObject({ pid: t.pid, state: 'dormant' });
  c.close();
  const trace = await armProcess(t.pid, { steps: 2, stepRange: 'decode_step' }).done;
  expect(trace.meta.stepsCaptured).toBe(2);
}

const uidSkip = canSwitchUid();
const OTHER_UID = 65534; // nobody: the target
const THIRD_UID = 65533; // a user who is neither the target's nor root

/**
 * Runs a tiny Node client as `uid`: connects to `socketPath` and reports the connection error or
 * what the library said (it answers a refused peer at once, before any request).
 */
function clientAs(uid: number, socketPath: string): { code: string | null; replies: Record<string, unknown>[] } {
  const script = `
    const net = require('node:net');
    const s = net.createConnection({ path: ${JSON.stringify(socketPath)} });
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', (e) => { console.log(JSON.stringify({ code: e.code, data: Buffer.concat(chunks).toString('base64') })); process.exit(0); });
    s.on('close', () => { console.log(JSON.stringify({ code: null, data: Buffer.concat(chunks).toString('base64') })); process.exit(0); });
    setTimeout(() => { console.log(JSON.stringify({ code: 'TIMEOUT', data: '' })); process.exit(0); }, 5000);`;
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', process.execPath, '-e', script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
    cwd: '/',
  });
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { code: string | null; data: string };
  const replies: Record<string, unknown>[] = [];
  for (const f of new FrameDecoder().push(Buffer.from(out.data, 'base64'))) if (f.type === FRAME.json) replies.push(decodeJson(f.payload));
  return { code: out.code, replies };
}


describe.skipIf(uidSkip !== null)(`another user ${uidSkip ? `(skipped: ${uidSkip})` : ''}`, () => {
  it('is refused: by the 0700 folder, and by SO_PEERCRED when the folder was opened up; root may arm', async () => {
    const xdg = path.join(bench.dir, 'xdg-nobody');
    fs.mkdirSync(xdg, { mode: 0o700 });
    fs.chownSync(xdg, OTHER_UID, OTHER_UID);
    const t = await startTarget(bench, { uid: OTHER_UID, env: { XDG_RUNTIME_DIR: xdg } });
    const socket = path.join(xdg, 'gpu-telemetry', `${t.pid}.sock`);
    const st = fs.statSync(path.join(xdg, 'gpu-telemetry'));
    expect([st.uid, st.mode & 0o777]).toEqual([OTHER_UID, 0o700]);
    expect(fs.statSync(socket).uid).toBe(OTHER_UID);

    // Root may arm another user's process (it finds the socket through the target's environment).
    const trace = await armProcess(t.pid, { steps: 2, stepRange: 'decode_step' }).done;
    expect(trace.meta).toMatchObject({ stepsCaptured: 2, pid: t.pid });

    // A third user cannot even reach the socket.
    expect(clientAs(THIRD_UID, socket).code).toBe('EACCES');
    // This package refuses before trying (as that user).
    vi.spyOn(process, 'geteuid').mockReturnValue(THIRD_UID);
    expect(() => armProcess(t.pid, { steps: 1, stepRange: 'decode_step' })).toThrow(
      expect.objectContaining({ code: 'NO_PERMISSION', message: expect.stringMatching(/only that user or root may arm it/) }),
    );
    vi.restoreAllMocks();

    // Someone opens the folder and the socket up: the library still checks who connects.
    fs.chmodSync(path.join(xdg, 'gpu-telemetry'), 0o755);
    fs.chmodSync(xdg, 0o755);
    fs.chmodSync(socket, 0o777);
    const r = clientAs(THIRD_UID, socket);
    expect(r.replies).toEqual([expect.objectContaining({ op: 'error', code: 'PERMISSION_DENIED' })]);
    await waitFor(() => t.stderr().includes(`uid ${THIRD_UID}: only uid ${OTHER_UID} or root may arm this process`));
    // And a client refuses a socket in a folder others can get into.
    expect(() => armProcess(t.pid, { steps: 1, stepRange: 'decode_step' })).toThrow(
      expect.objectContaining({ code: 'NO_PERMISSION', message: expect.stringMatching(/has mode 0755, not 0700/) }),
    );
    expect(t.child.exitCode).toBeNull();
  });
});

describe('unsafe socket folders: the library stays dormant without a socket, the process runs on', () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['group/other access', (dir) => fs.mkdirSync(dir, { mode: 0o755 }), /has mode 0755: it must be 0700/],
    ['a symlink', (dir) => fs.symlinkSync(fs.mkdtempSync(path.join(bench.dir, 'elsewhere-')), dir), /must be a directory, not a symlink/],
  ];
  if (uidSkip === null) {
    cases.push(['owned by another user', (dir) => {
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.chownSync(dir, OTHER_UID, OTHER_UID);
    }, new RegExp(`belongs to uid ${OTHER_UID}`)]);
  }
  it.each(cases)('%s', async (_name, make, message) => {
    const xdg = fs.mkdtempSync(path.join(bench.dir, 'xdg-unsafe-'));
    fs.chmodSync(xdg, 0o755);
    make(path.join(xdg, 'gpu-telemetry'));
    const t = await startTarget(bench, { env: { XDG_RUNTIME_DIR: xdg } });
    await waitFor(() => /staying dormant without a control socket/.test(t.stderr()));
    expect(t.stderr()).toMatch(message);
    expect(fs.existsSync(path.join(xdg, 'gpu-telemetry', `${t.pid}.sock`))).toBe(false);
    expect(await t.ask('state', 'STATE')).toBe('STATE subscribed=0 kinds=');
  });
});

describe('hostile messages on the socket: an error reply, a log line, the target unharmed', () => {
  it('garbage, a wrong version, an oversize frame: error and hang up', async () => {
    const t = await startTarget(bench);
    const sock = socketOf(bench.xdg, t.pid);
    const garbage = await RawClient.connect(sock);
    garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await garbage.next('error')).toMatchObject({ code: 'BAD_FRAME' });
    await waitFor(() => garbage.closed);

    const v2 = await RawClient.connect(sock);
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header);
    header[4] = 2;
    header[5] = FRAME.json;
    v2.write(Buffer.concat([header, Buffer.from('{}')]));
    expect(await v2.next('error')).toMatchObject({ code: 'UNSUPPORTED_VERSION', supported: [1] });
    await waitFor(() => v2.closed);

    const oversize = await RawClient.connect(sock);
    const big = encodeFrame(FRAME.json, Buffer.alloc(0));
    big.writeUInt32LE(MAX_REQUEST_BYTES + 1, 8);
    oversize.write(big);
    expect(await oversize.next('error')).toMatchObject({ code: 'OVERSIZE' });
    await waitFor(() => oversize.closed);
    const huge = await RawClient.connect(sock);
    big.writeUInt32LE(0xffffffff, 8);
    huge.write(big);
    expect(await huge.next('error')).toMatchObject({ code: 'OVERSIZE' });

    await waitFor(() => /not a gpu-telemetry frame/.test(t.stderr()) && /frame larger than the limit/.test(t.stderr()));
    await expectHealthy(t);
  });

  it('malformed JSON and bad requests: error, and the connection stays usable', async () => {
    const t = await startTarget(bench);
    const c = await RawClient.connect(socketOf(bench.xdg, t.pid));
    const send = async (payload: string | Buffer, type: number = FRAME.json) => {
      const from = c.messages.length;
      c.frame(type, Buffer.isBuffer(payload) ? payload : Buffer.from(payload));
      return waitFor(() => c.messages[from]);
    };
    expect(await send('{"op":')).toMatchObject({ code: 'BAD_JSON' });
    expect(await send('['.repeat(5000))).toMatchObject({ code: 'BAD_JSON', message: expect.stringMatching(/nested too deeply/) });
    expect(await send('"just a string"')).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await send('{"op":"format c:"}')).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await send('{"op":"arm","stepRange":"s","steps":-1}')).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/steps must be/) });
    expect(await send('{"op":"arm","durationMs":5,"maxBytes":1e300}')).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await send('{"op":"arm","durationMs":5,"__proto__":1}')).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/unknown member/) });
    expect(await send('{"op":"stop"}')).toMatchObject({ code: 'NOT_OWNER' });
    expect(await send(Buffer.alloc(16), FRAME.columns)).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await send('{"op":"hello"}')).toMatchObject({ op: 'hello', pid: t.pid });
    expect(c.closed).toBe(false);
    c.close();
    await expectHealthy(t);
  });

  it('random bytes, many connections at once: the target answers and lives (and rate-limits its log)', async () => {
    const t = await startTarget(bench);
    const sock = socketOf(bench.xdg, t.pid);
    // More connections than it serves: the ninth is told so.
    const many = await Promise.all(Array.from({ length: 9 }, () => RawClient.connect(sock)));
    await waitFor(() => many.some((c) => c.messages.some((m) => m.code === 'TOO_MANY_CONNECTIONS')));
    for (const c of many) c.close();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 256 }), fc.boolean(), async (bytes, framed) => {
        const c = await RawClient.connect(sock);
        c.write(framed ? encodeFrame(FRAME.json, Buffer.from(bytes)) : Buffer.from(bytes));
        if (framed || bytes[0] !== MAGIC[0]) await c.next('error');
        c.close();
      }),
      { numRuns: 60, seed: 1501 },
    );
    await waitFor(() => /messages suppressed/.test(t.stderr()) || (t.stderr().match(/\n/g) ?? []).length >= 20);
    await expectHealthy(t);
  });

  it('a client that sends half a frame, or hangs up mid-capture, does not wedge the target', async () => {
    const t = await startTarget(bench);
    const sock = socketOf(bench.xdg, t.pid);
    const half = await RawClient.connect(sock);
    half.write(encodeFrame(FRAME.json, Buffer.from('{"op":"hello"}')).subarray(0, 15));
    half.close();
    // The owner of a live capture hangs up: the capture stops, nothing stays enabled.
    const owner = await RawClient.connect(sock);
    owner.json({ op: 'arm', steps: 100000, stepRange: 'decode_step' });
    await owner.next('started');
    owner.close();
    await waitFor(() => /hung up: the capture stops/.test(t.stderr()) && /capture ended: cancelled/.test(t.stderr()));
    await expectHealthy(t);
  });
});

it('the library exports only its entry points', () => {
  const out = execFileSync('nm', ['-D', '--defined-only', bench.inject], { encoding: 'utf8' });
  const names = out
    .trim()
    .split('\n')
    .map((l) => l.split(' ').pop())
    .sort();
  expect(names).toEqual(['InitializeInjection', 'gpu_telemetry_inject_protocol_version']);
  const needed = execFileSync('readelf', ['-d', bench.inject], { encoding: 'utf8' });
  expect(needed).not.toMatch(/libcupti|libcuda|libnode|libnvidia/);
  expect(needed).toMatch(/NODELETE/);
});

it('GpuTelemetryError codes of the injection client', () => {
  // (a compile-time list: keeps the README's error table and the union in step)
  const codes: GpuTelemetryError['code'][] = ['TARGET_NOT_FOUND', 'NOT_INJECTED', 'TARGET_EXITED', 'PROTOCOL_ERROR', 'NO_PERMISSION'];
  expect(codes).toHaveLength(5);
});
