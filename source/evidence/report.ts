import { readFile } from 'node:fs/promises';
import { shellJoin } from '../text/shell.js';
import path from 'node:path';
import type { EngineEventBody, Outcome, RunKind } from '../engine/events.js';
import type { SafetyCopy } from '../plan/types.js';
import { formatAge, formatDuration } from '../output.js';
import { EVENTS_FILE, parseLinesLenient, REPORT_FORMAT, type EvidenceHeader, type EvidenceLine } from './format.js';
import { closingFromReport, formatClosing } from './closing.js';
import { normalizedRtoMs, rtoTableLabel } from './rto.js';
import { criticalPath, longPoleLine, type CriticalPath } from '../engine/critical-path.js';
import { verifyEvidence, type EvidenceStatus } from './verify.js';
import { safeJsonStringify, sanitizeDeep } from '../text/sanitize.js';

/** What the verifier found, as recorded in a report. */
export interface ReportIntegrity {
  status: EvidenceStatus;
  lines: number;
  firstBadLine?: number;
  reason?: string;
}

export interface ReportCommand {
  commandId: string;
  argv: string[];
  runsIn?: string;
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  timedOut: boolean;
  /** false when the command started but its end was never recorded */
  finished: boolean;
  stdoutTail: string[];
  stderrTail: string[];
}

export interface ReportStep {
  stepId: string;
  title: string;
  /** 'unfinished': started, but no end was recorded (the run was cut short) */
  status: 'done' | 'failed' | 'skipped' | 'unfinished';
  startedAt: string | null;
  finishedAt: string | null;
  /** ms since the run started */
  startT: number | null;
  durationMs: number | null;
  detail?: string;
  error?: string;
  reason?: string;
  commands: ReportCommand[];
}

export interface RunReport {
  format: typeof REPORT_FORMAT;
  runId: string;
  kind: RunKind;
  recipe: { name: string; file: string; digest: string };
  operator: string;
  host: string;
  toolVersion: string;
  commandLine?: string[];
  /** The engine's outcome; 'interrupted' with finished=false when the run never recorded its end. */
  outcome: Outcome;
  finished: boolean;
  exitCode: number | null;
  /** Why the run failed or was refused, as the engine put it. */
  error: string | null;
  /** Names of the health checks that failed. */
  failedChecks: string[];
  startedAt: string;
  confirmedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  backup: { id: string; time: string; location: string } | null;
  rto: { measuredMs: number | null; targetMinutes: number | null; met: boolean | null; from: string | null; to: string | null };
  rpo: { measuredMs: number | null; targetMinutes: number | null; met: boolean | null; backupTime: string | null };
  /** The steps that made the RTO, from the step events (engine/critical-path.ts; ms from the RTO clock start); restored and unhealthy runs. */
  criticalPath: CriticalPath | null;
  verification: Array<Extract<EngineEventBody, { type: 'verification' }> & { ts: string }>;
  plan: { steps: number; destructive: string[]; targets: Record<string, string>; warnings: string[] } | null;
  steps: ReportStep[];
  healthChecks: Array<{ name: string; ok: boolean; attempts: number; durationMs: number; detail: string; ts: string }>;
  warnings: string[];
  errors: string[];
  safetyCopies: SafetyCopy[];
  rollback: {
    reason: string;
    steps: Array<{ stepId: string; title: string; ok: boolean; error?: string }>;
    complete: boolean | null;
    manualSteps: string[];
  } | null;
  state: string[];
  nextSteps: string[];
  /** Drills: who ran it, and blanks for the reviewer. */
  signOff: { runBy: string; reviewedBy: null; date: null } | null;
  evidence: { dir: string; integrity: ReportIntegrity; cappedOutput: number };
}

type Line<K extends EngineEventBody['type']> = Extract<EngineEventBody, { type: K }>;

/** Build the report from the bytes of events.jsonl (lenient: a damaged file still yields what it holds). */
export function buildReport(bytes: Buffer, integrity: ReportIntegrity, dir: string): RunReport {
  // Every string in a report may come from outside (file names, metadata, command output, server
  // replies): control characters are shown escaped, in report.json and report.md alike.
  return sanitizeDeep(collectReport(bytes, integrity, dir));
}

