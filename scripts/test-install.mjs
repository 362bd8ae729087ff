#!/usr/bin/env node
/**
 * npm run test:install: the packed tarball installs and runs with no compiler, from the prebuilds.
 *
 *   node scripts/test-install.mjs [--arch x64,arm64] [--tarball FILE] [--keep]
 *
 * `npm pack` (both prebuild folders must be in it: `npm run prebuild` first), then for each case a
 * fresh folder outside the repository, a PATH whose first entry masks the compilers (g++, gcc, c++,
 * cc, cpp, make, clang, python3: each shim records the call and exits 1), and:
 *   `npm install` with the tarball as the one dependency, then `import('gpu-telemetry')` opens the
 *   simulated gb10, and `gpu-telemetry snapshot --simulate gb10` (the installed bin) prints it.
 * The cases:
 *   x64    scripts run               the install script (node-gyp-build) finds the prebuild: no build
 *   x64    --ignore-scripts          nothing runs at install; the prebuild is found at run time
 *   x64    allowScripts denies it    npm 11's policy (what `npm install-scripts deny` writes): the same
 *   arm64  scripts run               npm itself and every `node` it starts run as arm64 under
 *   arm64  --ignore-scripts          qemu-user (a PATH shim: no binfmt_misc here)
 * Each also checks that no compiler shim was called, that node_modules/gpu-telemetry has no build/,
 * and that the addon mapped is prebuilds/linux-<arch>/gpu-telemetry.node.
 * Dependencies come from npm's cache when they are there (--prefer-offline), else the registry.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, ToolchainError, arm64Node, arm64NodeShimDir, onPath, qemu } from './arm64-toolchain.mjs';

const MASKED = ['g++', 'gcc', 'c++', 'cc', 'cpp', 'make', 'gmake', 'clang', 'clang++', 'python3', 'python', 'aarch64-linux-gnu-g++', 'aarch64-linux-gnu-gcc'];
const CASE_TIMEOUT_MS = 20 * 60_000;

function fail(message) {
  console.error(`test-install: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const o = { arches: ['x64', 'arm64'], tarball: null, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--keep') o.keep = true;
    else if (a === '--arch') o.arches = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--arch=')) o.arches = a.slice(7).split(',').filter(Boolean);
    else if (a === '--tarball') o.tarball = path.resolve(argv[++i] ?? '');
    else fail(`unknown argument ${a} (usage: node scripts/test-install.mjs [--arch x64,arm64] [--tarball FILE] [--keep])`);
  }
  for (const a of o.arches) if (a !== 'x64' && a !== 'arm64') fail(`--arch ${a}: x64 or arm64`);
  return o;
}

/** The environment of a user's shell: none of the npm_* variables of the `npm run` that started us. */
function userEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k === 'NODE' || k === 'PREBUILDS_ONLY' || k === 'QEMU_LD_PREFIX') continue;
    env[k] = v;
  }
  // npm run puts node_modules/.bin (and npm's node-gyp) first on PATH: a user's shell does not.
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((d) => d && !d.includes(`${path.sep}node_modules${path.sep}`) && !d.endsWith(`${path.sep}node-gyp-bin`))
    .join(':');
  return env;
}

