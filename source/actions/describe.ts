import type { Redactor } from '../exec/redact.js';
import type { Check } from '../recipe/schema.js';
import { shellQuote } from '../text/shell.js';
import type { PlannedAction, PlannedCommand } from './types.js';

/**
 * The one place an action is said to people, in two forms:
 * - display: what the plan shows for review (`restore-assistant plan`, the guide's plan screen);
 * - pasteable: the command a person runs by hand (manual rollback steps, undo lists), redacted.
 */

/** Multi-line `sh -c` scripts shown once at the end instead of inline (display only). */
export type ScriptTable = Map<string, string>;

/** True for an argv that carries a multi-line `sh -c` helper script. */
function hasScript(argv: readonly string[]): boolean {
  return argv.some((a) => a.includes('\n'));
}

function displayArgv(argv: readonly string[], scripts?: ScriptTable): string {
  return argv
    .map((a) => {
      if (!a.includes('\n')) return shellQuote(a);
      // One line (the plan screen): the script by its size; its purpose is said before the command.
      if (!scripts) return `<${a.split('\n').length}-line script>`;
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
  if ('sql' in c)
    return `SQL ${c.sql.query}${c.sql.expect !== undefined ? ` = ${c.sql.expect}` : ''}${c.sql.minRows !== undefined ? ` >= ${c.sql.minRows}` : ''}`;
  if ('redis' in c)
    return `redis ${c.redis.command.join(' ')}${c.redis.expect !== undefined ? ` = ${c.redis.expect}` : ''}${c.redis.min !== undefined ? ` >= ${c.redis.min}` : ''}`;
  if ('promql' in c)
    return `PromQL ${c.promql.query} has >= ${c.promql.minSeries} series${c.promql.time ? ` at ${c.promql.time}` : c.promql.freshScrape === false ? ' at the newest stored sample (no new scrape needed)' : ''}`;
  return `${c.command.argv.map(shellQuote).join(' ')} exits ${c.command.expectExitCode}`;
}

/** The `$ argv < input [env]  (where)` line of a command, for display. */
function displayCommand(cmd: PlannedCommand, scripts?: ScriptTable): string {
  const input = cmd.input
    ? ` < ${shellQuote(cmd.input.file)}${cmd.input.gunzip ? ' (gunzip in-process)' : ''}${cmd.input.filter ? ` (filter: ${cmd.input.filter})` : ''}${cmd.input.psqlRestrict ? ' (psql \\restrict with a per-run key: meta-commands refused)' : ''}${cmd.input.parallel ? ` (split at pg_dump's section markers, on ${cmd.input.parallel.jobs} connections of this command)` : ''}`
    : '';
  const env = cmd.envFrom
    ? ` [env: ${Object.entries(cmd.envFrom)
        .map(([k, v]) => `${k} from $${v}`)
        .join(', ')}]`
    : '';
  return `$ ${displayArgv(cmd.argv, scripts)}${input}${env}  (${cmd.runsIn})`;
}

/** What an action does, in words (without its command line). */
function displayPurpose(a: PlannedAction): string {
  switch (a.type) {
    case 'exec':
      return a.purpose;
    case 'wait-command':
      return `${a.purpose} (until exit ${a.untilExit}, up to ${a.timeoutSeconds}s)`;
    case 'wait-tcp':
      return `${a.purpose} (tcp ${a.host}:${a.port} ${a.until === 'down' ? 'refusing' : 'accepting'}, up to ${a.timeoutSeconds}s)`;
    case 'wait-http':
      return `${a.purpose} (${a.url} ${a.until === 'down' ? 'not answering' : 'answering'}, up to ${a.timeoutSeconds}s)`;
    case 'extract-tar':
      return `${a.purpose} (checked, extracted into a temp dir, renamed to ${a.dest})`;
    case 'move':
      return `${a.purpose}: ${a.from} -> ${a.to}${a.ifExists ? ' (if it exists)' : ''}${a.expect ? ' (only what this run put there: checked by device, inode and real path)' : ''}${a.displaceTo ? ` (anything at ${a.to} by then is moved to ${a.displaceTo})` : ''}`;
    case 'copy-file':
      return `${a.purpose}: ${a.from} -> ${a.to}`;
    case 'install-aof':
      return `${a.purpose}: ${a.from} -> ${a.dir}/${a.base}, manifest ${a.manifest} (built in a private staging dir, renamed into place)`;
    case 'remove':
      return `${a.purpose}: ${a.paths.map((x) => x.path).join(', ')} (only what this run put there: checked by device, inode and real path)`;
    case 'record-identity':
      return `${a.purpose}: ${a.paths.map((x) => x.path).join(', ')}`;
    case 'write-file':
      return `${a.purpose}: ${a.mode === 'append' ? 'append to' : 'create'} ${a.path} (${a.content.split('\n').filter((l) => l !== '').length} line${a.content.split('\n').filter((l) => l !== '').length === 1 ? '' : 's'})`;
    case 'follow-recovery':
      return `${a.purpose} (replayed LSN from ${a.startLsn}${a.targetLsn ? ` to ${a.targetLsn}` : ''}, until out of recovery, up to ${a.timeoutSeconds}s)`;
    case 'check':
      return `${a.purpose}: ${describeCheck(a.check)} (timeout ${a.check.timeoutSeconds}s, ${a.check.retries} retries)`;
    case 'note':
      return a.purpose;
  }
}

function commandOf(a: PlannedAction): PlannedCommand | undefined {
  return a.type === 'exec' ? a : a.type === 'wait-command' || a.type === 'follow-recovery' ? a.command : undefined;
}

/** Display form, as the text plan prints it: what it does, then its exact command on the next line. */
export function displayAction(a: PlannedAction, scripts?: ScriptTable): string {
  const cmd = commandOf(a);
  return cmd ? `${displayPurpose(a)}\n      ${displayCommand(cmd, scripts)}` : displayPurpose(a);
}

/** Display form in one line, as the plan screen shows it: the command for a command, the words otherwise. */
export function displayActionLine(a: PlannedAction): string {
  const cmd = commandOf(a);
  if (a.type === 'exec' && cmd) return hasScript(cmd.argv) ? `${a.purpose}: ${displayCommand(cmd)}` : displayCommand(cmd);
  return cmd ? `${displayPurpose(a)}: ${displayCommand(cmd)}` : displayPurpose(a);
}

/** A command line a person can paste (POSIX sh), for manual steps. Redacted. */
export function pasteableCommand(cmd: PlannedCommand, redact: Redactor): string {
  const env = Object.entries(cmd.envFrom ?? {}).map(([child, from]) => `${child}="$${from}" `);
  const argv = cmd.argv.map((a) => shellQuote(redact(a))).join(' ');
  let line = `${env.join('')}${argv}`;
  if (cmd.input) {
    const file = shellQuote(cmd.input.file);
    const filter = cmd.input.filter === 'strip-ownership-and-acl' ? ` | grep -Ev '^(ALTER .* OWNER TO .*|GRANT .*|REVOKE .*);$'` : '';
    line =
      cmd.input.gunzip || filter ? `${cmd.input.gunzip ? `gunzip -c ${file}` : `cat ${file}`}${filter} | ${line}` : `${line} < ${file}`;
  }
  return line;
}

/** Pasteable form: the command a person would run by hand (or a `#` comment for waits and checks). Redacted. */
export function pasteableAction(action: PlannedAction, redact: Redactor): string {
  switch (action.type) {
    case 'exec':
      return pasteableCommand(action, redact);
    case 'wait-tcp':
      return `# wait until ${action.host}:${action.port} ${action.until === 'down' ? 'refuses' : 'accepts'} connections (${action.purpose})`;
    case 'wait-http':
      return `# wait until ${redact(action.url)} ${action.until === 'down' ? 'no longer answers' : `answers ${action.expectStatus ?? '2xx'}`} (${action.purpose})`;
    case 'wait-command':
      return `# wait until \`${pasteableCommand(action.command, redact)}\` exits ${action.untilExit === 'zero' ? '0' : 'non-zero'} (${action.purpose})`;
    case 'extract-tar':
      return `mkdir -- ${shellQuote(action.dest)} && tar -xzf ${shellQuote(action.archive)} -C ${shellQuote(action.dest)}`;
    case 'move': {
      const q = shellQuote;
      const mv = `mv -T -- ${q(action.from)} ${q(action.to)}`;
      // Pasteable as is: what is at the name by then is moved out of the way (kept), not merged into.
      return action.displaceTo
        ? `if [ -e ${q(action.to)} ] || [ -L ${q(action.to)} ]; then mv -T -- ${q(action.to)} ${q(action.displaceTo)}; fi && ${mv}`
        : mv;
    }
    case 'install-aof': {
      const tmp = shellQuote(`${action.dir}.restore-tmp`);
      return `mkdir -m 0700 -- ${tmp} && cp -- ${shellQuote(action.from)} ${tmp}/${shellQuote(action.base)} && printf 'file %s seq 1 type b\\n' ${shellQuote(action.base)} > ${tmp}/${shellQuote(action.manifest)} && mv -T -- ${tmp} ${shellQuote(action.dir)}`;
    }
    case 'copy-file':
      return `cp -- ${shellQuote(action.from)} ${shellQuote(action.to)}`;
    case 'remove':
      return `rm -rf -- ${action.paths.map((x) => shellQuote(x.path)).join(' ')}    # only if each is what the run put there (compare stat -c %d:%i with the device:inode in its journal)`;
    case 'record-identity':
      return `# ${action.purpose}`;
    case 'write-file':
      return `printf '%s' ${shellQuote(redact(action.content))} ${action.mode === 'append' ? '>>' : '>'} ${shellQuote(action.path)}`;
    case 'follow-recovery':
      return `# wait until \`${pasteableCommand(action.command, redact)}\` prints f (out of recovery) (${action.purpose})`;
    case 'check':
      return `# check "${action.check.name}" (${action.purpose})`;
    case 'note':
      return `# ${action.purpose}`;
  }
}