function collectReport(bytes: Buffer, integrity: ReportIntegrity, dir: string): RunReport {
  const lines = parseLinesLenient(bytes);
  const headerLine = lines.find((l): l is EvidenceLine & { header: EvidenceHeader } => 'header' in l);
  const header = headerLine?.header;
  const events: Array<{ ts: string; t: number; e: EngineEventBody }> = [];
  let cappedOutput = 0;
  for (const l of lines) {
    if ('event' in l && l.event && typeof l.event === 'object') events.push({ ts: l.ts, t: l.t, e: l.event });
    if ('note' in l && l.note?.type === 'output-capped') cappedOutput += l.note.omitted;
  }
  const first = <K extends EngineEventBody['type']>(type: K): { ts: string; t: number; e: Line<K> } | undefined =>
    events.find((x) => x.e.type === type) as { ts: string; t: number; e: Line<K> } | undefined;
  const all = <K extends EngineEventBody['type']>(type: K): Array<{ ts: string; t: number; e: Line<K> }> =>
    events.filter((x) => x.e.type === type) as Array<{ ts: string; t: number; e: Line<K> }>;

  const started = first('run-started');
  const finished = first('run-finished');
  const plan = started?.e.plan;

  // Steps, in the order they started (skipped ones where they were recorded).
  const steps = new Map<string, ReportStep>();
  const stepFor = (stepId: string, title: string): ReportStep => {
    let s = steps.get(stepId);
    if (!s) {
      s = { stepId, title, status: 'unfinished', startedAt: null, finishedAt: null, startT: null, durationMs: null, commands: [] };
      steps.set(stepId, s);
    }
    return s;
  };
  const commands = new Map<string, ReportCommand>();
  for (const { ts, t, e } of events) {
    switch (e.type) {
      case 'step-started': {
        const s = stepFor(e.stepId, e.title);
        s.startedAt = ts;
        s.startT = t;
        break;
      }
      case 'step-finished':
      case 'step-failed': {
        const s = stepFor(e.stepId, e.title);
        s.status = e.type === 'step-finished' ? 'done' : 'failed';
        s.finishedAt = ts;
        s.durationMs = e.durationMs;
        if (e.type === 'step-finished' && e.detail) s.detail = e.detail;
        if (e.type === 'step-failed') s.error = e.error;
        break;
      }
      case 'step-skipped': {
        const s = stepFor(e.stepId, e.title);
        s.status = 'skipped';
        s.reason = e.reason;
        break;
      }
      case 'command-started': {
        const c: ReportCommand = {
          commandId: e.commandId,
          argv: e.argv,
          ...(e.runsIn ? { runsIn: e.runsIn } : {}),
          exitCode: null,
          signal: null,
          durationMs: null,
          timedOut: false,
          finished: false,
          stdoutTail: [],
          stderrTail: [],
        };
        commands.set(e.commandId, c);
        stepFor(e.stepId, e.stepId).commands.push(c);
        break;
      }
      case 'command-finished': {
        let c = commands.get(e.commandId);
        if (!c) {
          c = {
            commandId: e.commandId,
            argv: e.argv,
            exitCode: null,
            signal: null,
            durationMs: null,
            timedOut: false,
            finished: false,
            stdoutTail: [],
            stderrTail: [],
          };
          commands.set(e.commandId, c);
          stepFor(e.stepId, e.stepId).commands.push(c);
        }
        Object.assign(c, {
          argv: e.argv,
          exitCode: e.exitCode,
          signal: e.signal,
          durationMs: e.durationMs,
          timedOut: e.timedOut,
          finished: true,
          stdoutTail: e.stdoutTail,
          stderrTail: e.stderrTail,
        });
        break;
      }
      default:
        break;
    }
  }

  const recipe = started?.e.recipe ?? header?.recipe ?? { name: 'unknown', file: 'unknown', digest: '' };
  const objectives = plan?.objectives ?? header?.objectives ?? {};
  const rtoTarget = objectives.rtoMinutes ?? null;
  const rpoTarget = objectives.rpoMinutes ?? null;
  const startedAt = started?.ts ?? headerLine?.ts ?? events[0]?.ts ?? new Date(0).toISOString();
  const confirmedAt = started?.e.confirmedAt ?? null;
  const backup = started?.e.backup && started.e.backup.id ? started.e.backup : null;
  const healthEvents = all('health-check');
  const kind = started?.e.kind ?? header?.kind ?? 'restore';

  // RTO (evidence/rto.ts, the one definition): the engine's figure, else from where the clock
  // starts to the last health check of a restored run. A drill recorded before the definition
  // (no rtoFrom) has the time before its engine start taken off.
  const runStartedTs = started?.ts ?? null;
  let rtoMs: number | null = normalizedRtoMs(kind, finished?.e.rtoMs ?? null, {
    rtoFrom: started?.e.rtoFrom,
    confirmedAt,
    runStartedAt: runStartedTs,
  });
  let rtoTo: string | null = null;
  const rtoFrom = started?.e.rtoFrom ?? (kind === 'drill' ? runStartedTs : (confirmedAt ?? runStartedTs));
  if (finished && (finished.e.outcome === 'restored' || finished.e.outcome === 'unhealthy') && rtoFrom) {
    rtoTo = healthEvents.at(-1)?.ts ?? finished.ts;
    if (rtoMs === null) rtoMs = Math.max(0, Date.parse(rtoTo) - Date.parse(rtoFrom));
  }
  if (rtoMs !== null && rtoTo === null && rtoFrom) rtoTo = new Date(Date.parse(rtoFrom) + rtoMs).toISOString();
  // RPO: the engine's figure, else backup age at confirm (or start).
  let rpoMs: number | null = finished?.e.rpoMs ?? null;
  const rpoFrom = confirmedAt ?? runStartedTs;
  if (rpoMs === null && backup && kind !== 'verify' && rpoFrom && !Number.isNaN(Date.parse(backup.time))) {
    rpoMs = Math.max(0, Date.parse(rpoFrom) - Date.parse(backup.time));
  }

  // The critical path: from every step's start and end (its events), on the RTO clock.
  let critical: CriticalPath | null = null;
  if (rtoFrom && finished && (finished.e.outcome === 'restored' || finished.e.outcome === 'unhealthy')) {
    const origin = Date.parse(rtoFrom);
    const timed = [...steps.values()].flatMap((st) =>
      st.startedAt && st.durationMs !== null && !Number.isNaN(Date.parse(st.startedAt))
        ? [
            {
              stepId: st.stepId,
              title: st.title,
              startMs: Date.parse(st.startedAt) - origin,
              endMs: Date.parse(st.startedAt) - origin + st.durationMs,
            },
          ]
        : [],
    );
    critical = criticalPath(timed, 0) ?? null;
  }

  const logs = all('log');
  const rollbackStarted = first('rollback-started');
  const rollbackFinished = first('rollback-finished');
  const operator = started?.e.operator ?? header?.operator ?? 'unknown';

  const unfinishedState = [
    'Unknown: the run stopped without recording its end (the process was killed or the machine stopped).',
    ...[...steps.values()].filter((s) => s.status === 'unfinished').map((s) => `Step "${s.title}" started and never finished.`),
  ];

  return {
    format: REPORT_FORMAT,
    runId: header?.runId ?? started?.e.runId ?? path.basename(dir),
    kind,
    recipe,
    operator,
    host: started?.e.host ?? header?.host ?? 'unknown',
    toolVersion: started?.e.toolVersion ?? header?.toolVersion ?? 'unknown',
    ...(header?.commandLine ? { commandLine: header.commandLine } : {}),
    outcome: finished?.e.outcome ?? 'interrupted',
    finished: Boolean(finished),
    exitCode: finished?.e.exitCode ?? null,
    error: finished?.e.error ?? null,
    failedChecks: finished?.e.failedChecks ?? healthEvents.filter((h) => !h.e.ok).map((h) => h.e.name),
    startedAt,
    confirmedAt,
    finishedAt: finished?.ts ?? null,
    durationMs: finished ? Math.max(0, Date.parse(finished.ts) - Date.parse(startedAt)) : null,
    backup,
    rto: {
      measuredMs: rtoMs,
      targetMinutes: rtoTarget,
      met: rtoMs !== null && rtoTarget !== null ? rtoMs <= rtoTarget * 60_000 : null,
      from: rtoFrom,
      to: rtoTo,
    },
    rpo: {
      measuredMs: rpoMs,
      targetMinutes: rpoTarget,
      met: rpoMs !== null && rpoTarget !== null ? rpoMs <= rpoTarget * 60_000 : null,
      backupTime: backup?.time ?? null,
    },
    criticalPath: critical,
    verification: all('verification').map(({ ts, e }) => ({ ...e, ts })),
    plan: plan
      ? {
          steps: plan.steps.length,
          destructive: plan.steps.filter((s) => s.destructive).map((s) => (s.destroys ? `${s.title}: ${s.destroys}` : s.title)),
          targets: Object.fromEntries(Object.entries(plan.targets).filter((kv): kv is [string, string] => typeof kv[1] === 'string')),
          warnings: plan.warnings,
        }
      : null,
    steps: [...steps.values()],
    healthChecks: healthEvents.map(({ ts, e }) => ({
      name: e.name,
      ok: e.ok,
      attempts: e.attempts,
      durationMs: e.durationMs,
      detail: e.detail,
      ts,
    })),
    warnings: [...(plan?.warnings ?? []), ...logs.filter((l) => l.e.level === 'warn').map((l) => l.e.message)],
    errors: logs.filter((l) => l.e.level === 'error').map((l) => l.e.message),
    safetyCopies: finished?.e.safetyCopies ?? all('safety-copy').map((x) => x.e.copy),
    rollback: rollbackStarted
      ? {
          reason: rollbackStarted.e.reason,
          steps: all('rollback-step').map(({ e }) => ({
            stepId: e.stepId,
            title: e.title,
            ok: e.ok,
            ...(e.error ? { error: e.error } : {}),
          })),
          complete: rollbackFinished?.e.complete ?? null,
          manualSteps: rollbackFinished?.e.manualSteps ?? finished?.e.manualSteps ?? [],
        }
      : null,
    state: finished?.e.state ?? unfinishedState,
    nextSteps: finished?.e.nextSteps ?? [
      'Check the state of every target before acting (the steps above show how far the run got).',
      `Run \`restore-assistant evidence verify ${dir}\` to confirm this record is intact.`,
    ],
    signOff: kind === 'drill' ? { runBy: operator, reviewedBy: null, date: null } : null,
    evidence: { dir, integrity, cappedOutput },
  };
}

