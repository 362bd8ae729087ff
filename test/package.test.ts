/**
 * The package as a user gets it, checked against what the README says (README "Development"):
 * `npm pack` of this repository — plus prebuilds/ made from the local build, as `npm run prebuild`
 * would, so the install does not compile the addon a second time — installed into an empty folder
 * with npm settings of its own (no user npmrc, no npm_* variables of the run that started us).
 *
 * - every path the README names is in the tarball, or lies under a repository-only folder and
 *   exists in the repository;
 * - the CLI runs through npm's bin link, a symlinked node_modules (pnpm) and a global prefix;
 * - every README code block runs as written (the fence's language says how, see README_RULES).
 */
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { listScenarios } from '../src/simulator.js';

const ROOT = PACKAGE_ROOT;
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** README "Development": paths under these are in the git repository only (for working on the package). */
// deploy/: the Kubernetes manifests and Dockerfile, used from a clone (docker build runs at its root).
const REPO_ONLY = ['src/', 'test/', 'bench/', 'fuzz/', 'scripts/', '.ci/', 'deploy/'];
/** Build output folders the README names (created by builds, ignored by git). */
const BUILD_DIRS = ['build/', '.asan/'];
/**
 * The fence languages and what the test does with each (README "Development"):
 * ts / js: a whole ES module, run (ts type-checked first); sh: its `npx gpu-telemetry …` lines run;
 * text and `ts outline`: read, not run.
 */
const FENCES = new Set(['ts', 'js', 'sh', 'text', 'ts outline']);
const SIMULATE = 'h100-sxm-8';
const BLOCK_TIMEOUT_MS = 60_000;

interface Block {
  line: number;
  info: string;
  code: string;
}

function readmeBlocks(): Block[] {
  const blocks: Block[] = [];
  const lines = README.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    blocks.push({ line: start + 1, info: open[1].trim(), code: `${body.join('\n')}\n` });
  }
  return blocks;
}

/** Every repository path the README names: tokens that start with a top-level entry of the repository. */
function readmePaths(): string[] {
  const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  const topDirs = new Set(tracked.filter((f) => f.includes('/')).map((f) => f.split('/')[0]));
  const topFiles = new Set(tracked.filter((f) => !f.includes('/')));
  for (const d of ['dist', 'build', 'prebuilds', '.asan']) topDirs.add(d);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const dirs = [...topDirs].map(esc).join('|');
  const files = [...topFiles].map(esc).join('|');
  const re = new RegExp(`(?<![\\w./@-])((?:${dirs})/[\\w./*{},<>-]*|(?:${files})(?![\\w.-])|[A-Z][A-Za-z0-9_-]*\\.md\\b)`, 'g');
  const found = new Set<string>();
  for (const m of README.matchAll(re)) found.add(m[1].replace(/[.,]+$/, ''));
  return [...found].sort();
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]*)\}/g, (_m, alts: string) => `(?:${alts.split(',').join('|')})`).replace(/\*/g, '[^/]*');
  return new RegExp(`^${body}`);
}

/** A path (file, folder with a trailing slash or not, or glob) matched against a list of files. */
function matches(p: string, files: string[]): boolean {
  if (p.includes('*') || p.includes('{')) {
    const re = globToRegExp(p);
    return files.some((f) => re.test(f));
  }
  const dir = p.endsWith('/') ? p : `${p}/`;
  return files.some((f) => f === p || f.startsWith(dir));
}

// ---- the packed and installed package (shared by every test of the file) ----

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-package-'));
const npmrc = path.join(tmp, 'npmrc');
const app = path.join(tmp, 'app');
const globalPrefix = path.join(tmp, 'global');
let packedFiles: string[] = [];
let tarballFiles: string[] = [];
let tarball = '';

