import { sanitizeText } from '../text/sanitize.js';
import { formatAge, formatDuration } from '../output.js';
import type { FleetRow, FleetView } from './index.js';

function lastDrillCells(r: FleetRow): [string, string] {
  if (!r.lastDrill) return ['never', '-'];
  return [
    r.lastDrill.at.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z'),
    r.lastDrill.exitCode !== null ? `${r.lastDrill.outcome} (exit ${r.lastDrill.exitCode})` : r.lastDrill.outcome,
  ];
}

function rtoCell(r: FleetRow): string {
  const pts = r.rtoTrend.points;
  if (pts.length === 0) return '-';
  const series = pts
    .slice(-3)
    .map((ms) => formatDuration(ms))
    .join(' -> ');
  const target =
    r.rtoTargetMinutes !== null
      ? ` (target ${r.rtoTargetMinutes}m${(pts.at(-1) ?? 0) > r.rtoTargetMinutes * 60_000 ? ' MISSED' : ''})`
      : '';
  const dir =
    r.rtoTrend.direction === 'n/a'
      ? ''
      : ` ${r.rtoTrend.direction}${r.rtoTrend.changePct !== null ? ` ${r.rtoTrend.changePct >= 0 ? '+' : ''}${r.rtoTrend.changePct}%` : ''}`;
  return `${series}${dir}${target}`;
}

function overdueCell(r: FleetRow): string {
  if (!r.overdue) return `no (${r.drillAgeDays ?? 0}d of ${r.intervalDays}d)`;
  return r.drillAgeDays === null ? 'OVERDUE (no successful drill)' : `OVERDUE (${r.drillAgeDays}d > ${r.intervalDays}d)`;
}

/** The fleet table: one line per host and recipe. Names from other hosts' evidence are sanitised. */
export function renderFleet(view: FleetView): string[] {
  const header = ['HOST', 'RECIPE', 'LAST DRILL (UTC)', 'OUTCOME', 'DRILL RTO', 'OVERDUE', 'BACKUP AGE'];
  const rows = view.rows.map((r) => {
    const [at, outcome] = lastDrillCells(r);
    return [
      sanitizeText(r.host, 40),
      sanitizeText(r.recipe, 40),
      at,
      outcome,
      rtoCell(r),
      overdueCell(r),
      r.newestBackup ? formatAge(r.newestBackup.ageSeconds * 1000) : '-',
    ].concat(r.damagedEvidence > 0 ? [`${r.damagedEvidence} run(s) with damaged evidence`] : []);
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((x) => (x[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i >= header.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
