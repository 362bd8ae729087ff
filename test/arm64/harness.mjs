/**
 * Shared by the arm64 test subset (test/arm64/*.test.mjs), which scripts/test-arm64.mjs runs with
 * Node for arm64 under qemu-user against the built dist/ and prebuilds/linux-arm64/. Plain Node
 * (node:test, node:assert): vitest's bundler ships per-architecture native packages.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = path.join(ROOT, 'dist');
export const CLI = path.join(DIST, 'cli.js');

/** The architecture these tests must run as (the runner says; arm64 unless --native). */
export const EXPECTED_ARCH = process.env.GPU_TELEMETRY_TEST_ARCH || 'arm64';

/** The package as a user imports it, from dist/. */
export const importPackage = () => import(path.join(DIST, 'index.js'));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns something other than undefined/false (under qemu: be patient). */
export async function waitFor(check, timeoutMs = 120_000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}

/** The files this process has mapped (from /proc/self/maps; qemu-user shows the guest's). */
export function mappedFiles() {
  const files = new Set();
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const i = line.indexOf('/');
    if (i >= 0) files.add(line.slice(i).replace(/ \(deleted\)$/, ''));
  }
  return [...files];
}

/**
 * Starts this same Node (the arm64 one) as a child: through qemu-user when the runner says so
 * (GPU_TELEMETRY_QEMU: without binfmt_misc an arm64 binary cannot be exec'd directly).
 */
export function spawnNode(args, options = {}) {
  const qemu = process.env.GPU_TELEMETRY_QEMU;
  const [cmd, argv] = qemu ? [qemu, [process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  child.out = '';
  child.err = '';
  child.stdout.on('data', (c) => (child.out += c.toString()));
  child.stderr.on('data', (c) => (child.err += c.toString()));
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

/** Runs `node args…` to completion: { code, out, err }. */
export async function runNode(args, options = {}) {
  const child = spawnNode(args, options);
  const { code, signal } = await child.exited;
  return { code, signal, out: child.out, err: child.err };
}

/** One value of a Prometheus text exposition: the first sample of `name` whose labels contain `labels`. */
export function metricValue(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}
