#!/usr/bin/env node
/**
 * npm run prebuild: the prebuilds that ship in the package, for linux-x64 and linux-arm64.
 *
 *   node scripts/prebuild.mjs [--arch x64,arm64]     (default: both)
 *
 * Each architecture is one `prebuildify --napi --strip [--arch …]` run (node-gyp over binding.gyp,
 * exactly as a local build): prebuilds/linux-<arch>/ then holds the addon (gpu-telemetry.node,
 * which node-gyp-build finds at run time), the two simulator libraries (gpu_telemetry_sim.so,
 * gpu_telemetry_sim_legacy.so) and the injection library (libgpu_telemetry_inject.so), which
 * src/paths.ts finds, all stripped. Every file is checked
 * afterwards: present, an ELF of the right machine, no symbol table left. build/ is left holding
 * an ordinary, unstripped local build of this machine's architecture.
 *
 * The architecture that is not this machine's is cross-built — on x64, arm64 with Debian's
 * aarch64-linux-gnu-g++ against the headers of Node for arm64 at this Node's version (fetched once
 * from the npm registry: scripts/arm64-toolchain.mjs). Everything it needs is checked before
 * anything is built, and a missing piece is a clear error. The foreign build runs first and this
 * machine's last, so build/Release is a native build again when the script ends.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, ToolchainError, arm64Node, crossCompiler, elfArch, hasSymtab, onPath } from './arm64-toolchain.mjs';

const SUPPORTED = ['x64', 'arm64'];
// Required in every prebuild folder (src/paths.ts and node-gyp-build look for these names): the
// addon, the two simulator libraries, and the injection library other CUDA processes load
// (CUDA_INJECTION64_PATH; src/paths.ts injectLibraryPath).
const FILES = ['gpu-telemetry.node', 'gpu_telemetry_sim.so', 'gpu_telemetry_sim_legacy.so', 'libgpu_telemetry_inject.so'];
const ADDON = FILES[0];
const LIBS = FILES.filter((f) => f.endsWith('.so'));

function fail(message) {
  console.error(`\nprebuild: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  let arches = [...SUPPORTED];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = a.startsWith('--arch=') ? a.slice(7) : a === '--arch' ? argv[++i] : null;
    if (value === null || value === undefined) fail(`unknown argument ${a} (usage: node scripts/prebuild.mjs [--arch x64,arm64])`);
    arches = value.split(',').filter(Boolean);
    for (const arch of arches) if (!SUPPORTED.includes(arch)) fail(`--arch ${arch}: supported are ${SUPPORTED.join(', ')}`);
  }
  return arches;
}

if (process.platform !== 'linux') fail(`prebuilds are built on Linux (this is ${process.platform})`);
const host = os.arch();
const arches = parseArgs(process.argv.slice(2)).sort((a, b) => (a === host) - (b === host)); // native last

// ---- 1. Everything the builds need, before building anything.
const plan = [];
for (const arch of arches) {
  if (arch === host) {
    plan.push({ arch, env: {}, args: [] });
    continue;
  }
  if (!(host === 'x64' && arch === 'arm64')) fail(`cross-building ${arch} on a ${host} machine is not set up (only arm64 on x64)`);
  try {
    const cross = crossCompiler();
    const node = arm64Node();
    plan.push({
      arch,
      args: ['--arch', arch],
      env: {
        CC: cross.cc,
        CXX: cross.cxx,
        LINK: cross.cxx,
        PREBUILD_STRIP_BIN: cross.strip, // (used below, not by prebuildify)
        // node-gyp builds against these headers and reads their config.gypi (target_arch arm64).
        npm_config_nodedir: node.dir,
      },
      headers: node.dir,
    });
  } catch (e) {
    if (e instanceof ToolchainError) fail(`cannot build linux-${arch}: ${e.message}`);
    throw e;
  }
}

const prebuildify = path.join(ROOT, 'node_modules', '.bin', 'prebuildify');
if (!fs.existsSync(prebuildify)) fail('prebuildify is not installed: run "npm ci" first');
// prebuildify runs `node-gyp`: npm puts its own on PATH for `npm run`; called directly, use npm's.
const nodeGypEnv = {};
if (!process.env.PREBUILD_NODE_GYP && !onPath('node-gyp')) {
  const npm = onPath('npm');
  const bundled = process.env.npm_config_node_gyp ||
    (npm ? path.join(path.dirname(fs.realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : '');
  if (!bundled || !fs.existsSync(bundled)) fail('node-gyp not found: run "npm run prebuild" (npm brings its own node-gyp)');
  nodeGypEnv.PREBUILD_NODE_GYP = bundled;
}

// ---- 2. Build.
const timings = [];
for (const step of plan) {
  const dest = path.join(ROOT, 'prebuilds', `linux-${step.arch}`);
  fs.rmSync(dest, { recursive: true, force: true });
  console.log(`\n== prebuild linux-${step.arch}${step.headers ? ` (cross: ${step.env.CXX}, headers ${path.relative(ROOT, step.headers)}/include/node)` : ''}`);
  const started = Date.now();
  // Native: with-node-headers points node-gyp at the running Node's own headers (or the configured
  // nodedir). Cross: the nodedir above, which with-node-headers leaves alone.
  // Not prebuildify's --strip: it strips build/'s files in place and then moves the addon out, which
  // would leave the local build without its addon (and valgrind without symbols). The copies in
  // prebuilds/ are stripped below instead.
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'with-node-headers.mjs'), prebuildify, '--napi', ...step.args], {
    cwd: ROOT,
    stdio: 'inherit',
    // JOBS: node-gyp runs make with that many jobs (default 1).
    env: { JOBS: 'max', ...process.env, ...nodeGypEnv, ...step.env },
  });
  if (r.status !== 0) fail(`prebuildify for linux-${step.arch} failed (exit ${r.status ?? r.signal})`);
  // prebuildify moved build/Release/gpu_telemetry.node into prebuilds/: put a copy back, so build/
  // stays a complete (unstripped) local build.
  const builtAddon = path.join(ROOT, 'build', 'Release', 'gpu_telemetry.node');
  if (!fs.existsSync(builtAddon)) fs.copyFileSync(path.join(dest, ADDON), builtAddon);
  // prebuildify copies the *.so files it finds in build/Release; make sure of it (the libraries
  // besides the addon: the simulators and the injection library).
  for (const lib of LIBS) {
    const target = path.join(dest, lib);
    if (!fs.existsSync(target)) {
      const built = path.join(ROOT, 'build', 'Release', lib);
      if (!fs.existsSync(built)) fail(`${path.relative(ROOT, built)} was not built`);
      fs.copyFileSync(built, target);
    }
  }
  const strip = step.env.PREBUILD_STRIP_BIN ?? 'strip';
  for (const f of fs.readdirSync(dest)) {
    const s = spawnSync(strip, ['--strip-all', path.join(dest, f)], { stdio: 'inherit' });
    if (s.status !== 0) fail(`${strip} --strip-all prebuilds/linux-${step.arch}/${f} failed`);
  }
  timings.push({ arch: step.arch, seconds: (Date.now() - started) / 1000 });
}

/** The newest glibc / libstdc++ symbol versions a file needs (README "Requirements" names them). */
function needs(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  if (r.status !== 0) return '';
  const newer = (a, b) => {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
    return false;
  };
  const newest = {};
  for (const [, lib, version] of r.stdout.matchAll(/\b(GLIBC|GLIBCXX)_([\d.]+)/g)) {
    const v = version.split('.').map(Number);
    if (!newest[lib] || newer(v, newest[lib])) newest[lib] = v;
  }
  return Object.entries(newest).sort(([a], [b]) => a.localeCompare(b)).map(([lib, v]) => `${lib}_${v.join('.')}`).join(' ');
}

