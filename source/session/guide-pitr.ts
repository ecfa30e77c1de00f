import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { loadPitrCatalog } from '../pitr/catalog.js';
import { openPitrSession, type PitrPrepared, type PitrSession } from '../pitr/session.js';
import { isPhysicalRecipe } from '../pitr/source.js';
import { targetText, type PitrTarget } from '../pitr/target.js';
import { lsnText, type PitrBase } from '../pitr/window.js';
import type { Plan } from '../plan/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { raCommand } from '../text/next.js';
import { sanitizeText } from '../text/sanitize.js';
import type { BackupSet } from '../catalog/types.js';
import type { GuideDeps, PitrBaseView, PitrPreparedView, RunResult, SetListing } from '../ui/types.js';

/**
 * The guide's point-in-time restores (physical layout: base backups + WAL archive), on top of the
 * same use case `restore --to` runs (pitr/session.ts): the list of bases with their windows; for a
 * chosen base and target, lock, verify base + WAL to the target, preflight and the cluster plan
 * (read-only); then the run, its events on the guide's bus. One PITR session at a time: a new
 * prepare, the end of a run, or dispose() releases the previous one's locks.
 */

export interface GuidePitr {
  /** The bases with their windows, newest first; undefined when the recipe is not physical. */
  list(loaded: LoadedRecipe): Promise<SetListing | undefined>;
  prepare: NonNullable<GuideDeps['preparePitr']>;
  owns(plan: Plan): boolean;
  run(plan: Plan, o: Parameters<GuideDeps['runPlan']>[1]): Promise<RunResult>;
  dispose(): Promise<void>;
}

export function baseView(b: PitrBase): PitrBaseView {
  const v: PitrBaseView = {
    startLsn: lsnText(b.startLsn),
    startTime: b.startTime,
    problems: b.problems.map((p) => p.message),
  };
  if (b.endLsn !== undefined) v.endLsn = lsnText(b.endLsn);
  if (b.window) v.window = { from: b.window.from, to: b.window.to, lastSegment: b.window.lastSegment };
  if (b.run?.first) v.walFirst = b.run.first;
  return v;
}

export function guidePitr(o: { env: NodeJS.ProcessEnv; commandLine: string[]; isDisposed: () => boolean }): GuidePitr {
  let current: PitrSession | undefined;
  const prepared = new WeakMap<Plan, { session: PitrSession; prepared: PitrPrepared }>();
  const release = async (session: PitrSession | undefined): Promise<void> => {
    if (current === session) current = undefined;
    await session?.dispose();
  };

  return {
    async list(loaded) {
      if (!isPhysicalRecipe(loaded)) return undefined;
      const cat = await loadPitrCatalog(loaded.recipe.backups.root, { recipe: loaded.recipe, redact: recipeRedactor(loaded, o.env) });
      const bases = [...cat.bases].sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime));
      const pitr: Record<string, PitrBaseView> = {};
      const sets: BackupSet[] = [];
      for (const b of bases) {
        pitr[b.set.id] = baseView(b);
        sets.push(b.set);
      }
      return {
        sets,
        warnings: cat.warnings,
        pitr,
      };
    },

    async prepare(loaded, set, target: PitrTarget, p) {
      if (o.isDisposed()) throw new Error('the guide has ended');
      await release(current);
      const session = openPitrSession(loaded, { env: o.env, recipeRef: loaded.file });
      current = session;
      try {
        const ready = await session.prepare({
          backup: set.id,
          target,
          depth: 'deep',
          lock: true,
          onStage: (line) => p.onProgress({ check: sanitizeText(session.redact(line)) }),
        });
        // The operator went back (or the guide ended) while this was verifying: its locks go now.
        if (p.signal.aborted || current !== session || o.isDisposed())
          throw new Error('the point-in-time restore was abandoned before its plan');
        if (ready.preflight.length > 0) {
          throw new RestoreAssistantError(
            `Preflight found ${ready.preflight.length} problem${ready.preflight.length === 1 ? '' : 's'}: the point-in-time restore did not start.`,
            ExitCode.preflightFailed,
            {
              problems: ready.preflight.map((x) => session.redact(x)),
              untouched: 'Nothing was touched.',
              next: `Fix the problems listed, then choose the base again (\`${raCommand('plan', '--recipe', loaded.file, '--backup', set.id, '--to', targetText(target))}\` shows the plan without touching anything).`,
            },
          );
        }
        prepared.set(ready.plan, { session, prepared: ready });
        const cluster = loaded.recipe.components.postgres!.cluster!;
        const pg = loaded.recipe.components.postgres!;
        const dataDir = await realpath(cluster.dataDir).catch(() => path.resolve(cluster.dataDir));
        const view: PitrPreparedView = {
          plan: ready.plan,
          report: ready.verify.report,
          target,
          dataDir,
          server: `${pg.host}:${pg.port}`,
          segments: ready.verify.segments,
          walBytes: ready.verify.walBytes,
        };
        return view;
      } catch (error) {
        await release(session);
        throw error;
      }
    },

    owns: (plan) => prepared.has(plan),

    async run(plan, r) {
      const ctx = prepared.get(plan);
      if (!ctx) throw new Error('run a point-in-time plan this guide prepared');
      try {
        const { summary, evidenceDir } = await ctx.session.start(ctx.prepared, {
          bus: r.bus,
          signal: r.signal,
          stopSignal: r.stopSignal,
          renderer: 'silent',
          confirmedAt: new Date(r.confirmedAt),
          commandLine: o.commandLine,
        });
        return { summary, evidenceDir, runId: ctx.session.runId };
      } finally {
        // As a restore's: the locks go when the run ends, not when the operator leaves the summary.
        await release(ctx.session);
      }
    },

    async dispose() {
      await release(current);
    },
  };
}
