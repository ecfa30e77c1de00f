import path from 'node:path';
import type { readHistory, HistoryRun } from '../evidence/history.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { sanitizeText } from '../text/sanitize.js';
import type { BackupSet } from '../catalog/types.js';
import type { Plan } from '../plan/types.js';
import type { GuideDeps, GuideHistoryEntry, GuideMode, GuideRtoTrend, RecipeChoice, SetListing } from '../ui/types.js';
import type { Session } from './session.js';
import type { GuidePitr } from './guide-pitr.js';

/**
 * The guided flow's side effects (the `GuideDeps` the screens see), on top of the restore session:
 * the same prepare (lock before verify and probe, one policy) and start (evidence, engine with the
 * 'silent' renderer: the Ink view draws from the events) as `restore` and `drill`.
 *
 * One session per recipe and mode: choosing another recipe or mode disposes of the previous one
 * (its locks released, a drill's scratch services removed); `dispose()` ends the last one.
 *
 * Every module behind a method (the recipe parser, the catalog, evidence, the session with the
 * engine, listr2, the verifiers and the AWS SDK) is imported when the method is first called, not
 * with this file: the guide draws its first screen before any of them is loaded.
 */

export interface RealGuideDeps extends GuideDeps {
  /** Release the locks and tear down drill scratch services, if any. */
  dispose(): Promise<void>;
}

export interface GuideDepsOptions {
  env?: NodeJS.ProcessEnv;
  /** The command line recorded in evidence. */
  commandLine?: string[];
  /** Recipe search directories (default: $RESTORE_ASSISTANT_RECIPES, ./recipes). */
  dirs?: string[];
}

function toEntry(run: HistoryRun): GuideHistoryEntry {
  const e: GuideHistoryEntry = {
    runId: run.runId,
    kind: run.kind,
    startedAt: run.startedAt,
    outcome: !run.finished && run.outcome === 'interrupted' ? 'killed' : run.outcome,
  };
  if (run.backup) e.backupId = run.backup.id;
  if (run.rtoMs !== null) e.rtoMs = run.rtoMs;
  if (run.rpoMs !== null) e.rpoMs = run.rpoMs;
  if (run.finishedAt) e.durationMs = Math.max(0, Date.parse(run.finishedAt) - Date.parse(run.startedAt));
  if (run.dir) e.dir = run.dir;
  return e;
}

