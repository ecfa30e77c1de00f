import { randomBytes } from 'node:crypto';
import { readFile, realpath, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { EventBus, verificationEvent } from '../engine/events.js';
import { acquireLocks, type LockHandle } from '../engine/lock.js';
import { runPlan, type RendererName, type RunSummary } from '../engine/run.js';
import { identityLockKeys } from '../engine/target-identity.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { run } from '../exec/run.js';
import type { Redactor } from '../exec/redact.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence } from '../evidence/writer.js';
import { refuseOverUnfinished } from '../journal/detect.js';
import { attachJournal } from '../journal/journal.js';
import type { Plan } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { lockDirFor } from '../session/session.js';
import { formatBytes } from '../output.js';
import { clusterBinDir, loadPitrCatalog, type PitrCatalog } from './catalog.js';
import { buildPitrPlan } from './plan.js';
import { recoveryTarget, targetProblem, targetText, type PitrTarget } from './target.js';
import { verifyPitr, type PitrVerifyResult } from './verify.js';
import { baseForTarget, lsnText, type PitrBase } from './window.js';
import { lookupUid } from './users.js';
import { raCommand } from '../text/next.js';
import { pickBase } from './pick.js';
import { tablespaceRefusal } from './tablespaces.js';

/**
 * The point-in-time restore use case (restore / plan with --to on a physical recipe):
 *   catalog (bases + WAL windows) → pick the base for the target → lock → verify (base + WAL up to
 *   the target) → preflight (major, data dir owner/mode, room, archive readable by the server user)
 *   → cluster-level plan → evidence + journal → engine.
 * Everything before the engine reads only; the engine runs the plan (undo, journal, signals).
 */

export interface PitrPrepared {
  catalog: PitrCatalog;
  base: PitrBase;
  target: PitrTarget;
  verify: PitrVerifyResult;
  plan: Plan;
  preflight: string[];
  notes: string[];
}

export interface PitrSession {
  readonly runId: string;
  readonly redact: Redactor;
  prepare(o: {
    backup: string;
    target: PitrTarget;
    depth: 'quick' | 'deep';
    onStage?: (line: string) => void;
    lock: boolean;
  }): Promise<PitrPrepared>;
  start(
    p: PitrPrepared,
    o: {
      signal?: AbortSignal;
      stopSignal?: AbortSignal;
      renderer: RendererName;
      write?: (l: string) => void;
      color?: boolean;
      confirmedAt: Date;
      commandLine: string[];
      /** The bus to emit on (the guide's run screen listens to it); default: a new one. */
      bus?: EventBus;
    },
  ): Promise<{ summary: RunSummary; evidenceDir: string; bus: EventBus }>;
  dispose(): Promise<void>;
}

function clusterOrThrow(loaded: LoadedRecipe): NonNullable<NonNullable<LoadedRecipe['recipe']['components']['postgres']>['cluster']> {
  const c = loaded.recipe.components.postgres?.cluster;
  if (!c)
    throw new RestoreAssistantError(
      `Recipe ${loaded.recipe.name} has no components.postgres.cluster: a point-in-time restore replaces the whole cluster.`,
      ExitCode.usage,
      {
        untouched: 'Nothing was touched.',
        next: 'Add components.postgres.cluster (dataDir, service: {stop, start, status}) to the recipe (docs/recipes.md, "Point-in-time recovery").',
      },
    );
  return c;
}

/** Preflight problems (each: what, and what to do). */
async function preflight(
  loaded: LoadedRecipe,
  base: PitrBase,
  verify: PitrVerifyResult,
  archiveDir: string,
  dataDir: string,
): Promise<{ problems: string[]; notes: string[]; realDataDir: string }> {
  const cluster = clusterOrThrow(loaded);
  const problems: string[] = [];
  const notes: string[] = [];
  let realDataDir = path.resolve(dataDir);
  try {
    realDataDir = await realpath(dataDir);
    const st = await stat(realDataDir);
    const uid = await lookupUid(cluster.osUser);
    if (!st.isDirectory()) problems.push(`${realDataDir} is not a directory. Next: check components.postgres.cluster.dataDir.`);
    if (uid !== undefined && st.uid !== uid)
      problems.push(
        `${realDataDir} is owned by uid ${st.uid}, not by ${cluster.osUser} (uid ${uid}). Next: check components.postgres.cluster.dataDir and osUser.`,
      );
    if (uid === undefined) problems.push(`OS user ${cluster.osUser} does not exist. Next: set components.postgres.cluster.osUser.`);
    const mode = st.mode & 0o777;
    if (mode !== 0o700 && mode !== 0o750)
      problems.push(`${realDataDir} has mode ${mode.toString(8)} (PostgreSQL wants 0700 or 0750): is it the data directory?`);
    const version = (await readFile(path.join(realDataDir, 'PG_VERSION'), 'utf8').catch(() => '')).trim();
    const baseMajor = verify.pgVersion ?? (base.walMajor !== undefined ? String(base.walMajor) : undefined);
    if (!version)
      problems.push(
        `${realDataDir} has no PG_VERSION: it is not a PostgreSQL data directory. Next: check components.postgres.cluster.dataDir.`,
      );
    else if (baseMajor && version !== baseMajor)
      problems.push(
        `the cluster runs PostgreSQL ${version}, the base backup is PostgreSQL ${baseMajor}: a physical backup restores only into the same major. Next: restore on a PostgreSQL ${baseMajor} host.`,
      );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') notes.push(`${realDataDir} does not exist: nothing is set aside, the base is extracted there`);
    else problems.push(`${realDataDir} cannot be read (${code ?? (error as Error).message}). Next: run as root.`);
  }
  // Room: the base extracted beside the old data dir (which is only renamed: no copy), plus WAL
  // segments recovery restores into pg_wal (recycled as it goes; a few segments at a time).
  const need = (base.extractedBytes ?? base.set.totalSize) + 8 * (base.segSize ?? 16 << 20);
  try {
    const fs = await statfs(path.dirname(realDataDir));
    const free = Number(fs.bavail) * Number(fs.bsize);
    if (free < need)
      problems.push(
        `not enough room in ${path.dirname(realDataDir)}: ${formatBytes(free)} free, the extracted base and its WAL need ${formatBytes(need)} (the old data directory stays where it is, renamed, as the safety copy). Next: free space there, then run again.`,
      );
    else
      notes.push(
        `room: ${formatBytes(free)} free in ${path.dirname(realDataDir)}, ${formatBytes(need)} needed (the safety copy is a rename: no room)`,
      );
  } catch (error) {
    problems.push(`free space in ${path.dirname(realDataDir)} cannot be measured (${(error as NodeJS.ErrnoException).code ?? 'error'}).`);
  }
  // restore_command runs as the server's user: it must read the archive.
  if (process.getuid?.() === 0) {
    const r = await run(['runuser', '-u', cluster.osUser, '--', 'test', '-r', archiveDir, '-a', '-x', archiveDir], { timeoutMs: 10_000 });
    if (!r.ok)
      problems.push(
        `OS user ${cluster.osUser} cannot read the WAL archive ${archiveDir} (restore_command runs as that user). Next: chmod/chown the archive so ${cluster.osUser} can read it.`,
      );
  }
  return { problems, notes, realDataDir };
}

export function openPitrSession(
  loaded: LoadedRecipe,
  opts: { env?: NodeJS.ProcessEnv; recipeRef?: string; now?: () => Date } = {},
): PitrSession {
  const env = opts.env ?? process.env;
  const now = opts.now ?? (() => new Date());
  const runId = newRunId('restore', loaded.recipe.name, now());
  const redact = recipeRedactor(loaded, env);
  const lockDir = lockDirFor(loaded, env);
  const handles: LockHandle[] = [];
  const held = new Map<string, string>();

  return {
    runId,
    redact,
    async prepare(o) {
      const cluster = clusterOrThrow(loaded);
      if (o.lock) {
        await refuseOverUnfinished(loaded, opts.recipeRef ?? loaded.file, env);
        await prepareRecipeEvidence(loaded, env);
      }
      const catalog = await loadPitrCatalog(loaded.recipe.backups.root, { recipe: loaded.recipe, redact });
      const base = baseForTarget(
        pickBase(catalog, o.backup, o.target, raCommand('list', '--recipe', opts.recipeRef ?? loaded.file)),
        o.target,
      );
      // Preflight, first of all (nothing locked or read yet): a base with tablespaces is not restored.
      const ts = tablespaceRefusal(base.set);
      if (ts)
        throw new RestoreAssistantError(
          `Preflight: ${ts.what}; restore-assistant does not restore tablespaces, so this restore did not start.`,
          ExitCode.preflightFailed,
          {
            problems: [`why: ${ts.why}`],
            untouched: 'Nothing was touched: the cluster, its data directory and the backup are as they were.',
            next: `${ts.next[0]?.toUpperCase() ?? ''}${ts.next.slice(1)}; or choose a base without tablespaces (\`${raCommand('list', '--recipe', opts.recipeRef ?? loaded.file)}\` lists them, then --backup ID).`,
          },
        );
      const realData = await realpath(cluster.dataDir).catch(() => path.resolve(cluster.dataDir));
      const lockKeys = [...(await identityLockKeys(loaded.recipe, ['postgres'], 'restore')), `pgdata:${realData}`];
      if (o.lock) {
        const handle = await acquireLocks(lockKeys, { dir: lockDir, runId, command: 'restore', recipe: loaded.recipe.name, env });
        handles.push(handle);
        for (const [k, f] of handle.files) held.set(k, f);
      }
      o.onStage?.(
        `Base ${base.set.id} (taken ${base.startTime}) chosen for ${targetText(o.target)}; verifying it and the WAL archive (${o.depth})...`,
      );
      const binDir = clusterBinDir(loaded.recipe);
      const verify = await verifyPitr(base, { depth: o.depth, target: o.target, redact, ...(binDir ? { binDir } : {}) });
      if (!verify.report.ok) {
        throw new RestoreAssistantError(
          `Base ${base.set.id} and its WAL failed ${o.depth} verification for ${targetText(o.target)}: nothing is restored.`,
          ExitCode.backupRejected,
          {
            problems: verify.report.problems.map((p) => p.message),
            untouched: 'Nothing was touched.',
            next: `Run \`restore-assistant verify latest --recipe ${opts.recipeRef ?? loaded.file} --to '${targetText(o.target)}'\` for details; choose a target inside the window (restore-assistant list --recipe ${opts.recipeRef ?? loaded.file}).`,
          },
        );
      }
      o.onStage?.('Preflight (read-only)...');
      const pf = await preflight(loaded, base, verify, catalog.archiveDir, cluster.dataDir);
      const stamp = `${now().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(2).toString('hex')}`;
      const c = verify.report.components[0];
      const plan = buildPitrPlan({
        loaded,
        base,
        target: o.target,
        dataDir: pf.realDataDir,
        ...(c?.sha256 ? { verifiedSha256: c.sha256 } : {}),
        ...(c?.identity ? { identity: c.identity } : {}),
        archiveDir: catalog.archiveDir,
        lockKeys,
        now: now(),
        stamp,
        warnings: [...base.notes, ...pf.notes],
      });
      // RPO is measured to the point the data is restored to (the target, or the window's last commit).
      const rt = recoveryTarget(base, o.target);
      const point =
        rt.kind === 'time' ? rt.time : rt.kind === 'end' ? (base.window?.to ?? base.set.time) : (base.window?.from ?? base.set.time);
      plan.backup.time = point;
      const tp = targetProblem(base, o.target);
      if (tp) pf.problems.push(tp.message);
      const invalid = validatePlan(plan);
      if (invalid.length > 0) pf.problems.push(...invalid);
      return { catalog, base, target: o.target, verify, plan, preflight: pf.problems, notes: pf.notes };
    },

    async start(p, o) {
      const bus = o.bus ?? new EventBus();
      const evidence = attachRecipeEvidence(bus, { loaded, kind: 'restore', redact, runId, commandLine: o.commandLine, env });
      const journal = attachJournal(bus, { runDir: evidence.dir, lockKeys: p.plan.lockKeys, env });
      let summary: RunSummary;
      try {
        bus.emit(verificationEvent(p.verify.report, redact));
        const w = p.base.window;
        bus.emit({
          type: 'log',
          level: 'info',
          message: redact(
            `point-in-time restore: base ${p.base.set.id} (start LSN ${lsnText(p.base.startLsn)}, end LSN ${lsnText(p.base.endLsn)}), target ${targetText(p.target)}, window ${w?.from ?? '?'} .. ${w?.to ?? '?'}, WAL ${p.base.run?.first ?? '?'} .. ${w?.lastSegment ?? '?'} (${p.verify.segments} segments, ${formatBytes(p.verify.walBytes)}); restored to ${p.plan.backup.time}`,
          ),
        });
        summary = await runPlan(p.plan, {
          bus,
          redact,
          env,
          ...(o.signal ? { signal: o.signal } : {}),
          ...(o.stopSignal ? { stopSignal: o.stopSignal } : {}),
          renderer: o.renderer,
          ...(o.write ? { write: o.write } : {}),
          ...(o.color !== undefined ? { color: o.color } : {}),
          runId,
          kind: 'restore',
          confirmedAt: o.confirmedAt,
          operator: currentOperator(env).operator,
          lockDir,
          heldLocks: { files: held, release: async () => undefined },
          checkContext: { recipe: loaded.recipe, loaded, mode: 'restore' },
        });
      } finally {
        journal.dispose();
        await evidence.close();
      }
      return { summary, evidenceDir: evidence.dir, bus };
    },

    async dispose() {
      for (const h of handles.splice(0)) await h.release();
      held.clear();
    },
  };
}