function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function code(text: string): string {
  const clean = text.replace(/\r?\n/g, ' ');
  return clean.includes('`') ? `\`\` ${clean} \`\`` : `\`${clean}\``;
}

function ms(value: number | null): string {
  return value === null ? 'n/a' : formatDuration(value);
}

function metWord(met: boolean | null): string {
  return met === null ? 'n/a' : met ? 'yes' : '**no**';
}

function argvText(argv: string[]): string {
  return shellJoin(argv);
}

const kindTitle: Record<RunKind, string> = { restore: 'Restore', drill: 'Drill', verify: 'Verification', cleanup: 'Safety-copy cleanup' };

/** report.md: the same facts as report.json, for people. */
export function renderMarkdown(r: RunReport): string {
  const out: string[] = [];
  const push = (...lines: string[]): void => {
    out.push(...lines);
  };
  push(`# ${kindTitle[r.kind]} report: ${r.recipe.name}: ${r.finished ? r.outcome : 'interrupted (never finished)'}`, '');
  const integ = r.evidence.integrity;
  if (integ.status === 'tampered') {
    push(
      `> **Evidence is not intact** (line ${integ.firstBadLine ?? '?'}: ${integ.reason ?? 'hash chain broken'}).`,
      '> This report was rebuilt from what could be read; do not rely on it.',
      '',
    );
  } else if (!r.finished) {
    push(
      '> **This run never finished**: the process stopped before recording its end. The state of the targets is unknown; check them before acting.',
      '',
    );
  }
  push('| | |', '| --- | --- |');
  push(`| Run | ${code(r.runId)} |`);
  push(`| Outcome | **${r.finished ? r.outcome : 'interrupted'}**${r.exitCode !== null ? ` (exit ${r.exitCode})` : ''} |`);
  if (r.error) push(`| Error | ${cell(r.error)} |`);
  if (r.failedChecks.length > 0) push(`| Failed checks | ${cell(r.failedChecks.join(', '))} |`);
  push(`| Recipe | ${cell(r.recipe.name)} (${code(r.recipe.file)}, sha256 ${code(r.recipe.digest.slice(0, 16))}) |`);
  if (r.backup) push(`| Backup | ${code(r.backup.id)} taken ${r.backup.time} (${code(r.backup.location)}) |`);
  push(`| Operator | ${cell(r.operator)} on ${cell(r.host)} |`);
  push(`| Tool | restore-assistant ${cell(r.toolVersion)} |`);
  if (r.commandLine) {
    const argv = r.commandLine[0] === 'restore-assistant' ? r.commandLine : ['restore-assistant', ...r.commandLine];
    push(`| Command | ${code(argvText(argv))} |`);
  }
  push(`| Started | ${r.startedAt} |`);
  if (r.confirmedAt) push(`| Confirmed | ${r.confirmedAt} |`);
  push(`| Finished | ${r.finishedAt ?? 'never recorded'} |`);
  if (r.durationMs !== null) push(`| Duration | ${formatDuration(r.durationMs)} |`);
  const sealWord = integ.status === 'sealed' ? 'sealed' : integ.status === 'unsealed' ? 'intact, not sealed (interrupted)' : '**tampered**';
  push(`| Evidence | ${sealWord}, ${integ.lines} lines, ${code(path.join(r.evidence.dir, EVENTS_FILE))} |`, '');

  if (r.kind !== 'verify') {
    push('## Objectives', '', '| | Measured | Target | Met |', '| --- | --- | --- | --- |');
    push(
      `| ${rtoTableLabel(r.kind)} | ${ms(r.rto.measuredMs)} | ${r.rto.targetMinutes === null ? 'none set' : `${r.rto.targetMinutes} min`} | ${metWord(r.rto.met)} |`,
    );
    push(
      `| RPO (backup age at restore) | ${r.rpo.measuredMs === null ? 'n/a' : formatAge(r.rpo.measuredMs)} | ${r.rpo.targetMinutes === null ? 'none set' : `${r.rpo.targetMinutes} min`} | ${metWord(r.rpo.met)} |`,
      '',
    );
  }

  if (r.criticalPath && r.criticalPath.steps.length > 0) {
    const cp = r.criticalPath;
    push('## Critical path', '', `Long pole: ${cell(longPoleLine(cp))}.`, '');
    push('| Step | Started (on the RTO clock) | Waited before it | Took | Share |', '| --- | --- | --- | --- | --- |');
    for (const st of cp.steps) {
      const share = cp.spanMs > 0 ? `${Math.round((st.durationMs / cp.spanMs) * 100)}%` : '';
      push(`| ${cell(st.title)} | +${formatDuration(st.startMs)} | ${ms(st.waitedMs)} | ${ms(st.durationMs)} | ${share} |`);
    }
    push('');
  }

  if (r.verification.length > 0) {
    push('## Verification', '');
    for (const v of r.verification) {
      push(`- Set ${code(v.setId)}, ${v.depth}: ${v.ok ? 'passed' : '**failed**'}`);
      for (const p of v.problems) push(`  - ${cell(p)}`);
      for (const c of v.checksums) push(`  - ${code(c.path)}: ${c.status}${c.sha256 ? ` sha256 ${code(c.sha256)}` : ''}`);
    }
    push('');
  }

  if (r.plan && r.plan.destructive.length > 0) {
    push('## What the plan destroyed (with safety copies)', '');
    for (const d of r.plan.destructive) push(`- ${cell(d)}`);
    push('');
  }

  if (r.steps.length > 0) {
    push('## Timeline', '', '| Step | Result | Started | Duration | Detail |', '| --- | --- | --- | --- | --- |');
    for (const s of r.steps) {
      const detail = s.error ?? s.reason ?? s.detail ?? '';
      push(
        `| ${cell(s.title)} | ${s.status === 'failed' ? '**failed**' : s.status} | ${s.startT === null ? '' : `+${formatDuration(s.startT)}`} | ${ms(s.durationMs)} | ${cell(detail)} |`,
      );
    }
    push('');
    const cmds = r.steps.flatMap((s) => s.commands);
    if (cmds.length > 0) {
      push('## Commands', '');
      for (const c of cmds) {
        const status = !c.finished
          ? 'never finished'
          : c.timedOut
            ? 'timed out'
            : c.signal
              ? `killed by ${c.signal}`
              : `exit ${c.exitCode ?? '?'}`;
        push(
          `- ${code(argvText(c.argv))}${c.runsIn ? ` in ${cell(c.runsIn)}` : ''}: ${status}${c.durationMs !== null ? `, ${formatDuration(c.durationMs)}` : ''}`,
        );
        const failed = c.finished && (c.exitCode !== 0 || c.signal !== null || c.timedOut);
        if (failed && (c.stderrTail.length > 0 || c.stdoutTail.length > 0)) {
          push('', '  ```text', ...[...c.stdoutTail, ...c.stderrTail].map((l) => `  ${l.replace(/```/g, "'''")}`), '  ```', '');
        }
      }
      if (r.evidence.cappedOutput > 0)
        push('', `(${r.evidence.cappedOutput} output lines beyond the per-command cap are counted in events.jsonl, not kept.)`);
      push('');
    }
  }

  if (r.healthChecks.length > 0) {
    push('## Health checks', '', '| Check | Result | Attempts | Duration | Detail |', '| --- | --- | --- | --- | --- |');
    for (const h of r.healthChecks)
      push(`| ${cell(h.name)} | ${h.ok ? 'passed' : '**failed**'} | ${h.attempts} | ${formatDuration(h.durationMs)} | ${cell(h.detail)} |`);
    push('');
  }
  if (r.warnings.length > 0 || r.errors.length > 0) {
    push('## Warnings and errors', '');
    for (const w of r.warnings) push(`- Warning: ${cell(w)}`);
    for (const e of r.errors) push(`- Error: ${cell(e)}`);
    push('');
  }
  if (r.rollback) {
    push('## Rollback', '', `Reason: ${cell(r.rollback.reason)}`, '');
    for (const s of r.rollback.steps) push(`- ${cell(s.title)}: ${s.ok ? 'done' : `**failed**${s.error ? `: ${cell(s.error)}` : ''}`}`);
    push('', `Complete: ${r.rollback.complete === null ? 'never recorded' : r.rollback.complete ? 'yes' : '**no**'}`);
    if (r.rollback.manualSteps.length > 0) {
      push('', 'Left to do by hand:');
      for (const m of r.rollback.manualSteps) push(`1. ${cell(m)}`);
    }
    push('');
  }
  push('## Safety copies', '');
  if (r.safetyCopies.length === 0) push('None recorded.');
  for (const c of r.safetyCopies)
    push(`- ${c.component}: ${c.kind === 'none' ? 'none kept' : `${c.kind} at ${code(c.location)}`}: ${cell(c.description)}`);
  push('', '## State', '');
  for (const s of r.state) push(`- ${cell(s)}`);
  if (r.nextSteps.length > 0) {
    push('', '## Next steps', '');
    for (const s of r.nextSteps) push(`- ${cell(s)}`);
  }
  if (r.signOff) {
    push(
      '',
      '## Sign-off',
      '',
      `Recorded operator: ${cell(r.signOff.runBy)}`,
      '',
      '| | Name | Signature | Date |',
      '| --- | --- | --- | --- |',
      '| Run by | ________________ | ________________ | __________ |',
      '| Reviewed by | ________________ | ________________ | __________ |',
    );
  }
  if (r.kind !== 'verify') {
    // The closing block (evidence/closing.ts): the same text `restore` / `drill` print at the end.
    push('', '## For the incident channel', '', '```text', formatClosing(closingFromReport(r)).replace(/```/g, "'''"), '```');
  }
  push('', `Verify this record: \`restore-assistant evidence verify ${r.evidence.dir}\``, '');
  return out.join('\n');
}

/** Read a run's events.jsonl and build its report (the integrity check runs too and is recorded in it). */
export async function loadReport(runDir: string): Promise<RunReport> {
  const dir = path.resolve(runDir);
  const bytes = await readFile(path.join(dir, EVENTS_FILE));
  const v = await verifyEvidence(dir);
  const integrity: ReportIntegrity = {
    status: v.status,
    lines: v.lines,
    ...(v.firstBadLine !== undefined ? { firstBadLine: v.firstBadLine } : {}),
    ...(v.reason !== undefined ? { reason: v.reason } : {}),
  };
  return buildReport(bytes, integrity, dir);
}

/** Render a report as report.json or report.md would hold it. */
export function formatReport(report: RunReport, format: 'md' | 'json'): string {
  return format === 'json' ? `${safeJsonStringify(report, 2)}\n` : renderMarkdown(report);
}

/** Re-render the report of a run from its events.jsonl. */
export async function renderReport(runDir: string, format: 'md' | 'json'): Promise<string> {
  return formatReport(await loadReport(runDir), format);
}
