import { EventBus } from '../engine/events.js';
import { UsageError } from '../errors.js';
import { closingFromReport, closingFromRun, formatClosing } from '../evidence/closing.js';
import { ExitCode } from '../exit-codes.js';
import type { RunSummary } from '../engine/run.js';
import { loadReport } from '../evidence/report.js';
import { pickDrillSet } from '../drill/pick.js';
import { warnUnfinished } from '../journal/detect.js';
import { createOutput } from '../output.js';
import type { Plan } from '../plan/types.js';
import { resolveRecipe } from '../recipe/load.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { openSession, prepare } from '../session/session.js';
import { askLine } from '../session/prompt.js';
import { ownCommandSignals, type CommandSignals } from '../session/signals.js';
import { formatSummary } from '../session/summary.js';
import { raCommand } from '../text/next.js';
import { sanitizeText } from '../text/sanitize.js';
import { shellJoin } from '../text/shell.js';

/**
 * `restore-assistant drill`: prove a backup restores, without touching production. Parse ->
 * session -> print: the drill session locks the drill of this deployment, verifies the set deeply,
 * starts scratch PostgreSQL / Redis / Prometheus on free loopback ports, plans and runs the restore
 * into them with the same plan builder and engine as a real restore, checks the recipe's data
 * checks, records a drill (RTO, RPO) in the recipe's evidence history, and removes the scratch
 * services once the engine has finished (also after Ctrl-C).
 */

export interface DrillCommandOptions {
  recipe?: string;
  backup?: string;
  /** random-recent | oldest-retained (source/drill/pick.ts) */
  pick?: string;
  yes?: boolean;
  keep?: boolean;
  json?: boolean;
  /** Physical recipes: the point-in-time target (latest | immediate | a time with its zone). */
  to?: string;
}

async function askStart(
  out: ReturnType<typeof createOutput>,
  recipeName: string,
  setId: string,
  signals: CommandSignals,
): Promise<boolean> {
  const answer = await askLine(`Start a drill of ${recipeName} from backup ${setId} into scratch services? [y/N] `, signals);
  signals.throwIfCancelled('the question');
  const ok = /^y(es)?$/i.test((answer ?? '').trim());
  out.info(ok ? 'Confirmed.' : 'Cancelled. Nothing was touched.');
  return ok;
}

export async function drillCommand(opts: DrillCommandOptions): Promise<number> {
  const out = createOutput();
  // Signals are owned from the first line (session/signals.ts): before the run one cancels (exit
  // `cancelled`; scratch services removed, locks released); during it one stops the engine.
  const signals = ownCommandSignals({
    notify: (line) => out.info(line),
    what: 'the drill',
    again: shellJoin(['restore-assistant', ...process.argv.slice(2)]),
  });
  try {
    return await drillOwned(opts, out, signals);
  } finally {
    signals.dispose();
  }
}

