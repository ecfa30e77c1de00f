import { openPitrDrill, type PitrDrillOptions } from '../drill/pitr.js';
import { closingFromReport, closingFromRun, formatClosing } from '../evidence/closing.js';
import { loadReport } from '../evidence/report.js';
import { ExitCode } from '../exit-codes.js';
import type { createOutput } from '../output.js';
import { windowLines } from './pitr.js';
import { parseTarget, targetText } from '../pitr/target.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { askLine } from '../session/prompt.js';
import type { CommandSignals } from '../session/signals.js';
import { formatSummary } from '../session/summary.js';
import { sanitizeText } from '../text/sanitize.js';

/**
 * `drill` on a physical recipe: a point-in-time drill (source/drill/pitr.ts) into a scratch
 * cluster, to `--to` (latest | immediate | a time) or to what `--pick` chose.
 */
export async function pitrDrillCommand(
  loaded: LoadedRecipe,
  opts: { recipe: string; backup?: string; to?: string; pick?: string; yes?: boolean; keep?: boolean; json?: boolean },
  out: ReturnType<typeof createOutput>,
  signals: CommandSignals,
): Promise<number> {
  const target = opts.pick ? undefined : parseTarget(opts.to);
  const session = openPitrDrill(loaded);
  let kept: string[] = [];
  let result: Awaited<ReturnType<typeof session.run>> | undefined;
  try {
    const o: PitrDrillOptions = {
      recipeRef: opts.recipe,
      backup: opts.backup ?? 'latest',
      ...(target ? { target } : {}),
      ...(opts.pick ? { pick: opts.pick as 'random-recent' | 'oldest-retained' } : {}),
      env: process.env,
      commandLine: ['restore-assistant', ...process.argv.slice(2)],
      onStage: (l) => out.info(sanitizeText(l, 600)),
      confirm: async (base, t) => {
        for (const l of windowLines(base, out.color)) out.info(l);
        if (opts.yes) return true;
        const answer = await askLine(
          `Start a point-in-time drill of ${loaded.recipe.name} from base ${sanitizeText(base.set.id, 80)} to ${targetText(t)} into a scratch cluster? [y/N] `,
          signals,
        );
        signals.throwIfCancelled('the question');
        const ok = /^y(es)?$/i.test((answer ?? '').trim());
        out.info(ok ? 'Confirmed.' : 'Cancelled. Nothing was touched.');
        return ok;
      },
    };
    result = await session.run(o, {
      renderer: process.stderr.isTTY ? 'default' : 'simple',
      write: (line) => out.info(line),
      color: out.color,
      startRun: () => {
        signals.throwIfCancelled('the start of the drill');
        return signals.startRun();
      },
    });
  } finally {
    kept = await session.dispose({ keepScratch: Boolean(opts.keep && result?.kind === 'done') });
  }
  if (result.kind === 'cancelled') return ExitCode.cancelled;
  if (result.kind === 'rejected') {
    out.result(`Drill FAILED: base ${sanitizeText(result.base.set.id, 80)} and its WAL are not restorable to the target.`);
    for (const p of result.verify.report.problems) out.result(`  - ${sanitizeText(p.message, 400)} [${p.code}]`);
    out.result(`Evidence: ${result.evidenceDir}`);
    out.result('');
    out.result(formatClosing(closingFromReport(await loadReport(result.evidenceDir))));
    return ExitCode.backupRejected;
  }
  const { summary, plan, evidenceDir, base } = result;
  if (opts.keep) {
    out.info('Scratch cluster left running (--keep):');
    for (const line of kept) out.info(`  ${line}`);
  }
  if (opts.json)
    out.json({
      runId: session.runId,
      kind: 'drill',
      evidence: evidenceDir,
      backup: { id: plan.backup.id, restoredTo: plan.backup.time },
      target: targetText(result.target),
      window: base.window ?? null,
      objectives: plan.objectives,
      ...summary,
    });
  else {
    out.result(`Point-in-time drill of ${loaded.recipe.name}: ${summary.exitCode === 0 ? 'PASSED' : 'FAILED'}`);
    out.result(formatSummary(summary, plan, evidenceDir, out.color));
    if (base.window)
      out.result(`Recovered to ${targetText(result.target)} (${plan.backup.time}); window ${base.window.from} .. ${base.window.to}.`);
    if (!opts.keep) out.result('Scratch cluster stopped and removed.');
    out.result('');
    out.result(formatClosing(closingFromRun({ summary, plan, evidenceDir, events: result.bus.history })));
  }
  return summary.exitCode;
}
