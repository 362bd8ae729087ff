/**
 * The driver simulator as a product feature: list the shipped scenarios, resolve a name or a file
 * to scenario text, and find the simulator library that plays the driver's part.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpuTelemetryError } from './errors.js';
import { SCENARIO_DIR, simulatorLibraryPath } from './paths.js';

export interface ScenarioInfo {
  name: string;
  description: string;
  path: string;
}

export interface ResolvedScenario {
  name: string;
  path: string;
  text: string;
  /** Which simulated driver generation the scenario asks for. */
  library: 'current' | 'legacy';
  libraryPath: string;
  /** The meminfo file the scenario's unified-memory devices read (its "meminfo" key), if any. */
  meminfoPath: string | null;
  /** Whether the simulated machine has DCGM (the scenario's "dcgm" key). */
  hasDcgm: boolean;
}

const MAX_SCENARIO_BYTES = 4 << 20;

/** The scenarios shipped with the package, by name. */
export function listScenarios(): ScenarioInfo[] {
  let files: string[];
  try {
    files = fs.readdirSync(SCENARIO_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files.sort().map((file) => {
    const full = path.join(SCENARIO_DIR, file);
    let description = '';
    try {
      const parsed = JSON.parse(fs.readFileSync(full, 'utf8')) as { description?: unknown };
      if (typeof parsed.description === 'string') description = parsed.description;
    } catch {
      description = '(unreadable)';
    }
    return { name: file.slice(0, -'.json'.length), description, path: full };
  });
}

function looksLikePath(s: string): boolean {
  return s.includes('/') || s.endsWith('.json');
}

/** Resolves `simulate` (a shipped scenario name, or a path to a scenario JSON file). */
export function resolveScenario(simulate: string): ResolvedScenario {
  let file: string;
  let name: string;
  if (looksLikePath(simulate)) {
    file = path.resolve(simulate);
    name = path.basename(file, '.json');
  } else {
    const known = listScenarios();
    const match = known.find((s) => s.name === simulate);
    if (!match) {
      throw new GpuTelemetryError(
        'INVALID_OPTION',
        `options.simulate: unknown scenario "${simulate}"; shipped scenarios are ${known.map((s) => s.name).join(', ')} ` +
          '(or give a path to a scenario .json file)',
        { option: 'simulate' },
      );
    }
    file = match.path;
    name = match.name;
  }
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > MAX_SCENARIO_BYTES) throw new Error(`${stat.size} bytes; the limit is ${MAX_SCENARIO_BYTES}`);
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new GpuTelemetryError('INVALID_SCENARIO', `cannot read scenario ${file}: ${(cause as Error).message}`, {
      cause,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
  } catch (cause) {
    throw new GpuTelemetryError('INVALID_SCENARIO', `scenario ${file} is not valid JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  const library = readLibrary(parsed);
  const libraryPath = simulatorLibraryPath(library);
  if (!libraryPath) {
    throw new GpuTelemetryError(
      'LIBRARY_NOT_FOUND',
      `the simulator library (${library} driver generation) is not built; run "npm rebuild gpu-telemetry"`,
    );
  }
  let meminfoPath: string | null = null;
  const meminfo = (parsed as { meminfo?: unknown }).meminfo;
  if (meminfo !== undefined) {
    if (typeof meminfo !== 'string' || meminfo === '') {
      throw new GpuTelemetryError('INVALID_SCENARIO', `scenario ${file}: "meminfo" must be a file path (relative to the scenario)`);
    }
    meminfoPath = path.resolve(path.dirname(file), meminfo);
  }
  const hasDcgm = (parsed as { dcgm?: unknown }).dcgm !== undefined;
  return { name, path: file, text, library, libraryPath, meminfoPath, hasDcgm };
}

function readLibrary(parsed: unknown): 'current' | 'legacy' {
  if (parsed && typeof parsed === 'object' && 'driver' in parsed) {
    const driver = (parsed as { driver?: { library?: unknown } }).driver;
    if (driver && driver.library === 'legacy') return 'legacy';
  }
  return 'current';
}
