import type { RunSummary } from '../engine/run.js';
import { longPoleLine } from '../engine/critical-path.js';
import { formatAge, formatDuration, paint } from '../output.js';
import type { Plan } from '../plan/types.js';
import { sanitizeDeep } from '../text/sanitize.js';

/** How a finished restore or drill is told on stdout (restore and drill print the same lines). */

function vsTarget(ms: number | undefined, targetMinutes: number | undefined): string {
  if (ms === undefined) return 'not measured';
  if (targetMinutes === undefined) return `${formatDuration(ms)} (no target set)`;
  const met = ms <= targetMinutes * 60_000;
  return `${formatDuration(ms)} (target ${formatDuration(targetMinutes * 60_000)}: ${met ? 'met' : 'MISSED'})`;
}

const outcomeWords: Record<string, string> = {
  restored: 'restored and healthy',
  unhealthy: 'restored, but health checks failed (restored state kept)',
  'rolled-back': 'failed and rolled back',
  'rollback-incomplete': 'failed, and the rollback is INCOMPLETE: manual action needed',
  failed: 'drill failed: the backup did not restore cleanly (scratch services discarded)',
  interrupted: 'interrupted and rolled back',
  refused: 'refused (nothing was touched)',
};

/** The human summary printed on stdout. */
export function formatSummary(rawSummary: RunSummary, rawPlan: Plan, evidence: string | undefined, color = false): string {
  // Errors, state lines and names carry text from outside: one line each, control characters escaped.
  const summary = sanitizeDeep(rawSummary);
  const plan = sanitizeDeep(rawPlan);
  const c = paint(color);
  const lines: string[] = [];
  const good = summary.exitCode === 0;
  lines.push(
    `${c('bold', 'Result:')} ${c(good ? 'green' : summary.exitCode === 4 ? 'yellow' : 'red', outcomeWords[summary.outcome] ?? summary.outcome)} (exit ${summary.exitCode})`,
  );
  if (summary.error && !good) lines.push(`${c('bold', 'Why:')} ${summary.error}`);
  lines.push(`${c('bold', 'Backup:')} ${plan.backup.id}, taken ${plan.backup.time}`);
  lines.push(
    summary.outcome === 'unhealthy'
      ? `${c('bold', 'RTO:')} not achieved (health checks failed)${summary.rtoMs !== undefined ? `; ${formatDuration(summary.rtoMs)} from confirm to the end of the failed checks` : ''}`
      : `${c('bold', 'RTO:')} ${vsTarget(summary.outcome === 'restored' ? summary.rtoMs : undefined, plan.objectives.rtoMinutes)}`,
  );
  lines.push(
    `${c('bold', 'RPO:')} ${summary.rpoMs === undefined ? 'not measured' : `${formatAge(summary.rpoMs)} of data lost at most${plan.objectives.rpoMinutes !== undefined ? ` (target ${formatAge(plan.objectives.rpoMinutes * 60_000)}: ${summary.rpoMs <= plan.objectives.rpoMinutes * 60_000 ? 'met' : 'MISSED'})` : ' (no target set)'}`}`,
  );
  if (summary.criticalPath && summary.criticalPath.steps.length > 0)
    lines.push(`${c('bold', 'Critical path:')} ${longPoleLine(summary.criticalPath)}`);
  if (summary.safetyCopies.length > 0) {
    lines.push(c('bold', 'Safety copies:'));
    for (const copy of summary.safetyCopies) lines.push(`  - ${copy.location} (${copy.description})`);
  }
  lines.push(c('bold', 'State:'));
  for (const s of summary.state) lines.push(`  - ${s}`);
  if (summary.nextSteps.length > 0) {
    lines.push(c('bold', 'Next steps:'));
    for (const s of summary.nextSteps) lines.push(/^\d+\. /.test(s) ? `    ${s}` : `  - ${s}`);
  }
  if (evidence) lines.push(`${c('bold', 'Evidence:')} ${evidence}`);
  return lines.join('\n');
}
