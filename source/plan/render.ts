import { formatBytes, paint } from '../output.js';
import type { Plan } from './types.js';
import { displayAction, type ScriptTable } from '../actions/describe.js';
import { sanitizeDeep } from '../text/sanitize.js';

/** What the PostgreSQL dump records about itself: database, pg_dump version, creation time (undefined without a dump). */
export function describeDump(plan: Plan): string | undefined {
  const pgComp = plan.backup.components.find((c) => c.kind === 'postgres');
  if (!pgComp) return undefined;
  const d = plan.facts.postgres?.dump;
  const plain = pgComp.format === 'pg-plain' || pgComp.format === 'pg-plain-gz';
  const parts = [
    `database ${d?.database ?? (plain ? 'not recorded (plain dump)' : 'unknown')}`,
    `pg_dump ${d?.pgDumpVersion ?? 'unknown'}`,
    `created ${d?.createdAt ?? (plain ? 'not recorded (plain dump)' : 'unknown')}`,
  ];
  return `  PostgreSQL dump: ${parts.join(', ')}`;
}

/** The plan as the operator reads it: numbered steps, DESTRUCTIVE markers, safety copies, undo, exact argv. */
export function renderPlanText(rawPlan: Plan, color = false): string {
  // File names, metadata and probed facts come from outside: one line each, control characters escaped.
  const plan = sanitizeDeep(rawPlan);
  const p = paint(color);
  const lines: string[] = [];
  const scripts: ScriptTable = new Map();
  lines.push(p('bold', `Restore plan: recipe ${plan.recipe.name}, backup ${plan.backup.id} (${plan.mode})`));
  lines.push(`Backup taken ${plan.backup.time} (${plan.backup.layout}, ${plan.backup.location})`);
  for (const c of plan.backup.components)
    lines.push(`  ${c.kind.padEnd(10)} ${c.format.padEnd(18)} ${formatBytes(c.size).padStart(9)}  ${c.path}`);
  const dumpLine = describeDump(plan);
  if (dumpLine) lines.push(dumpLine);
  lines.push('Targets:');
  for (const [kind, text] of Object.entries(plan.targets)) lines.push(`  ${kind.padEnd(10)} ${text}`);
  lines.push(
    `Options: ${plan.options.parallel ? 'parallel lanes' : 'one step at a time'}, pg_restore --jobs ${plan.options.jobs}, missing roles: ${plan.options.missingRoles}` +
      `${plan.options.only ? `, only ${plan.options.only.join(',')}` : ''}; stamp ${plan.stamp}`,
  );
  if (plan.facts.probedAt) lines.push(`Facts probed ${plan.facts.probedAt} (read-only).`);
  else lines.push('Facts: not probed (--offline); taken from the recipe.');
  for (const w of plan.warnings) lines.push(p('yellow', `Warning: ${w}`));
  lines.push('');
  plan.steps.forEach((step, i) => {
    const marker = step.destructive ? p('red', ' DESTRUCTIVE') : '';
    const deps =
      step.dependsOn.length > 0 ? p('dim', `  [after ${step.dependsOn.join(', ')}; lane ${step.lane}]`) : p('dim', `  [lane ${step.lane}]`);
    lines.push(`${String(i + 1).padStart(2)}. ${p('bold', step.title)}${marker}${deps}`);
    if (step.destroys) lines.push(`    Destroys: ${step.destroys}`);
    if (step.safetyCopy)
      lines.push(
        `    Safety copy: ${step.safetyCopy.kind === 'none' ? 'NONE (recorded decision)' : `${step.safetyCopy.kind} -> ${step.safetyCopy.location}`}`,
      );
    for (const a of step.actions) lines.push(`    - ${displayAction(a, scripts)}`);
    if (step.undo) {
      lines.push(`    Undo: ${step.undo.title}`);
      for (const a of step.undo.actions) lines.push(`      - ${displayAction(a, scripts).replace(/\n {6}/g, '\n        ')}`);
    }
  });
  if (scripts.size > 0) {
    lines.push('');
    lines.push('Scripts (constant; paths and names are passed as $1, $2, ... never spliced in):');
    for (const [text, name] of scripts) {
      lines.push(`  ${name.slice(2, -1)}:`);
      for (const l of text.split('\n')) lines.push(`    ${l}`);
    }
  }
  const copies = plan.steps.flatMap((s) => (s.safetyCopy ? [s.safetyCopy] : []));
  lines.push('');
  lines.push(
    `Safety copies: ${copies.length === 0 ? 'none' : copies.map((c) => (c.kind === 'none' ? `${c.component}: none` : `${c.component}: ${c.location}`)).join('; ')}`,
  );
  return lines.join('\n');
}
