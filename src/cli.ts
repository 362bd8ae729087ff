#!/usr/bin/env node
/**
 * The `gpu-telemetry` executable (package.json "bin"). This file only runs the CLI: it is never
 * imported, so it needs no "am I the main module?" check — such a check compared import.meta.url
 * with process.argv[1] and silently did nothing when the file was reached through a symlink
 * (npm's bin links, `npm i -g`, pnpm's node_modules). The commands live in cli/main.ts.
 */
import { describeError } from './cli/common.js';
import { main } from './cli/main.js';

// A reader that stops early (`gpu-telemetry scenarios | head -1`) closes the pipe: stop quietly,
// like any Unix tool, instead of dying with an uncaught EPIPE stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`gpu-telemetry: ${describeError(e)}\n`);
    process.exitCode = 1;
  },
);
