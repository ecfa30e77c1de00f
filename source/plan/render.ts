import { formatBytes, paint } from '../output.js';
import type { Check } from '../recipe/schema.js';
import type { Plan } from './types.js';
import type { PlannedAction } from '../actions/types.js';
import { sanitizeDeep } from '../text/sanitize.js';

/** Multi-line `sh -c` scripts shown once at the end instead of inline (display only). */
export type ScriptTable = Map<string, string>;

function displayArgv(argv: readonly string[], scripts?: ScriptTable): string {
  return argv
    .map((a) => {
      if (!scripts || !a.includes('\n')) return shellQuote(a);
      let name = scripts.get(a);
      if (!name) {
        name = `"$SCRIPT_${scripts.size + 1}"`;
        scripts.set(a, name);
      }
      return name;
    })
    .join(' ');
}

/** One line saying what a check tests. */
export function describeCheck(c: Check): string {
  if ('http' in c) return `GET ${c.http.url} answers ${c.http.status}${c.http.bodyContains ? ` containing "${c.http.bodyContains}"` : ''}`;
  if ('tcp' in c) return `tcp ${c.tcp.host}:${c.tcp.port} accepts`;
  if ('sql' in c) return `SQL ${c.sql.query}${c.sql.expect !== undefined ? ` = ${c.sql.expect}` : ''}${c.sql.minRows !== undefined ? ` >= ${c.sql.minRows}` : ''}`;
  if ('redis' in c) return `redis ${c.redis.command.join(' ')}${c.redis.expect !== undefined ? ` = ${c.redis.expect}` : ''}${c.redis.min !== undefined ? ` >= ${c.redis.min}` : ''}`;
  if ('promql' in c) return `PromQL ${c.promql.query} has >= ${c.promql.minSeries} series${c.promql.time ? ` at ${c.promql.time}` : ''}`;
  return `${shellJoin(c.command.argv)} exits ${c.command.expectExitCode}`;
}

/** Quote one argument for display in a POSIX shell (the plan never runs a shell string). */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_\-+=.,/:@%^]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** One line describing an action, with its exact command when it has one. */
export function describeAction(a: PlannedAction, scripts?: ScriptTable): string {
  switch (a.type) {
    case 'exec': {
      const input = a.input ? ` < ${shellQuote(a.input.file)}${a.input.gunzip ? ' (gunzip in-process)' : ''}${a.input.filter ? ` (filter: ${a.input.filter})` : ''}${a.input.psqlRestrict ? ' (psql \\restrict with a per-run key: meta-commands refused)' : ''}` : '';
      const env = a.envFrom ? ` [env: ${Object.entries(a.envFrom).map(([k, v]) => `${k} from $${v}`).join(', ')}]` : '';
      return `${a.purpose}\n      $ ${displayArgv(a.argv, scripts)}${input}${env}  (${a.runsIn})`;
    }
    case 'wait-command':
      return `${a.purpose} (until exit ${a.untilExit}, up to ${a.timeoutSeconds}s)\n      $ ${displayArgv(a.command.argv, scripts)}  (${a.command.runsIn})`;
    case 'wait-tcp':
      return `${a.purpose} (tcp ${a.host}:${a.port} ${a.until === 'down' ? 'refusing' : 'accepting'}, up to ${a.timeoutSeconds}s)`;
    case 'wait-http':
      return `${a.purpose} (${a.url} ${a.until === 'down' ? 'not answering' : 'answering'}, up to ${a.timeoutSeconds}s)`;
    case 'extract-tar':
      return `${a.purpose} (checked, extracted into a temp dir, renamed to ${a.dest})`;
    case 'move':
      return `${a.purpose}: ${a.from} -> ${a.to}${a.ifExists ? ' (if it exists)' : ''}`;
    case 'copy-file':
      return `${a.purpose}: ${a.from} -> ${a.to}`;
    case 'check':
      return `${a.purpose}: ${describeCheck(a.check)} (timeout ${a.check.timeoutSeconds}s, ${a.check.retries} retries)`;
    case 'note':
      return a.purpose;
  }
}

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
  for (const c of plan.backup.components) lines.push(`  ${c.kind.padEnd(10)} ${c.format.padEnd(18)} ${formatBytes(c.size).padStart(9)}  ${c.path}`);
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
    const deps = step.dependsOn.length > 0 ? p('dim', `  [after ${step.dependsOn.join(', ')}; lane ${step.lane}]`) : p('dim', `  [lane ${step.lane}]`);
    lines.push(`${String(i + 1).padStart(2)}. ${p('bold', step.title)}${marker}${deps}`);
    if (step.destroys) lines.push(`    Destroys: ${step.destroys}`);
    if (step.safetyCopy) lines.push(`    Safety copy: ${step.safetyCopy.kind === 'none' ? 'NONE (recorded decision)' : `${step.safetyCopy.kind} -> ${step.safetyCopy.location}`}`);
    for (const a of step.actions) lines.push(`    - ${describeAction(a, scripts)}`);
    if (step.undo) {
      lines.push(`    Undo: ${step.undo.title}`);
      for (const a of step.undo.actions) lines.push(`      - ${describeAction(a, scripts).replace(/\n {6}/g, '\n        ')}`);
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
  lines.push(`Safety copies: ${copies.length === 0 ? 'none' : copies.map((c) => (c.kind === 'none' ? `${c.component}: none` : `${c.component}: ${c.location}`)).join('; ')}`);
  return lines.join('\n');
}
