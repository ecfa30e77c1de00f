import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createOutput, formatAge, formatDuration, paint } from '../output.js';
import { resolveRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { readHistory, type HistoryRun, type HistoryView, type RtoTrend } from '../evidence/history.js';
import { sanitizeText } from '../text/sanitize.js';

export interface HistoryCommandOptions {
  recipe?: string;
  /** A directory of evidence directories from many hosts: one table for the fleet (source/fleet/). */
  fleet?: string;
  json?: boolean;
  markdown?: boolean;
}

function resultWord(r: HistoryRun): string {
  if (!r.finished) return 'interrupted (never finished)';
  return r.outcome;
}

function evidenceWord(r: HistoryRun): string {
  switch (r.evidence) {
    case 'sealed':
      return r.indexed ? 'sealed' : 'sealed (not indexed)';
    case 'unsealed':
      return 'unsealed';
    case 'tampered':
      return 'TAMPERED';
    case 'missing':
      return 'MISSING';
  }
}

function objective(measured: number | null, targetMinutes: number | null, metTarget: boolean | null, age: boolean): string {
  if (measured === null) return '-';
  const text = age ? formatAge(measured) : formatDuration(measured);
  if (targetMinutes === null) return text;
  return `${text} ${metTarget ? '<=' : '>'} ${targetMinutes}m`;
}

function date(iso: string): string {
  return iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z');
}

function rows(view: HistoryView, withRecipe: boolean): string[][] {
  return view.runs.map((r) =>
    [
      date(r.startedAt),
      r.kind,
      ...(withRecipe ? [r.recipe] : []),
      r.backup?.id ?? '-',
      resultWord(r),
      objective(r.rtoMs, r.objectives.rtoMinutes, r.rtoMet, false),
      objective(r.rpoMs, r.objectives.rpoMinutes, r.rpoMet, true),
      evidenceWord(r),
      r.runId,
    ].map((cell) => sanitizeText(cell)),
  ); // history.jsonl and run dirs may have been written by anyone who can write the evidence dir
}

function header(withRecipe: boolean): string[] {
  return ['DATE (UTC)', 'KIND', ...(withRecipe ? ['RECIPE'] : []), 'BACKUP', 'RESULT', 'RTO', 'RPO', 'EVIDENCE', 'RUN'];
}

function trendLine(t: RtoTrend): string | undefined {
  if (t.points.length === 0) return undefined;
  const series = t.points
    .slice(-6)
    .map((p) => formatDuration(p.rtoMs))
    .join(' -> ');
  const dir =
    t.direction === 'n/a'
      ? 'one drill so far'
      : `${t.direction}: ${(t.changePct ?? 0) >= 0 ? '+' : ''}${t.changePct ?? 0}% against the average of the previous drills`;
  return `${t.recipe}: drill RTO ${series} (${dir})`;
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** `restore-assistant history`: runs newest first, RTO trend, drill freshness (warnings on stderr). */
export async function historyCommand(opts: HistoryCommandOptions): Promise<number> {
  if (opts.json && opts.markdown) throw new UsageError('--json and --markdown cannot be used together.', { next: 'Pass one of them.' });
  const out = createOutput();
  if (opts.fleet !== undefined)
    return (await import('../fleet/command.js')).fleetHistory(
      opts.fleet,
      { json: Boolean(opts.json), markdown: Boolean(opts.markdown), recipe: opts.recipe },
      out,
    );
  const loaded = opts.recipe ? await resolveRecipe(opts.recipe) : undefined;
  const dir = evidenceDir(loaded?.recipe);
  const view = await readHistory(dir, {
    ...(loaded ? { recipe: loaded.recipe.name, intervalDays: loaded.recipe.drill.intervalDays } : {}),
  });
  const warnings = view.freshness.flatMap((f) => (f.warning ? [f.warning] : []));
  const damaged = view.runs.filter((r) => r.evidence === 'tampered' || r.evidence === 'missing');
  for (const r of damaged)
    warnings.push(`${r.runId}: evidence ${r.evidence === 'missing' ? 'missing' : 'tampered'}: ${r.evidenceProblem ?? ''}`.trimEnd());

  if (opts.json) {
    out.json(view);
    for (const w of warnings) out.info(`Warning: ${w}`);
    return ExitCode.ok;
  }
  const withRecipe = !loaded;
  if (view.runs.length === 0) {
    out.info(`No runs recorded in ${dir}${loaded ? ` for ${loaded.recipe.name}` : ''}.`);
  } else if (opts.markdown) {
    // The seal column anchors the evidence: a runbook kept in git records what each run sealed.
    const h = [...header(withRecipe), 'SEAL'];
    out.result(`| ${h.join(' | ')} |`);
    out.result(`| ${h.map(() => '---').join(' | ')} |`);
    const all = rows(view, withRecipe);
    view.runs.forEach((run, i) => {
      const r = all[i] ?? [];
      const cells = r.map(mdCell);
      cells[cells.length - 1] = `\`${r[r.length - 1] ?? ''}\``;
      cells.push(run.sealHash ? `\`${run.sealHash.slice(0, 16)}\`` : '-');
      out.result(`| ${cells.join(' | ')} |`);
    });
    out.result('');
    out.result(`Evidence: \`${dir}\`; check a run with \`restore-assistant evidence verify <dir>/<run>\`.`);
    for (const t of view.trends) {
      const line = trendLine(t);
      if (line) out.result(`\n${line}`);
    }
  } else {
    const all = [header(withRecipe), ...rows(view, withRecipe)];
    const widths = all[0]?.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length))) ?? [];
    for (const r of all)
      out.result(
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
          .join('  ')
          .trimEnd(),
      );
    for (const t of view.trends) {
      const line = trendLine(t);
      if (line) out.info(line);
    }
    out.info(`Evidence directory: ${dir}`);
  }
  const warn = paint(out.color);
  for (const w of warnings) out.info(warn('yellow', `Warning: ${w}`));
  return ExitCode.ok;
}