// ---- 3. Check what will ship.
const rows = [];
let bad = false;
for (const { arch } of plan) {
  const dir = path.join(ROOT, 'prebuilds', `linux-${arch}`);
  // The files every prebuild must have, plus whatever else binding.gyp now builds (prebuildify
  // copies every .so of build/Release): each must be for this arch and stripped.
  const present = fs.readdirSync(dir).sort();
  for (const f of [...FILES, ...present.filter((p) => !FILES.includes(p))]) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) {
      console.error(`prebuilds/linux-${arch}/${f}: missing`);
      bad = true;
      continue;
    }
    const machine = elfArch(file);
    const stripped = !hasSymtab(file);
    if (machine !== arch || !stripped) bad = true;
    rows.push(`  ${`prebuilds/linux-${arch}/${f}`.padEnd(50)} ${String(machine).padEnd(6)} ${stripped ? 'stripped' : 'NOT STRIPPED'}  ${(fs.statSync(file).size / 1024).toFixed(0).padStart(5)} KiB  ${needs(file)}`);
  }
}
console.log(`\nprebuilds:\n${rows.join('\n')}`);
console.log(timings.map((t) => `  linux-${t.arch}: ${t.seconds.toFixed(1)} s`).join('\n'));
if (bad) fail('a prebuild is missing, for the wrong machine, or not stripped (see above)');
if (plan.at(-1).arch !== host) console.log(`note: build/ now holds a linux-${plan.at(-1).arch} build; "npm run build:native" makes a local ${host} build again`);
