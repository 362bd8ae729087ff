/** `gpu-telemetry scenarios`: the simulator scenarios shipped with the package. */
import { listScenarios } from '../simulator.js';
import { parse, type Io } from './common.js';

export const SCENARIOS_HELP = `Usage: gpu-telemetry scenarios [--json]

Lists the driver-simulator scenarios shipped with the package. Use one with
--simulate NAME on any command, or { simulate: NAME } in openGpuTelemetry().
`;

export function scenariosCommand(argv: string[], io: Io): number {
  const { values } = parse(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    io.out(SCENARIOS_HELP);
    return 0;
  }
  const list = listScenarios();
  if (values.json) {
    io.out(`${JSON.stringify(list.map(({ name, description }) => ({ name, description })), null, 2)}\n`);
  } else {
    const width = Math.max(0, ...list.map((s) => s.name.length));
    for (const s of list) io.out(`${s.name.padEnd(width)}  ${s.description}\n`);
  }
  return 0;
}