export function createGuideDeps(options: GuideDepsOptions = {}): RealGuideDeps {
  const env = options.env ?? process.env;
  const commandLine = options.commandLine ?? ['restore-assistant', 'guide'];
  let current: { key: string; session: Session } | undefined;
  let disposed = false;

  /** The session for this recipe and mode (a new one, after disposing of the previous, when either changed). */
  const sessionFor = async (loaded: LoadedRecipe, mode: GuideMode): Promise<Session> => {
    // Loaded on first use (the engine, listr2, verifiers, the AWS SDK): not before the first screen.
    const { openSession } = await import('./session.js');
    // A job still starting when the guide ended (Ctrl-C, a signal) must not open a session nobody disposes of.
    if (disposed) throw new Error('the guide has ended');
    const key = `${loaded.file}|${loaded.digest}|${mode}`;
    if (current && current.key !== key) {
      const old = current;
      current = undefined;
      await old.session.dispose();
    }
    current ??= { key, session: openSession({ loaded, mode, env, commandLine, surface: 'guide' }) };
    return current.session;
  };
  /** Off-site sets as listed → the set staged from them (verify stages; probe and plan use the staged copy). */
  const staged = new WeakMap<BackupSet, BackupSet>();
  const offsiteOnly = new WeakSet<BackupSet>();
  const real = (set: BackupSet): BackupSet => staged.get(set) ?? set;
  /** Staged copies still on disk: removed (or kept, keepStaged) after the run, or when the guide ends. */
  const toRelease: BackupSet[] = [];
  const releaseAll = async (): Promise<string[]> => {
    const lines: string[] = [];
    const sets = toRelease.splice(0);
    if (sets.length === 0) return lines;
    const { releaseStaged } = await import('../offsite/index.js');
    for (const set of sets) {
      const line = await releaseStaged(set).catch((e: unknown) => `Staged copy not removed: ${String(e)}`);
      if (line) lines.push(sanitizeText(line));
    }
    return lines;
  };
  /** Point-in-time restores (physical layout): their own session (pitr/session.ts), one at a time. */
  // guide-pitr.ts (pitr/session, the engine) is loaded when a recipe is first listed, not before the
  // first screen; a plan it owns exists only once it is loaded.
  let pitrLoaded: GuidePitr | undefined;
  let pitrLoading: Promise<GuidePitr> | undefined;
  const loadPitr = (): Promise<GuidePitr> =>
    (pitrLoading ??= import('./guide-pitr.js').then((m) => (pitrLoaded = m.guidePitr({ env, commandLine, isDisposed: () => disposed }))));
  const pitr: GuidePitr = {
    list: async (loaded) => (await loadPitr()).list(loaded),
    prepare: async (...a: Parameters<GuidePitr['prepare']>) => (await loadPitr()).prepare(...a),
    owns: (plan) => pitrLoaded?.owns(plan) ?? false,
    run: async (plan, o) => (await loadPitr()).run(plan, o),
    dispose: async () => {
      if (pitrLoading) await (await pitrLoading).dispose();
    },
  };
  const sessionOf = (mode: GuideMode): Session => {
    if (!current || current.session.mode !== mode) throw new Error(`no ${mode} session: the set was not verified or probed in this guide`);
    return current.session;
  };

  const historyView = async (loaded: LoadedRecipe): ReturnType<typeof readHistory> =>
    (await import('../evidence/history.js')).readHistory(evidenceDir(loaded.recipe, env), {
      recipe: loaded.recipe.name,
      intervalDays: loaded.recipe.drill.intervalDays,
    });
  const history = async (loaded: LoadedRecipe): Promise<GuideHistoryEntry[]> => {
    const view = await historyView(loaded);
    return view.runs
      .filter((r) => r.kind === 'restore' || r.kind === 'drill')
      .map(toEntry)
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  };

  return {
    async listRecipes(extra) {
      const { discoverRecipes, recipeDirs } = await import('../recipe/load.js');
      const found = await discoverRecipes(options.dirs ?? recipeDirs(env));
      const choices: RecipeChoice[] = [];
      const files = new Set<string>();
      for (const loaded of extra) {
        files.add(loaded.file);
        choices.push({ name: loaded.recipe.name, file: loaded.file, loaded });
      }
      for (const e of found) {
        const file = e.loaded?.file ?? path.resolve(e.file);
        if (files.has(file)) continue;
        files.add(file);
        const choice: RecipeChoice = { name: e.name, file: e.file };
        if (e.loaded) choice.loaded = e.loaded;
        if (e.error) choice.error = [e.error.message, ...e.error.problems].slice(0, 3).join(' ');
        choices.push(choice);
      }
      await Promise.all(
        choices.map(async (c) => {
          if (!c.loaded) return;
          try {
            const last = (await history(c.loaded))[0];
            if (last) c.lastRun = last;
          } catch {
            // No readable history: the screen says none is recorded.
          }
        }),
      );
      return choices;
    },

    async listSets(loaded): Promise<SetListing> {
      const pitrListing = await pitr.list(loaded);
      if (pitrListing) return pitrListing;
      const b = loaded.recipe.backups;
      if (b.offsite) {
        const { guideListing } = await import('./guide-offsite.js');
        const listing = await guideListing(loaded, env);
        for (const s of listing.offsiteOnly) offsiteOnly.add(s);
        return listing.listing;
      }
      const { listBackupSets } = await import('../catalog/index.js');
      const result = await listBackupSets({
        root: b.root,
        layout: b.layout,
        ...(b.database ? { database: b.database } : {}),
        pairWindowMinutes: b.pairWindowMinutes,
      });
      return { sets: result.sets, warnings: result.warnings };
    },

    preparePitr: (loaded, set, target, o) => pitr.prepare(loaded, set, target, o),

    async verify(loaded, listed, o) {
      const session = await sessionFor(loaded, o.mode);
      let set = real(listed);
      const { needsStaging, stageForGuide } = await import('./guide-offsite.js');
      if (needsStaging(listed, offsiteOnly.has(listed)) && !staged.has(listed)) {
        // Only in the bucket, or encrypted: downloaded to staging (byte progress, ETA), its
        // checksums and decryption checked, before the local verification; a rejection here
        // touches nothing (and is recorded as a rejected verify run, as restore records it).
        set = await stageForGuide(loaded, listed, {
          env,
          redact: session.redactor(),
          signal: o.signal,
          log: (line) => o.onProgress({ staging: sanitizeText(line) }),
          offsiteOnly: offsiteOnly.has(listed),
        });
        staged.set(listed, set);
        // Recorded in the run's evidence (keys, ETags, sizes, sha256); released by this guide, not
        // by the session, whose release line would be written over the screen.
        const { stagedEvents } = await import('../offsite/index.js');
        for (const e of stagedEvents(set)) session.note(e);
        toRelease.push(set);
      }
      return session.verify(set, {
        depth: o.depth,
        signal: o.signal,
        onProgress: (p) =>
          o.onProgress({ component: p.component, check: sanitizeText(path.basename(p.path)), done: p.bytesDone, total: p.bytesTotal }),
      });
    },

    async probe(loaded, set, report, o) {
      const session = await sessionFor(loaded, o.mode);
      return session.probe(real(set), report, { signal: o.signal });
    },

    buildPlan(req) {
      return sessionOf(req.mode).plan({
        set: real(req.set),
        facts: req.facts,
        ...(req.verify ? { verify: req.verify } : {}),
        flags: {
          yes: true,
          missingRoles: req.missingRoles,
          ...(req.overrideRejected !== undefined ? { forceUnverified: req.overrideRejected } : {}),
        },
      });
    },

    async runPlan(plan: Plan, o) {
      if (pitr.owns(plan)) return pitr.run(plan, o);
      const session = sessionOf(plan.mode);
      const {
        summary,
        evidenceDir: dir,
        runId,
      } = await session.start(plan, {
        bus: o.bus,
        signal: o.signal,
        stopSignal: o.stopSignal,
        renderer: 'silent',
        confirmedAt: new Date(o.confirmedAt),
        // The operator's choice on the plan screen (u), applied to the plan this guide built.
        rollbackOnUnhealthy: o.rollbackOnUnhealthy,
        ...(o.onUnhealthy ? { onUnhealthy: o.onUnhealthy } : {}),
      });
      // A restore is over: its locks go now, not when the operator leaves the summary; a session
      // dropped while the summary is up must not leave stale locks that read as "a run that may
      // have left a restore half done". (A drill's scratch services stay until dispose.)
      if (plan.mode === 'restore' && current?.session === session) {
        current = undefined;
        await session.dispose();
      }
      const notes = plan.mode === 'restore' ? await releaseAll() : [];
      return { summary, evidenceDir: dir, runId, ...(notes.length > 0 ? { notes } : {}) };
    },

    history,

    async rtoTrend(loaded) {
      const trend = (await historyView(loaded)).trends.find((t) => t.recipe === loaded.recipe.name);
      const out: GuideRtoTrend = trend
        ? { points: trend.points, direction: trend.direction, changePct: trend.changePct }
        : { points: [], direction: 'n/a', changePct: null };
      return out;
    },

    async runReport(entry) {
      if (!entry.dir) throw new Error(`run ${entry.runId} has no directory left in the evidence (only its history entry)`);
      // Rebuilt from events.jsonl (the same as `restore-assistant report DIR`); hostile text escaped.
      const md = await (await import('../evidence/report.js')).renderReport(entry.dir, 'md');
      return md.split('\n').map((line) => sanitizeText(line));
    },

    clock: () => new Date(),

    async dispose() {
      disposed = true;
      const s = current;
      current = undefined;
      await pitr.dispose();
      await s?.session.dispose();
      // The screens are gone by now: the staged copies' fate is said on stderr.
      for (const line of await releaseAll()) process.stderr.write(`${line}\n`);
    },
  };
}
