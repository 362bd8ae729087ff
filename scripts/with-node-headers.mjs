#!/usr/bin/env node
/**
 * Runs a native build command (node-gyp-build from npm's install hook, node-gyp, prebuildify) with
 * node-gyp pointed at the headers of the Node running it.
 *
 *   node scripts/with-node-headers.mjs <command> [args…]
 *
 * Left alone, node-gyp downloads the headers from nodejs.org, so a machine without that access
 * (a CI runner behind a proxy, an air-gapped host) cannot build the addon. Node's own installation
 * ships the matching headers under its prefix (Debian's nodejs in /usr/include/node, the official
 * tarballs and nvm in <prefix>/include/node), so when they are there and the user configured no
 * nodedir of their own, node-gyp is told to use them. Otherwise nothing changes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: node scripts/with-node-headers.mjs <command> [args…]');
  process.exit(2);
}

const env = { ...process.env };
const prefix = path.resolve(path.dirname(process.execPath), '..');
const headers = path.join(prefix, 'include', 'node');
if (!env.npm_config_nodedir && fs.existsSync(path.join(headers, 'node_api.h')) && fs.existsSync(path.join(headers, 'node_version.h'))) {
  env.npm_config_nodedir = prefix;
}

const r = spawnSync(command, args, { stdio: 'inherit', env });
if (r.error) {
  console.error(`with-node-headers: cannot run ${command}: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
