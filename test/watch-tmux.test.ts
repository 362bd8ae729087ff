/**
 * `gpu-telemetry watch` in a real terminal (tmux, 120×40 like a laptop's half screen): the frame
 * fits, the header and GPU 0 stay on screen, refreshes redraw in place on the alternate screen
 * (nothing scrolls into the scrollback), a resize is followed, and q / SIGTERM give the terminal
 * back as it was (main screen, cursor shown). Skipped, with the reason printed, without tmux.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { waitFor } from './helpers.js';
import { TMUX } from './system-packages.js';

if (!TMUX) process.stderr.write('SKIP: tmux is not installed (Debian package tmux); the watch terminal tests need it\n');

// A private tmux server (its own socket in a folder of ours): never touches anyone else's sessions.
const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-watch-tmux-'));
const socket = path.join(socketDir, 'tmux.sock');
const tmux = (...args: string[]) => execFileSync(TMUX!, ['-S', socket, ...args], { encoding: 'utf8' });
const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli.js');

afterAll(() => {
  try {
    if (TMUX) tmux('kill-server');
  } catch {
    // already gone
  }
  fs.rmSync(socketDir, { recursive: true, force: true });
});

/** Starts `watch` in a new detached session of the given size, after a marker line on the normal screen. */
function start(session: string, width: number, height: number, args: string[]): void {
  const command =
    `printf 'BEFORE-WATCH\\n'; "${process.execPath}" "${CLI}" watch ${args.join(' ')}; ` +
    `echo "WATCH-EXIT=$?"; sleep 600`;
  tmux('new-session', '-d', '-s', session, '-x', String(width), '-y', String(height), command);
}

const screen = (session: string) => tmux('capture-pane', '-p', '-t', session).replace(/\n+$/, '').split('\n');
const show = (session: string, format: string) => tmux('display-message', '-p', '-t', session, format).trim();

/** Waits for a frame that shows every GPU row; returns the screen's lines. */
function frameWith(session: string, gpus: number, check: (lines: string[]) => boolean = () => true): Promise<string[]> {
  return waitFor(() => {
    const lines = screen(session);
    const rows = lines.filter((l) => /^ {2}\d {2}/.test(l));
    return rows.length === gpus && check(lines) ? lines : undefined;
  }, 30_000, 100);
}

/** The pid of the node process running in the pane (the shell's child). */
function watchPid(session: string): Promise<number> {
  const shell = Number(show(session, '#{pane_pid}'));
  return waitFor(() => {
    const children = fs.readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.map(Number).find((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('watch'));
  }, 10_000);
}

describe.skipIf(!TMUX)('gpu-telemetry watch in a 120×40 terminal', () => {
  it('draws 8 GPUs in place on the alternate screen, follows a resize, and q restores the terminal', async () => {
    const s = 'watch-q';
    start(s, 120, 40, ['--simulate', 'h100-sxm-8', '--interval-ms', '200']);
    const first = await frameWith(s, 8);
    expect(show(s, '#{alternate_on}')).toBe('1');
    expect(show(s, '#{cursor_flag}')).toBe('0'); // hidden while drawing
    expect(first.length).toBeLessThanOrEqual(40);
    expect(first[0]).toMatch(/^gpu-telemetry watch · driver 550\.90\.07 · 8 GPU\(s\) · \d\d:\d\d:\d\d · SIMULATED \(h100-sxm-8\)/);
    expect(first.join('\n')).not.toMatch(/BEFORE-WATCH/); // the normal screen is put aside, not scrolled
    const rows = first.filter((l) => /^ {2}\d {2}/.test(l));
    expect(rows.map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const row of rows) expect(row).toMatch(/\/79\.6 GiB {2}nvml /);

    // A later frame (the clock in the header moves) replaces this one: no scrollback, header still on top.
    const time = first[0].match(/\d\d:\d\d:\d\d/)![0];
    const later = await frameWith(s, 8, (l) => /^gpu-telemetry watch/.test(l[0]) && !l[0].includes(time));
    expect(later.filter((l) => /^gpu-telemetry watch/.test(l))).toHaveLength(1);
    expect(show(s, '#{history_size}')).toBe('0');

    // Resize to 80×20: the next frame fits the new size.
    tmux('resize-window', '-t', s, '-x', '80', '-y', '20');
    const small = await frameWith(s, 8, (l) => l.every((line) => line.length <= 80) && /^gpu-telemetry watch/.test(l[0]));
    expect(small.length).toBeLessThanOrEqual(20);
    expect(show(s, '#{history_size}')).toBe('0');

    tmux('send-keys', '-t', s, 'q');
    const after = await waitFor(() => {
      const lines = screen(s);
      return lines.some((l) => l === 'WATCH-EXIT=0') ? lines : undefined;
    }, 30_000, 100);
    expect(show(s, '#{alternate_on}')).toBe('0');
    expect(show(s, '#{cursor_flag}')).toBe('1');
    expect(after[0]).toBe('BEFORE-WATCH'); // the shell's screen is back as it was
    expect(after.join('\n')).not.toMatch(/gpu-telemetry watch/);
  });

  it('SIGTERM also restores the terminal and exits 0', async () => {
    const s = 'watch-term';
    start(s, 120, 40, ['--simulate', 'h100-sxm-8', '--interval-ms', '200']);
    await frameWith(s, 8);
    process.kill(await watchPid(s), 'SIGTERM');
    await waitFor(() => screen(s).includes('WATCH-EXIT=0'), 30_000, 100);
    expect(show(s, '#{alternate_on}')).toBe('0');
    expect(show(s, '#{cursor_flag}')).toBe('1');
  });
});
