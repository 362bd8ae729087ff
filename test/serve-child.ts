/** `gpu-telemetry serve` as a child process, scraped until a condition holds (the exporter e2e tests). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { parseExposition, type Line } from './exposition.js';
import { sleep, waitFor } from './helpers.js';

export interface Served {
  child: ChildProcess;
  output: () => string;
  scrape: () => Promise<Line[]>;
  /** Scrapes until `check` holds (bounded); returns the last scrape. */
  until: (check: (lines: Line[]) => boolean, what: string, timeoutMs?: number) => Promise<Line[]>;
  stop: () => Promise<number | null>;
}

const children: ChildProcess[] = [];

/** Kills every child serveChild() started that is still running (for afterAll). */
export function killServeChildren(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
}

export interface ServeChildOptions {
  /** Added to the child's environment. */
  env?: Record<string, string>;
  /** --interval-ms (default 200). */
  intervalMs?: number;
  /** How long to wait for the "serving" line (default 20 s). */
  startTimeoutMs?: number;
}

/** Starts `serve --simulate <simulate> --port 0 --interval-ms <intervalMs> <args>` and waits for its URL. */
export async function serveChild(simulate: string, args: string[], options: ServeChildOptions = {}): Promise<Served> {
  const { env = {}, intervalMs = 200, startTimeoutMs = 20_000 } = options;
  const cli = path.join(PACKAGE_ROOT, 'dist', 'cli.js');
  const child = spawn(process.execPath, [cli, 'serve', '--simulate', simulate, '--port', '0', '--interval-ms', String(intervalMs), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const url = await waitFor(() => /serving (http:\/\/\S+\/metrics)/.exec(out)?.[1], startTimeoutMs);
  const scrape = async () => parseExposition(await (await fetch(url)).text()).lines;
  return {
    child,
    output: () => out,
    scrape,
    until: async (check, what, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      let lines = await scrape();
      while (!check(lines)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${out}`);
        await sleep(100);
        lines = await scrape();
      }
      return lines;
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      return child.exitCode;
    },
  };
}
