/** Shared bits of the CLI commands: argument parsing with usage errors, and output. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GpuTelemetryError } from '../errors.js';

export class UsageError extends Error {}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

type Parsed<T extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>;

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return n;
}

/** One line for an error, with the vendor detail an operator needs. */
export function describeError(e: unknown): string {
  if (e instanceof GpuTelemetryError) {
    const parts = [`${e.code}: ${e.message}`];
    if (e.libraryPath) parts.push(`  library: ${e.libraryPath}`);
    return parts.join('\n');
  }
  return e instanceof Error ? e.message : String(e);
}
