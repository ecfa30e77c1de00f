import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createOutput, formatAge, formatDuration, paint } from '../output.js';
import { resolveRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { readHistory, type HistoryRun, type HistoryView, type RtoTrend } from '../evidence/history.js';
import { rtoSpanLabel } from '../evidence/rto.js';
import { raCommand } from '../text/next.js';
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
  const word = evidenceState(r);
  // evidence.upload: where the sealed run's off-site copy stands (evidence/upload.ts).
  if (!r.upload) return word;
  return `${word}, ${r.upload.status === 'uploaded' ? 'uploaded' : 'upload FAILED'}`;
}

function evidenceState(r: HistoryRun): string {
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

/** The terminal's width (stdout on a TTY; else $COLUMNS when set); undefined: one line per run, never wrapped. */
function terminalWidth(): number | undefined {
  if (process.stdout.isTTY && process.stdout.columns > 0) return process.stdout.columns;
  const env = Number(process.env['COLUMNS']);
  return Number.isInteger(env) && env > 0 ? env : undefined;
}

function padRow(r: string[], widths: number[]): string {
  return r
    .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
    .join('  ')
    .trimEnd();
}

/**
 * The history table at the terminal's width, never cut: one line per run when it fits; else the
 * run id and set move to a line under each run; else RTO and RPO too (every line fits 80 columns
 * with the tool's own words; only an id longer than the terminal is longer).
 */
function layoutTable(view: HistoryView, withRecipe: boolean, width: number | undefined): string[] {
  const head = header(withRecipe);
  const body = rows(view, withRecipe);
  const widthsOf = (all: string[][]): number[] => all[0]?.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length))) ?? [];
  const render = (all: string[][]): string[] => {
    const w = widthsOf(all);
    return all.map((r) => padRow(r, w));
  };
  const fits = (lines: string[]): boolean => width === undefined || lines.every((l) => l.length <= width);
  const full = render([head, ...body]);
  if (fits(full)) return full;
  const col = (name: string): number => head.indexOf(name);
  const pick = (r: string[], names: string[]): string[] => names.map((n) => r[col(n)] ?? '');
  const idLine = (r: string[]): string =>
    `    run ${r[col('RUN')] ?? ''}${r[col('BACKUP')] && r[col('BACKUP')] !== '-' ? `, set ${r[col('BACKUP')] ?? ''}` : ''}`;
  const mid = ['DATE (UTC)', 'KIND', ...(withRecipe ? ['RECIPE'] : []), 'RESULT', 'RTO', 'RPO', 'EVIDENCE'];
  const midRows = render([mid, ...body.map((r) => pick(r, mid))]);
  const twoLine = [midRows[0] ?? '', ...body.flatMap((r, i) => [midRows[i + 1] ?? '', idLine(r)])];
  if (fits(twoLine)) return twoLine;
  const narrow = ['DATE (UTC)', 'KIND', 'RESULT', 'EVIDENCE'];
  const narrowRows = render([narrow, ...body.map((r) => pick(r, narrow))]);
  return [
    narrowRows[0] ?? '',
    ...body.flatMap((r, i) => [
      narrowRows[i + 1] ?? '',
      `    ${withRecipe ? `${r[col('RECIPE')] ?? ''}: ` : ''}RTO ${r[col('RTO')] ?? '-'}, RPO ${r[col('RPO')] ?? '-'}`,
      idLine(r),
    ]),
  ];
}

/** What could not be read, why, and what to do: never "no runs" when the runs are there but unreadable. */
function unreadableText(view: HistoryView, recipeFile: string | undefined): string | undefined {
  if (view.unreadable.length === 0) return undefined;
  const first = view.unreadable[0];
  if (!first) return undefined;
  const codes = [...new Set(view.unreadable.map((u) => u.code))].join(', ');
  const more = view.unreadable.length > 1 ? ` and ${view.unreadable.length - 1} more` : '';
  const denied = view.unreadable.some((u) => u.code === 'EACCES' || u.code === 'EPERM');
  const fix = denied
    ? `Run it as root or as the user that recorded the runs (\`sudo ${raCommand('history', ...(recipeFile ? ['--recipe', recipeFile] : []))}\`), or have root grant this user read access to ${view.evidenceDir}.`
    : `Check the file system holding ${view.evidenceDir}.`;
  return `cannot read the evidence (${codes}): ${first.path}${more}. The list above is incomplete: runs recorded there are not shown and drill freshness is unknown. ${fix}`;
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
  return `${t.recipe}: drill RTO trend (${rtoSpanLabel('drill')}, oldest to newest): ${series} (${dir})`;
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
  // Evidence this user cannot read is not "no runs": the freshness of a recipe is then unknown.
  const unreadableWarning = unreadableText(view, loaded?.file);
  const warnings = [
    ...(unreadableWarning ? [unreadableWarning] : []),
    ...view.freshness.flatMap((f) =>
      !f.warning
        ? []
        : view.unreadable.length > 0 && !f.lastSuccessfulDrill
          ? [`${f.recipe}: drill freshness unknown: no successful drill could be read (the evidence is not readable, above).`]
          : [f.warning],
    ),
  ];
  const damaged = view.runs.filter((r) => r.evidence === 'tampered' || r.evidence === 'missing');
  for (const r of damaged)
    warnings.push(`${r.runId}: evidence ${r.evidence === 'missing' ? 'missing' : 'tampered'}: ${r.evidenceProblem ?? ''}`.trimEnd());
  for (const r of view.runs.filter((x) => x.upload?.status === 'failed'))
    warnings.push(
      `${r.runId}: evidence not uploaded off-site (${r.upload?.at ?? '?'}: ${r.upload?.why ?? '?'}). Next: ${raCommand('evidence', 'upload', ...(loaded ? ['--recipe', loaded.file] : []), r.runId)}`,
    );

  if (opts.json) {
    out.json(view);
    for (const w of warnings) out.info(`Warning: ${w}`);
    return view.unreadable.length > 0 ? ExitCode.preflightFailed : ExitCode.ok;
  }
  const withRecipe = !loaded;
  if (view.runs.length === 0 && view.unreadable.length > 0) {
    out.info(`No runs could be read in ${dir}${loaded ? ` for ${loaded.recipe.name}` : ''}: see the warning below.`);
  } else if (view.runs.length === 0) {
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
    for (const line of layoutTable(view, withRecipe, terminalWidth())) out.result(line);
    for (const t of view.trends) {
      const line = trendLine(t);
      if (line) out.info(line);
    }
    out.info(`Evidence directory: ${dir}`);
    const first = view.runs[0];
    if (first)
      out.info(
        `Open a run: \`${raCommand('report', first.runId, ...(loaded ? ['--recipe', loaded.file] : []))}\` (any RUN above; --format json for report.json).`,
      );
  }
  const warn = paint(out.color);
  for (const w of warnings) out.info(warn('yellow', `Warning: ${w}`));
  return view.unreadable.length > 0 ? ExitCode.preflightFailed : ExitCode.ok;
}
