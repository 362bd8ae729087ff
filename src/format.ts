/** Human-readable values with their units, for the CLI. Base-unit numbers stay in JSON output. */
import type { FieldUnit } from './fields.js';

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function scaled(value: number, step: number, units: string[], digits = 2): string {
  let v = value;
  let i = 0;
  while (Math.abs(v) >= step && i < units.length - 1) {
    v /= step;
    i++;
  }
  return `${i === 0 ? String(Math.round(v * 100) / 100) : v.toFixed(digits)} ${units[i]}`;
}

export function formatValue(unit: FieldUnit, value: number | null): string {
  if (value === null) return '—';
  switch (unit) {
    case 'Hz':
      return scaled(value, 1000, ['Hz', 'kHz', 'MHz', 'GHz']);
    case 'bytes':
      return scaled(value, 1024, BINARY);
    case 'bytes/s':
      return `${scaled(value, 1024, BINARY)}/s`;
    case 'W':
      return `${value.toFixed(1)} W`;
    case 'J':
      return value >= 3.6e6 ? `${(value / 3.6e6).toFixed(2)} kWh` : `${value.toFixed(0)} J`;
    case 'Cel':
      return `${value.toFixed(0)} °C`;
    case 'ratio':
      return `${(value * 100).toFixed(1)} %`;
    case 'bitmask':
      return `0x${value.toString(16)}`;
    case 'pstate':
      return `P${value}`;
    case 'generation':
      return `gen ${value}`;
    case 'lanes':
      return `x${value}`;
    case 'links':
      return `${value} link${value === 1 ? '' : 's'}`;
    case 'boolean':
      return value ? 'yes' : 'no';
    case 'xid':
      return value === 0 ? 'none' : `XID ${value}`;
    case 'errors':
    case 'count':
      return String(value);
  }
}
