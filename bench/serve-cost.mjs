#!/usr/bin/env node
/**
 * What `gpu-telemetry serve` costs when left running: 8 simulated GPUs sampled every second and
 * /metrics scraped every second (as a Prometheus with a 1 s scrape interval would), for --seconds
 * (default 300). Prints the process's CPU share of one core after a warm-up (its own utime + stime
 * from /proc, so other load on the machine does not count), and its RSS at the end and at peak.
 * Goals (issue #14): ≤ 1 % of a core, ≤ 64 MiB RSS after 5 minutes.
 *
 *   node bench/serve-cost.mjs [--seconds 300] [--warmup 60] [--names dcgm|default] [--root DIR]
 *
 * --root runs another checkout's dist/ (to compare two builds side by side in one run).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ROOT = path.resolve(arg('root', path.join(path.dirname(fileURLToPath(import.meta.url)), '..')));
const seconds = Number(arg('seconds', 300));
const warmup = Number(arg('warmup', Math.min(60, seconds / 4)));
const names = arg('names', 'default');
const HZ = 100; // /proc/<pid>/stat counts CPU time in clock ticks (USER_HZ, 100 on Linux)

function procStat(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { cpuTicks: Number(fields[11]) + Number(fields[12]), rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'serve', '--simulate', 'h100-sxm-8', '--interval-ms', '1000', '--port', '0', '--names', names, '--no-kubernetes'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (b) => {
    out += b;
    const m = /serving (http:\/\/\S+\/metrics)/.exec(out);
    if (m) resolve(m[1]);
  });
  child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${out}`)));
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const start = Date.now();
let at0 = null;
let failed = 0;
let scrapes = 0;
for (let s = 1; s <= seconds; s++) {
  await sleep(start + s * 1000 - Date.now());
  try {
    const res = await fetch(url);
    const body = await res.text();
    if (res.status !== 200 || !body.includes('gpu_telemetry_up 1')) failed++;
  } catch {
    failed++;
  }
  scrapes++;
  if (s === warmup) at0 = { t: process.hrtime.bigint(), ...procStat(child.pid) };
}
const at1 = { t: process.hrtime.bigint(), ...procStat(child.pid) };
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
const wallS = Number(at1.t - at0.t) / 1e9;
const cpuS = (at1.cpuTicks - at0.cpuTicks) / HZ;
const share = (cpuS / wallS) * 100;
console.log(
  `serve (${path.relative(process.cwd(), ROOT) || '.'}, names ${names}): ${scrapes} scrapes, ${failed} failed; ` +
    `CPU ${share.toFixed(2)} % of a core over ${wallS.toFixed(0)} s after a ${warmup} s warm-up (${cpuS.toFixed(2)} s); ` +
    `RSS ${(at1.rssKiB / 1024).toFixed(1)} MiB at ${seconds} s (peak ${(at1.hwmKiB / 1024).toFixed(1)} MiB)`,
);