/** The environment of a user's shell: none of our run's npm_* settings, an npmrc of the test's own. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !k.startsWith('GPU_TELEMETRY_')) env[k] = v;
  return { ...env, npm_config_userconfig: npmrc, ...extra };
}

function npm(args: string[], cwd: string, timeoutMs = 300_000): string {
  const r = spawnSync('npm', args, { cwd, env: userEnv(), encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function packJson(stdout: string): { filename: string; files: { path: string }[] } {
  // npm prints the JSON array (lifecycle output, if any, goes elsewhere with --ignore-scripts).
  return (JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[])[0];
}

beforeAll(() => {
  fs.writeFileSync(npmrc, 'fund=false\naudit=false\nupdate-notifier=false\nprefer-offline=true\n');

  // What `npm pack` puts in the tarball, straight from the repository.
  packedFiles = packJson(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT)).files.map((f) => f.path);

  // The release tarball: those files plus prebuilds/ (the local build's binaries, the ones
  // `npm run prebuild` would place there), packed from a staging copy.
  const stage = path.join(tmp, 'stage');
  for (const f of packedFiles) {
    fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(stage, f));
  }
  const prebuilds = path.join(stage, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.mkdirSync(prebuilds, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'build', 'Release', 'gpu_telemetry.node'), path.join(prebuilds, 'node.napi.node'));
  for (const lib of ['gpu_telemetry_sim.so', 'gpu_telemetry_sim_legacy.so', 'libgpu_telemetry_inject.so']) {
    fs.copyFileSync(path.join(ROOT, 'build', 'Release', lib), path.join(prebuilds, lib));
  }
  const packed = packJson(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], stage));
  tarball = path.join(tmp, packed.filename);
  tarballFiles = packed.files.map((f) => f.path);

  // A user's project: an empty folder, then `npm install <tarball>` (+ the types a TS user adds).
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'readme-user', private: true, type: 'module' }, null, 2));
  npm(['install', tarball, '@types/node@^20.19.0'], app);
  // And a global install under a prefix of its own (what `npm i -g` does, without touching the system).
  npm(['install', '-g', '--prefix', globalPrefix, tarball], tmp);
}, 600_000);

afterAll(() => {
  if (process.env.GPU_TELEMETRY_KEEP_PACKAGE_TEST !== '1') fs.rmSync(tmp, { recursive: true, force: true });
});

function run(file: string, args: string[], options: { cwd?: string; env?: Record<string, string>; shell?: boolean } = {}): SpawnSyncReturns<string> {
  return spawnSync(file, args, {
    cwd: options.cwd ?? app,
    env: userEnv(options.env),
    encoding: 'utf8',
    timeout: BLOCK_TIMEOUT_MS,
  });
}

describe('the tarball', () => {
  it('holds every file the README promises (repository-only folders excepted, and those exist in the repository)', () => {
    const paths = readmePaths();
    expect(paths).toEqual(expect.arrayContaining(['dashboards/gpu-telemetry.json', 'prometheus/alerts.yml', 'examples/serving-loop.mjs']));
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    const ignored = fs.readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n');
    const problems: string[] = [];
    for (const p of paths) {
      if (matches(p, tarballFiles)) continue;
      if (REPO_ONLY.some((d) => p.startsWith(d))) {
        const there = /[*{]/.test(p) ? matches(p, tracked) : fs.existsSync(path.join(ROOT, p));
        if (!there) problems.push(`${p}: named as a repository path, but not in the repository`);
      } else if (BUILD_DIRS.some((d) => p.startsWith(d))) {
        if (!ignored.includes(p) && !ignored.includes(p.replace(/\/$/, '')) && !ignored.includes(`${p.split('/')[0]}/`)) {
          problems.push(`${p}: named as a build folder, but not ignored by git`);
        }
      } else {
        problems.push(`${p}: the README names it, the package does not ship it`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('is what npm pack makes of the repository, plus the prebuilds', () => {
    // (A repository where `npm run prebuild` ran has prebuilds/ of its own, which npm pack takes too.)
    const notPrebuilt = (f: string) => !f.startsWith('prebuilds/');
    expect(tarballFiles.filter(notPrebuilt).sort()).toEqual(packedFiles.filter(notPrebuilt).sort());
    expect(tarballFiles).toEqual(expect.arrayContaining([`prebuilds/${process.platform}-${process.arch}/node.napi.node`]));
  });
});

describe('the installed CLI', () => {
  it('runs through npm\'s bin link (a symlink), with help and a quiet closed pipe', () => {
    const bin = path.join(app, 'node_modules', '.bin', 'gpu-telemetry');
    expect(fs.lstatSync(bin).isSymbolicLink()).toBe(true);
    const help = run(bin, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: gpu-telemetry <command>/);
    const piped = run('bash', ['-c', `"${bin}" scenarios | head -1; echo "exit: \${PIPESTATUS[0]}" >&2`]);
    expect(piped.stdout).toMatch(/^\S+ {2}/);
    expect(piped.stderr).toBe('exit: 0\n');
  });

  it('runs through a symlinked node_modules (pnpm\'s layout)', () => {
    const linked = path.join(tmp, 'pnpm-style', 'node_modules');
    fs.mkdirSync(linked, { recursive: true });
    fs.symlinkSync(path.join(app, 'node_modules', 'gpu-telemetry'), path.join(linked, 'gpu-telemetry'));
    const r = run(process.execPath, [path.join(linked, 'gpu-telemetry', 'dist', 'cli.js'), 'snapshot', '--simulate', 'gb10', '--json', '--interval-ms', '50']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).devices[0].name).toBe('NVIDIA GB10 (simulated)');
  });

  it('runs from a global-style prefix (npm i -g --prefix)', () => {
    const bin = path.join(globalPrefix, 'bin', 'gpu-telemetry');
    const r = run(bin, ['scenarios', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).map((s: { name: string }) => s.name)).toContain(SIMULATE);
  });

  it('inject-path names the shipped injection library of this machine (what CUDA_INJECTION64_PATH takes)', () => {
    const r = run(path.join(app, 'node_modules', '.bin', 'gpu-telemetry'), ['inject-path']);
    expect(r.status, r.stderr).toBe(0);
    const lib = r.stdout.trim();
    expect(lib).toBe(path.join(fs.realpathSync(path.join(app, 'node_modules', 'gpu-telemetry')), 'prebuilds', `${process.platform}-${process.arch}`, 'libgpu_telemetry_inject.so'));
    expect(fs.statSync(lib).isFile()).toBe(true);
  });

  it('takes every option the README\'s synopsis lists, on each command', () => {
    const synopsis = readmeBlocks().find((b) => b.info === 'text' && b.code.startsWith('gpu-telemetry snapshot'))!;
    expect(synopsis).toBeDefined();
    let command = '';
    for (const line of synopsis.code.split('\n')) {
      command = /^gpu-telemetry (\w+)/.exec(line)?.[1] ?? command;
      const flags = [...line.replace(/\(.*\)$/, '').matchAll(/--[a-z-]+/g)].map((m) => m[0]).filter((f) => f !== '--help');
      if (!flags.length) continue;
      const help = run(path.join(app, 'node_modules', '.bin', 'gpu-telemetry'), [command, '--help']);
      expect(help.status, command).toBe(0);
      for (const flag of flags) expect(help.stdout, `${command} ${flag}`).toContain(flag);
    }
  });

  it('ships examples/serving-loop.mjs, and it runs from the installed package', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(app, 'node_modules', 'gpu-telemetry', 'examples', 'serving-loop.mjs'), '--simulate', SIMULATE, '--port', String(port)], {
      cwd: app,
      env: userEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const body = await metricsOf(port, child);
      expect(body).toMatch(/^gpu_telemetry_up 1$/m);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls GET /metrics until it answers 200 with gpu_telemetry_up 1 (or the child dies / time runs out). */
