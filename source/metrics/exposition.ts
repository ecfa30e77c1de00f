/**
 * The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector
 * and the Pushgateway read it: `# HELP`, `# TYPE`, then `name{label="value"} number` lines. No
 * timestamps (the textfile collector rejects them). Label values are escaped, never trusted.
 */

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Render families; families without samples are left out (an empty TYPE block is noise). */
export function renderExposition(families: MetricFamily[]): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new Error(`metric ${f.name} rendered twice`);
    seen.add(f.name);
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
    lines.push(`# TYPE ${f.name} ${f.type}`);
    const keys = new Set<string>();
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).sort(([a], [b]) => a.localeCompare(b));
      for (const [k] of labels) if (!LABEL.test(k) || k.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(k)}`);
      const key = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
      if (keys.has(key)) throw new Error(`metric ${f.name}{${key}} rendered twice`);
      keys.add(key);
      lines.push(`${f.name}${key ? `{${key}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
