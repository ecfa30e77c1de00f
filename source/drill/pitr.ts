import { randomBytes } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EventBus, verificationEvent, type EngineEventBody } from '../engine/events.js';
import { acquireLocks, type LockHandle } from '../engine/lock.js';
import { runPlan, type RendererName, type RunSummary } from '../engine/run.js';
import { identityLockKeys } from '../engine/target-identity.js';
import { RestoreAssistantError } from '../errors.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence } from '../evidence/writer.js';
import { ExitCode } from '../exit-codes.js';
import { formatBytes } from '../output.js';
import { clusterBinDir, loadPitrCatalog } from '../pitr/catalog.js';
import { pickBase } from '../pitr/pick.js';
import { buildPitrPlan } from '../pitr/plan.js';
import { tablespaceRefusal } from '../pitr/tablespaces.js';
import { recoveryTarget, targetText, type PitrTarget } from '../pitr/target.js';
import { verifyPitr, type PitrVerifyResult } from '../pitr/verify.js';
import { baseForTarget, lsnText, type PitrBase } from '../pitr/window.js';
import type { Plan } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { lockDirFor } from '../session/session.js';
import { raCommand } from '../text/next.js';
import { toolVersion } from '../version.js';
import { assertDrillIsolation, drillRecipe } from './isolate.js';
import { pickPitrDrill } from './pitr-pick.js';
import { assertScratchApart } from './production-overlap.js';
import { serverMajor, startPitrScratch, type PitrScratch } from './pitr-scratch.js';

/**
 * A point-in-time drill (physical recipes): catalog → base + target (given, or `--pick`) → lock
 * the drill of this cluster → deep verification (base + WAL to the target) → a scratch cluster
 * (pitr-scratch.ts: same major, throwaway data dir, socket only, archive_mode off) → the same
 * cluster-level plan a real point-in-time restore runs (pitr/plan.ts), retargeted at the scratch
 * cluster and checked action by action to address only it (isolate.ts) → engine → the recipe's
 * drill checks against the recovered cluster → evidence (kind drill: target, window, WAL, RTO,
 * RPO) → the scratch cluster removed. Production's data directory is never named by the plan,
 * production's server never contacted, production's WAL archive only read.
 */

export interface PitrDrillOptions {
  recipeRef: string;
  backup: string;
  /** --to (latest | immediate | a time); undefined with --pick. */
  target?: PitrTarget;
  pick?: 'random-recent' | 'oldest-retained';
  env: NodeJS.ProcessEnv;
  commandLine: string[];
  onStage: (line: string) => void;
  /** Asked once the base and target are known, before anything is verified or started. */
  confirm: (base: PitrBase, target: PitrTarget) => Promise<boolean>;
}

export type PitrDrillOutcome =
  | { kind: 'cancelled' }
  | { kind: 'rejected'; base: PitrBase; verify: PitrVerifyResult; summary: RunSummary; evidenceDir: string }
  | { kind: 'done'; base: PitrBase; target: PitrTarget; plan: Plan; summary: RunSummary; evidenceDir: string; bus: EventBus };

export interface PitrDrillSession {
  readonly runId: string;
  run(
    o: PitrDrillOptions,
    e: {
      signal?: AbortSignal;
      stopSignal?: AbortSignal;
      renderer: RendererName;
      write?: (l: string) => void;
      color?: boolean;
      startRun?: () => { signal: AbortSignal; stopSignal: AbortSignal; dispose: () => void };
    },
  ): Promise<PitrDrillOutcome>;
  /** Remove the scratch cluster (or keep it: returns how to reach it) and release the locks. */
  dispose(o?: { keepScratch?: boolean }): Promise<string[]>;
}