async function metricsOf(port: number, child: ReturnType<typeof spawn>): Promise<string> {
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + BLOCK_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before serving /metrics:\n${out}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.status === 200 && /^gpu_telemetry_up 1$/m.test(body)) return body;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no /metrics on port ${port} within ${BLOCK_TIMEOUT_MS} ms:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('every README code block runs as written', () => {
  const blocks = readmeBlocks();

  it('every fence says what it is (ts, js, sh, text, ts outline)', () => {
    expect(blocks.length).toBeGreaterThan(5);
    expect(blocks.filter((b) => !FENCES.has(b.info)).map((b) => `README.md:${b.line} \`\`\`${b.info}`)).toEqual([]);
  });

  const programs = blocks.filter((b) => b.info === 'ts' || b.info === 'js');
  let compiled = false;
  const docDir = () => path.join(app, 'doc');
  const outFile = (b: Block) => path.join(app, b.info === 'ts' ? 'out' : 'doc', `readme-${b.line}.${b.info === 'ts' ? 'js' : 'mjs'}`);

  /** Type-checks and compiles every ts block once, as a TypeScript user of the package would. */
  function compile(): void {
    if (compiled) return;
    fs.mkdirSync(docDir(), { recursive: true });
    for (const b of programs) fs.writeFileSync(path.join(docDir(), `readme-${b.line}.${b.info === 'ts' ? 'ts' : 'mjs'}`), b.code);
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, rootDir: 'doc', outDir: 'out', types: ['node'] },
        include: ['doc/*.ts'],
      }),
    );
    const tsc = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(app, 'tsconfig.json')], { cwd: app, encoding: 'utf8', timeout: 120_000 });
    expect(`${tsc.stdout}${tsc.stderr}`, 'the README\'s TypeScript blocks type-check against the installed package').toBe('');
    expect(tsc.status).toBe(0);
    compiled = true;
  }

  it.each(programs.map((b) => [`README.md:${b.line} (${b.info})`, b] as const))('%s', async (_name, block) => {
    compile();
    const file = outFile(block);
    const env = { GPU_TELEMETRY_SIMULATE: SIMULATE };
    if (/\.listen\(/.test(block.code)) {
      // A server: it must answer /metrics on $PORT.
      const port = await freePort();
      const child = spawn(process.execPath, [file], { cwd: app, env: userEnv({ ...env, PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        await metricsOf(port, child);
      } finally {
        child.kill('SIGTERM');
      }
      return;
    }
    const r = run(process.execPath, [file], { env });
    expect(r.error, 'finished within the time bound').toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status, r.stdout).toBe(0);
  });

  it('the sh blocks\' npx gpu-telemetry commands run and exit 0', () => {
    const commands = blocks
      .filter((b) => b.info === 'sh')
      .flatMap((b) => b.code.split('\n').map((line, i) => ({ line: b.line + 1 + i, text: line.replace(/\s+#.*$/, '').trim() })))
      .filter((c) => /^npx gpu-telemetry\b/.test(c.text));
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) {
      const r = run('sh', ['-c', c.text]);
      expect(r.status, `README.md:${c.line} ${c.text}\n${r.stderr}`).toBe(0);
      expect(r.stdout.length, `README.md:${c.line} ${c.text} printed nothing`).toBeGreaterThan(0);
    }
  });
});

describe('what the README says about the shipped scenarios', () => {
  it('its table lists exactly the shipped scenarios, and the XID storm at the rate its file has', () => {
    const table = README.slice(README.indexOf('Shipped scenarios'), README.indexOf('Simulated devices say so'));
    const named = [...table.matchAll(/^\| `([\w-]+)`(?: \(\+ ([^)]*)\))?/gm)].flatMap((m) => [
      m[1],
      ...[...(m[2] ?? '').matchAll(/`-([\w]+)`/g)].map((x) => `${m[1]}-${x[1]}`),
    ]);
    expect(named.sort()).toEqual(listScenarios().map((s) => s.name).sort());
    const storm = JSON.parse(fs.readFileSync(path.join(ROOT, 'scenarios', 'fault-xid-storm.json'), 'utf8')) as { xids: { ratePerSecond: number }[] };
    const rate = storm.xids[0].ratePerSecond.toLocaleString('en-US');
    const mentions = [...README.matchAll(/XID storm[^|]*?\(([\d,]+)\/s\)|`fault-xid-storm` \|[^|]*? ([\d,]+) events\/s/g)].map((m) => m[1] ?? m[2]);
    expect(mentions.length).toBeGreaterThanOrEqual(2);
    for (const m of mentions) expect(m).toBe(rate);
  });
});