function run(cmd, args, options) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const guard = setTimeout(() => child.kill('SIGKILL'), CASE_TIMEOUT_MS);
    child.on('error', (e) => (err += `\n${e.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code: code ?? signal, out, err, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const opts = parseArgs(process.argv.slice(2));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-install-'));

// ---- the tarball
let tarball = opts.tarball;
if (!tarball) {
  console.log('== npm pack');
  const r = spawnSync('npm', ['pack', '--pack-destination', work, '--json'], { cwd: ROOT, encoding: 'utf8', env: userEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) fail('npm pack failed');
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
  tarball = path.join(work, info.filename);
}
const listing = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.split('\n');
const missing = [];
for (const arch of ['x64', 'arm64']) {
  for (const f of ['gpu-telemetry.node', 'gpu_telemetry_sim.so', 'gpu_telemetry_sim_legacy.so', 'libgpu_telemetry_inject.so']) {
    if (!listing.includes(`package/prebuilds/linux-${arch}/${f}`)) missing.push(`prebuilds/linux-${arch}/${f}`);
  }
}
for (const f of ['dist/index.js', 'dist/cli.js', 'scenarios/gb10.json', 'scenarios/gb10.meminfo', 'binding.gyp', 'scripts/with-node-headers.mjs']) {
  if (!listing.includes(`package/${f}`)) missing.push(f);
}
if (missing.length) fail(`${path.basename(tarball)} lacks ${missing.join(', ')} (run "npm run prebuild" first)`);
console.log(`${path.basename(tarball)}: ${(fs.statSync(tarball).size / 1024).toFixed(0)} KiB, ${listing.filter(Boolean).length} files, prebuilds for linux-x64 and linux-arm64`);

// ---- the masked toolchain
const maskDir = path.join(work, 'no-compilers');
const maskLog = path.join(work, 'compiler-calls.log');
fs.mkdirSync(maskDir);
for (const name of MASKED) {
  fs.writeFileSync(
    path.join(maskDir, name),
    `#!/bin/sh\necho "${name} $*" >> '${maskLog}'\necho "${name}: masked by test-install (no compiler on this machine)" >&2\nexit 1\n`,
    { mode: 0o755 },
  );
}

// ---- arm64 under qemu: a `node` on PATH that is the arm64 Node
let shimDir = null;
if (opts.arches.includes('arm64')) {
  try {
    shimDir = arm64NodeShimDir(qemu(), arm64Node().node);
  } catch (e) {
    if (e instanceof ToolchainError) fail(e.message);
    throw e;
  }
}
const npmCli = onPath('npm');
if (!npmCli) fail('npm is not on PATH');

const CHECK = `
import fs from 'node:fs';
const m = await import('gpu-telemetry');
const gpu = await m.openGpuTelemetry({ simulate: 'gb10', intervalMs: 100 });
let s = gpu.snapshot();
for (let i = 0; i < 600 && !(s.devices[0] && s.devices[0].status.memoryTotalBytes === 'ok'); i++) {
  await new Promise((r) => setTimeout(r, 50));
  s = gpu.snapshot();
}
await gpu.close();
const maps = fs.readFileSync('/proc/self/maps', 'utf8');
const addon = [...new Set(maps.split('\\n').map((l) => l.slice(l.indexOf('/'))).filter((p) => p.endsWith('.node')))];
console.log(JSON.stringify({ arch: process.arch, exports: Object.keys(m).length, name: gpu.devices[0].name,
  memoryTotalBytes: s.devices[0].fields.memoryTotalBytes, source: s.devices[0].source.memoryTotalBytes, addon }));
`;

const cases = [];
for (const arch of opts.arches) {
  cases.push({ arch, variant: 'scripts run', installArgs: [] });
  cases.push({ arch, variant: '--ignore-scripts', installArgs: ['--ignore-scripts'] });
  // What `npm install-scripts deny gpu-telemetry` writes for a tarball dependency (a registry
  // install would have the bare name).
  if (arch === 'x64') cases.push({ arch, variant: 'allowScripts denies it', installArgs: [], pkg: { allowScripts: { [`file:${tarball}`]: false } } });
}