/** The server binaries of the base's major: the recipe's bin dir when it is that major, else Debian's. */
async function scratchBinaries(loaded: LoadedRecipe, major: number): Promise<{ binDir: string; found: string[] }> {
  const candidates = [clusterBinDir(loaded.recipe), `/usr/lib/postgresql/${major}/bin`].filter((d): d is string => Boolean(d));
  const found: string[] = [];
  for (const d of candidates) {
    const m = await serverMajor(d);
    found.push(`${d}: ${m === undefined ? 'no postgres binary' : `PostgreSQL ${m}`}`);
    if (m === major) return { binDir: d, found };
  }
  throw new RestoreAssistantError(
    `Preflight: the drill needs the PostgreSQL ${major} server (the base backup's major) on this host, and it is not here.`,
    ExitCode.preflightFailed,
    {
      problems: found,
      untouched: 'Nothing was restored; production was not contacted.',
      next: `Install it (apt-get install postgresql-${major}) or set components.postgres.cluster.bin to its bin directory, then run the drill again.`,
    },
  );
}

export function openPitrDrill(loaded: LoadedRecipe): PitrDrillSession {
  const runId = newRunId('drill', loaded.recipe.name, new Date());
  const redact = recipeRedactor(loaded, process.env);
  const handles: LockHandle[] = [];
  const held = new Map<string, string>();
  let scratch: PitrScratch | undefined;

  return {
    runId,
    async run(o, e) {
      const real = loaded.recipe;
      const cluster = real.components.postgres?.cluster;
      if (!cluster)
        throw new RestoreAssistantError(
          `Recipe ${real.name} has no components.postgres.cluster: a point-in-time drill needs it.`,
          ExitCode.usage,
          {
            untouched: 'Nothing was touched.',
            next: 'Add components.postgres.cluster (dataDir, service) to the recipe (docs/recipes.md, "Point-in-time recovery").',
          },
        );
      const env = o.env;
      const lockDir = lockDirFor(loaded, env);
      const catalog = await loadPitrCatalog(real.backups.root, { recipe: real, redact });
      let base: PitrBase;
      let target: PitrTarget;
      let pickNote: string | undefined;
      if (o.pick) {
        const picked = pickPitrDrill(catalog.bases, o.pick, real.drill.intervalDays);
        if (!picked)
          throw new RestoreAssistantError(
            `No base backup in ${catalog.root}/base has a restorable window to pick from.`,
            ExitCode.backupRejected,
            {
              problems: catalog.bases.flatMap((b) => b.problems.map((p) => `${b.set.id}: ${p.message}`)),
              untouched: 'Nothing was touched.',
              next: `\`${raCommand('list', '--recipe', o.recipeRef)}\` shows the bases and why they have no window.`,
            },
          );
        ({ base, target } = picked);
        pickNote = picked.note;
        o.onStage(picked.note);
      } else {
        target = o.target ?? { kind: 'latest' };
        base = baseForTarget(pickBase(catalog, o.backup, target, raCommand('list', '--recipe', o.recipeRef)), target);
      }
      const ts = tablespaceRefusal(base.set);
      if (ts)
        throw new RestoreAssistantError(
          `Preflight: ${ts.what}; restore-assistant does not restore tablespaces, so the drill did not start.`,
          ExitCode.preflightFailed,
          {
            problems: [`why: ${ts.why}`],
            untouched: 'Nothing was restored; production was not contacted.',
            next: `${ts.next[0]?.toUpperCase() ?? ''}${ts.next.slice(1)}; or drill a base without tablespaces (--backup ID).`,
          },
        );
      if (!(await o.confirm(base, target))) return { kind: 'cancelled' };
      const confirmedAt = new Date();
      await prepareRecipeEvidence(loaded, env);
      const prodData = await realpath(cluster.dataDir).catch(() => path.resolve(cluster.dataDir));
      const lockKeys = [...(await identityLockKeys(real, ['postgres'], 'drill')), `drill:pgdata:${prodData}`];
      const handle = await acquireLocks(lockKeys, { dir: lockDir, runId, command: 'drill', recipe: real.name, env });
      handles.push(handle);
      for (const [k, f] of handle.files) held.set(k, f);

      o.onStage(
        `Verifying base ${base.set.id} and the WAL archive to ${targetText(target)} (deep: the base against its manifest, every WAL record)...`,
      );
      const binHint = clusterBinDir(real);
      const verify = await verifyPitr(base, { depth: 'deep', target, redact, ...(binHint ? { binDir: binHint } : {}) });
      const notes: EngineEventBody[] = pickNote ? [{ type: 'log', level: 'info', message: redact(pickNote) }] : [];
      if (!verify.report.ok) {
        const bus = new EventBus();
        const evidence = attachRecipeEvidence(bus, { loaded, kind: 'drill', redact, runId, commandLine: o.commandLine, env });
        try {
          for (const n of notes) bus.emit(n);
          bus.emit(verificationEvent(verify.report, redact));
          bus.emit({
            type: 'run-started',
            runId,
            kind: 'drill',
            operator: currentOperator(env).operator,
            host: os.hostname(),
            toolVersion: toolVersion(),
            recipe: { name: real.name, file: loaded.file, digest: loaded.digest },
            backup: { id: base.set.id, time: base.set.time, location: base.set.location },
            confirmedAt: confirmedAt.toISOString(),
          });
          const summary: RunSummary = {
            outcome: 'refused',
            exitCode: ExitCode.backupRejected,
            rpoMs: Math.max(0, confirmedAt.getTime() - Date.parse(base.window?.to ?? base.set.time)),
            safetyCopies: [],
            state: ['Nothing was restored: the base or its WAL failed verification.', ...verify.report.problems.map((p) => p.message)],
            nextSteps: [
              `\`${raCommand('verify', base.set.id, '--recipe', o.recipeRef, '--to', targetText(target))}\` shows the problems; \`${raCommand('list', '--recipe', o.recipeRef)}\` the windows.`,
            ],
          };
          bus.emit({ type: 'run-finished', ...summary });
          return { kind: 'rejected', base, verify, summary, evidenceDir: evidence.dir };
        } finally {
          await evidence.close();
        }
      }

      const major = Number(verify.pgVersion ?? base.walMajor);
      if (!Number.isInteger(major) || major <= 0)
        throw new RestoreAssistantError(
          `Preflight: the PostgreSQL major of base ${base.set.id} is unknown (no PG_VERSION, no WAL page magic).`,
          ExitCode.preflightFailed,
          {
            untouched: 'Nothing was restored; production was not contacted.',
            next: `Check the base with \`${raCommand('verify', base.set.id, '--recipe', o.recipeRef)}\`.`,
          },
        );
      const { binDir } = await scratchBinaries(loaded, major);
      o.onStage(`Starting a scratch PostgreSQL ${major} cluster (throwaway data directory, unix socket only, archive_mode off)...`);
      // The scratch cluster's temp root must not be (or lie inside) the production data directory.
      assertScratchApart({
        real,
        recipeFile: loaded.file,
        again: o.commandLine.slice(1),
        scratch: [{ what: "the drill's temp root (TMPDIR)", path: os.tmpdir(), containing: false }],
        created: false,
      });
      scratch = await startPitrScratch({ binDir, major, productionPort: real.components.postgres?.port });

      // The drill recipe: the real recipe's names, database and drill checks; the scratch cluster's everything else.
      const { recipe: dr, skippedChecks } = drillRecipe(real, scratch.sandbox);
      const pg = dr.components.postgres!;
      dr.components.postgres = {
        ...pg,
        bin: binDir,
        cluster: {
          dataDir: scratch.dataDir,
          osUser: scratch.osUser,
          bin: binDir,
          recoveryTimeoutMinutes: cluster.recoveryTimeoutMinutes,
          service: { ...scratch.service, timeoutSeconds: 60 },
        },
      };
      const drLoaded: LoadedRecipe = { ...loaded, recipe: { ...dr, services: [] } };
      const now = new Date();
      const stamp = `${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(2).toString('hex')}`;
      const c = verify.report.components[0];
      const plan = buildPitrPlan({
        loaded: drLoaded,
        base,
        target,
        dataDir: scratch.dataDir,
        ...(c?.sha256 ? { verifiedSha256: c.sha256 } : {}),
        ...(c?.identity ? { identity: c.identity } : {}),
        archiveDir: catalog.archiveDir,
        lockKeys,
        now,
        stamp,
        warnings: [...base.notes, ...skippedChecks.map((s) => `check skipped in drill: ${s}`)],
      });
      plan.mode = 'drill';
      plan.targets = {
        postgres: `scratch PostgreSQL ${major} cluster ${scratch.dataDir} (socket ${scratch.socketDir}), to ${targetText(target)}`,
      };
      // The recipe's drill checks (buildPitrPlan takes the restore ones).
      const health = plan.steps.find((s) => s.id === 'health');
      if (health)
        health.actions =
          dr.checks.length > 0
            ? dr.checks.map((check) => ({ type: 'check' as const, check, purpose: `Drill check: ${check.name}` }))
            : [{ type: 'note' as const, purpose: 'The recipe has no drill checks (checks with when: [drill]).' }];
      const rt = recoveryTarget(base, target);
      plan.backup.time =
        rt.kind === 'time' ? rt.time : rt.kind === 'end' ? (base.window?.to ?? base.set.time) : (base.window?.from ?? base.set.time);
      const invalid = validatePlan(plan);
      if (invalid.length > 0)
        throw new RestoreAssistantError('The drill plan is invalid.', ExitCode.internal, {
          problems: invalid,
          untouched: 'Nothing was restored; production was not contacted.',
          next: 'This is a bug in restore-assistant: report it with the drill command line.',
        });
      assertDrillIsolation(plan, scratch.sandbox, real);

      const bus = new EventBus();
      const evidence = attachRecipeEvidence(bus, { loaded, kind: 'drill', redact, runId, commandLine: o.commandLine, env });
      let summary: RunSummary;
      const runSignals = e.startRun?.();
      try {
        for (const n of notes) bus.emit(n);
        bus.emit(verificationEvent(verify.report, redact));
        const w = base.window;
        bus.emit({
          type: 'log',
          level: 'info',
          message: redact(
            `point-in-time drill: base ${base.set.id} (start LSN ${lsnText(base.startLsn)}, end LSN ${lsnText(base.endLsn)}), target ${targetText(target)}, window ${w?.from ?? '?'} .. ${w?.to ?? '?'}, WAL ${base.run?.first ?? '?'} .. ${w?.lastSegment ?? '?'} (${verify.segments} segments, ${formatBytes(verify.walBytes)}); restored to ${plan.backup.time}; into scratch cluster ${scratch.dataDir} (PostgreSQL ${major}, socket only, archive_mode off; the WAL archive ${catalog.archiveDir} is only read)`,
          ),
        });
        for (const s of skippedChecks) bus.emit({ type: 'log', level: 'warn', message: `check skipped in drill: ${s}` });
        const signal = runSignals?.signal ?? e.signal;
        const stopSignal = runSignals?.stopSignal ?? e.stopSignal;
        summary = await runPlan(plan, {
          bus,
          redact,
          env: { ...env, RESTORE_ASSISTANT_DRILL_PGPASSWORD: randomBytes(12).toString('hex') },
          ...(signal ? { signal } : {}),
          ...(stopSignal ? { stopSignal } : {}),
          renderer: e.renderer,
          ...(e.write ? { write: e.write } : {}),
          ...(e.color !== undefined ? { color: e.color } : {}),
          runId,
          kind: 'drill',
          confirmedAt,
          operator: currentOperator(env).operator,
          lockDir,
          heldLocks: { files: held, release: async () => undefined },
          checkContext: { recipe: drLoaded.recipe, loaded: drLoaded, mode: 'drill' },
        });
      } finally {
        runSignals?.dispose();
        await evidence.close();
      }
      return { kind: 'done', base, target, plan, summary, evidenceDir: evidence.dir, bus };
    },

    async dispose(o = {}) {
      let kept: string[] = [];
      if (scratch) {
        if (o.keepScratch) kept = scratch.connectionInfo();
        else await scratch.teardown();
      }
      for (const h of handles.splice(0)) await h.release();
      held.clear();
      return kept;
    },
  };
}
