/** A small parser of the Prometheus text exposition format, for tests. */

export interface Line {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition into sample lines (enough for these tests). */
export function parseExposition(text: string): { lines: Line[]; types: Map<string, string> } {
  const lines: Line[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split('\n')) {
    if (raw.startsWith('# TYPE ')) {
      const [, , name, type] = raw.split(' ');
      types.set(name, type);
      continue;
    }
    if (raw === '' || raw.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(raw);
    if (!m) throw new Error(`bad exposition line: ${raw}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[3] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
      const eq = pair.indexOf('=');
      labels[pair.slice(0, eq)] = pair.slice(eq + 2, -1);
    }
    lines.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return { lines, types };
}

/** The values of every sample of `name` whose labels include `labels` (a subset match), in order. */
export function valuesOf(lines: Line[], name: string, labels: Record<string, string> = {}): number[] {
  return lines.filter((l) => l.name === name && Object.entries(labels).every(([k, v]) => l.labels[k] === v)).map((l) => l.value);
}

/** The first such value in a scrape body, or undefined when the series is absent. */
export function valueIn(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  return valuesOf(parseExposition(body).lines, name, labels)[0];
}