const results = [];
for (const c of cases) {
  const label = `linux-${c.arch}, ${c.variant}`;
  console.log(`\n== ${label}`);
  const dir = path.join(work, `consumer-${c.arch}-${results.length}`);
  fs.mkdirSync(dir);
  // The consumer's own postinstall records the arch of the `node` that npm's scripts get (the
  // dependency's install script is started the same way): arm64 proves the shim is in effect.
  const scripts = { postinstall: `node -e "require('fs').writeFileSync('install-arch.txt', process.arch)"` };
  // (Root scripts run on a bare `npm install`, so the dependency is declared rather than named.)
  const dependencies = { 'gpu-telemetry': `file:${tarball}` };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', scripts, dependencies, ...(c.pkg ?? {}) }, null, 2));
  fs.writeFileSync(path.join(dir, 'check.mjs'), CHECK);
  fs.rmSync(maskLog, { force: true });
  const env = userEnv();
  env.PATH = [...(c.arch === 'arm64' && shimDir ? [shimDir] : []), maskDir, env.PATH].join(':');
  const problems = [];
  const times = {};

  // npm itself runs as the case's architecture: for arm64, `npm` → #!/usr/bin/env node → the shim.
  const install = await run(npmCli, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', ...c.installArgs], { cwd: dir, env });
  times.install = install.seconds;
  if (install.code !== 0) problems.push(`npm install exited ${install.code}:\n${install.out}\n${install.err}`);
  const notice = /install scripts not yet covered by allowScripts/.test(install.out + install.err);
  const ranInstall = /^> gpu-telemetry@\S+ install$/m.test(install.out + install.err);

  if (install.code === 0) {
    const pkgDir = path.join(dir, 'node_modules', 'gpu-telemetry');
    if (fs.existsSync(path.join(pkgDir, 'build'))) problems.push('node_modules/gpu-telemetry/build exists: something was compiled');
    if (c.variant === 'scripts run' && !ranInstall) problems.push('the install script did not run (npm 11 runs an unreviewed one with a notice)');
    if (c.variant === 'scripts run') {
      const scriptArch = fs.existsSync(path.join(dir, 'install-arch.txt')) ? fs.readFileSync(path.join(dir, 'install-arch.txt'), 'utf8') : 'nothing';
      if (scriptArch !== c.arch) problems.push(`npm's scripts ran as ${scriptArch}, not ${c.arch}`);
    }
    if (c.variant !== 'scripts run' && ranInstall) problems.push('the install script ran although it should not have');

    const imp = await run('node', ['check.mjs'], { cwd: dir, env });
    times.import = imp.seconds;
    let result = null;
    try {
      result = JSON.parse(imp.out.trim().split('\n').pop());
    } catch {
      problems.push(`import check failed (exit ${imp.code}):\n${imp.out}\n${imp.err}`);
    }
    if (result) {
      if (result.arch !== c.arch) problems.push(`ran as ${result.arch}, not ${c.arch}`);
      if (!/GB10/.test(result.name) || result.source !== 'meminfo' || !(result.memoryTotalBytes > 0)) problems.push(`unexpected gb10 sample: ${JSON.stringify(result)}`);
      const want = path.join(fs.realpathSync(pkgDir), 'prebuilds', `linux-${c.arch}`, 'gpu-telemetry.node');
      if (result.addon.length !== 1 || result.addon[0] !== want) problems.push(`addon mapped: ${result.addon.join(', ')}, expected ${want}`);
    }

    const cli = await run(path.join(dir, 'node_modules', '.bin', 'gpu-telemetry'), ['snapshot', '--simulate', 'gb10'], { cwd: dir, env });
    times.snapshot = cli.seconds;
    if (cli.code !== 0 || !/NVIDIA GB10 \(simulated\)/.test(cli.out)) problems.push(`gpu-telemetry snapshot --simulate gb10 exited ${cli.code}:\n${cli.out}\n${cli.err}`);
    // The injection library a CUDA process would load: this arch's prebuild.
    const inject = await run(path.join(dir, 'node_modules', '.bin', 'gpu-telemetry'), ['inject-path'], { cwd: dir, env });
    const wantInject = path.join(fs.realpathSync(pkgDir), 'prebuilds', `linux-${c.arch}`, 'libgpu_telemetry_inject.so');
    if (inject.code !== 0 || inject.out.trim() !== wantInject) problems.push(`gpu-telemetry inject-path printed ${inject.out.trim() || inject.err.trim()}, expected ${wantInject}`);
  }
  if (fs.existsSync(maskLog)) problems.push(`a masked compiler was called:\n${fs.readFileSync(maskLog, 'utf8')}`);

  const seconds = Object.values(times).reduce((a, b) => a + b, 0);
  results.push({ label, ok: problems.length === 0, seconds, times, notice });
  const detail = Object.entries(times).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ');
  if (problems.length) console.log(`FAIL ${label}\n  ${problems.join('\n  ')}`);
  else console.log(`ok ${label} (${detail}${notice ? '; npm printed its allowScripts notice' : ''})`);
}

console.log('\ninstall tests (compilers masked on PATH):');
for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.label.padEnd(36)} ${r.seconds.toFixed(1).padStart(6)} s`);
const failed = results.filter((r) => !r.ok).length;
console.log(`Cases: ${results.length - failed} passed, ${failed} failed`);
if (opts.keep || failed) console.log(`(folders kept in ${work})`);
else fs.rmSync(work, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