async function drillOwned(opts: DrillCommandOptions, out: ReturnType<typeof createOutput>, signals: CommandSignals): Promise<number> {
  if (!opts.recipe) throw new UsageError('drill needs --recipe NAME (or a path to a recipe file).');
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  if (!opts.yes && !interactive) {
    throw new UsageError('drill asks before it starts, and there is no terminal to ask on.', {
      next: `Confirm on the command line: \`${raCommand('drill', '--recipe', opts.recipe, ...(opts.pick ? ['--pick', opts.pick] : ['--backup', opts.backup ?? 'latest']), ...(opts.keep ? ['--keep'] : []), '--yes')}\` (scheduled drills: see docs/drills.md).`,
    });
  }
  if (opts.pick && opts.backup && opts.backup !== 'latest')
    throw new UsageError('--pick and --backup choose the set two ways; pass one of them.');
  const pick = opts.pick;
  const loaded = await resolveRecipe(opts.recipe);
  // Physical recipes (base backups + WAL archive): a point-in-time drill into a scratch cluster.
  if (loaded.recipe.backups.layout === 'physical') {
    if (opts.pick && opts.to) throw new UsageError('--pick chooses the base and the target; --to names a target. Pass one of them.');
    await warnUnfinished(loaded, opts.recipe, (t) => process.stderr.write(`${t}\n`));
    const { pitrDrillCommand } = await import('./drill-pitr.js');
    return pitrDrillCommand(loaded, { ...opts, recipe: opts.recipe }, out, signals);
  }
  if (opts.to) throw new UsageError('--to is for point-in-time drills (backups.layout: physical).');
  // A drill never touches the real targets; it says when a restore left them half done.
  await warnUnfinished(loaded, opts.recipe, (t) => process.stderr.write(`${t}\n`));
  const real = loaded.recipe;
  const session = openSession({ loaded, mode: 'drill', env: process.env, commandLine: ['restore-assistant', ...process.argv.slice(2)] });
  let confirmedAt = new Date();
  let finished: { summary: RunSummary; runId: string; evidenceDir: string; plan: Plan } | undefined;
  let kept: string[] = [];
  const bus = new EventBus();
  try {
    const prepared = await prepare(session, {
      backup: opts.backup ?? 'latest',
      ...(pick
        ? {
            pickSet: async () => {
              const picked = await pickDrillSet(loaded, pick, {
                redact: recipeRedactor(loaded),
                log: (line) => out.info(line),
              }); // source/drill/pick.ts
              // How --pick chose the set: on stderr and in the drill's evidence.
              const note = sanitizeText(picked.note);
              session.note({ type: 'log', level: 'info', message: note });
              out.info(note);
              return picked.set;
            },
          }
        : {}),
      // A drill exists to prove the backup: every byte is read.
      depth: 'deep',
      signals,
      confirmBeforeVerify: async (set) => {
        const ok = opts.yes || (await askStart(out, real.name, set.id, signals));
        confirmedAt = new Date();
        return ok;
      },
      onStage: (stage, set) => {
        if (stage === 'verify') out.info(`Verifying backup set ${sanitizeText(set.id)} (deep: every byte, every archive entry)...`);
        else out.info(`Starting scratch services (${session.kinds(set).join(', ')}) on loopback ports...`);
      },
      onRejected: () => 'stop',
    });
    if (prepared.kind === 'cancelled') return ExitCode.cancelled;
    if (prepared.kind === 'rejected') {
      const { evidenceDir } = await session.recordRefusedDrill(prepared.set, prepared.report, confirmedAt);
      out.result(`Drill FAILED: backup set ${prepared.set.id} is not restorable.`);
      for (const p of prepared.report.problems) out.result(`  - ${p.component ? `${p.component}: ` : ''}${p.message}`);
      out.result(`Evidence: ${evidenceDir}`);
      out.result('');
      out.result(formatClosing(closingFromReport(await loadReport(evidenceDir))));
      return ExitCode.backupRejected;
    }
    const { plan } = prepared;
    signals.throwIfCancelled('the start of the drill');
    // From here a first signal stops the engine (the scratch services stay until it has finished).
    const run = signals.startRun();
    try {
      const started = await session.start(plan, {
        bus,
        signal: run.signal,
        stopSignal: run.stopSignal,
        renderer: process.stderr.isTTY ? 'default' : 'simple',
        write: (line) => out.info(line),
        color: out.color,
        confirmedAt,
      });
      finished = { ...started, plan };
    } finally {
      run.dispose();
    }
  } finally {
    // After the engine has finished (or never started): remove the scratch services, or keep them.
    kept = await session.dispose({ keepScratch: Boolean(opts.keep && finished) });
  }
  const { summary, runId, evidenceDir, plan } = finished;
  if (opts.keep) {
    out.info('Scratch services left running (--keep):');
    for (const line of kept) out.info(`  ${line}`);
  }
  if (opts.json) {
    out.json({
      runId,
      kind: 'drill',
      evidence: evidenceDir,
      backup: { id: plan.backup.id, time: plan.backup.time },
      objectives: plan.objectives,
      ...summary,
    });
  } else {
    out.result(`Drill of ${real.name}: ${summary.exitCode === 0 ? 'PASSED' : 'FAILED'}`);
    out.result(formatSummary(summary, plan, evidenceDir, out.color));
    if (!opts.keep) out.result('Scratch services stopped and removed.');
    out.result('');
    out.result(formatClosing(closingFromRun({ summary, plan, evidenceDir, events: bus.history })));
  }
  return summary.exitCode;
}
