import path from 'node:path';
import { defaultSafetyDir } from '../state/paths.js';
import type { PostgresTarget } from '../recipe/schema.js';
import * as pg from '../targets/postgres.js';
import type { PlannedAction } from '../actions/types.js';
import { component, fileSafe, num, verifyFacts, type BuildPlanInput, type StepDraft } from './draft.js';
import { plainParallelChoice } from './plain-parallel.js';

/** The PostgreSQL steps of a plan: end sessions, keep a safety copy (rename or dump), create, load, analyze; their undos. */

export function postgresSteps(t: PostgresTarget, input: BuildPlanInput, stamp: string, warnings: string[]): StepDraft[] {
  const { set, facts, options, verify } = input;
  const comp = component(set, 'postgres');
  const db = t.database;
  const f = facts.postgres;
  const steps: StepDraft[] = [];
  const missing = f?.missingRoles ?? [];
  const skipOwnership = options.missingRoles === 'skip-ownership';
  const ctxTemp = `/tmp/restore-assistant-${stamp}${comp.format === 'pg-directory' ? '.dir' : '.dump'}`;

  steps.push({
    id: 'postgres:terminate',
    title: `End sessions on database ${db}`,
    doneTitle: `Sessions on ${db} ended`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: pg.terminateActions(t),
    undo: { title: `Allow connections to ${db} again`, actions: pg.allowConnectionsActions(t) },
  });

  if (t.safetyCopy === 'rename') {
    const aside = pg.safetyDatabaseName(db, stamp);
    if (f?.databaseExists === false)
      warnings.push(`Database ${db} did not exist when probed: the rename keeps nothing (it is skipped when the database is absent).`);
    if (!aside.startsWith(db))
      warnings.push(`Database name ${db} is shortened in the safety copy name ${aside} (PostgreSQL names are at most 63 bytes).`);
    steps.push({
      id: 'postgres:safety-copy',
      title: `Rename database ${db} aside to ${aside}`,
      doneTitle: `Database ${db} kept as ${aside}`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: true,
      destroys: `nothing: database ${db} is renamed to ${aside} and kept (it refuses connections until you ALTER DATABASE ... ALLOW_CONNECTIONS true)`,
      safetyCopy: { component: 'postgres', kind: 'rename', location: aside, description: `the database as it was, renamed to ${aside}` },
      actions: pg.renameAsideActions(t, aside),
      undo: { title: `Rename ${aside} back to ${db}`, actions: pg.renameBackActions(t, aside) },
    });
  } else if (t.safetyCopy === 'dump') {
    const safetyDir = options.safetyDir ?? defaultSafetyDir(input.recipe.recipe);
    const file = path.join(safetyDir, `${fileSafe(db)}__pre_restore_${stamp}.dump`);
    const absent = f?.databaseExists === false;
    // pg_dump runs before the terminate step refuses connections (it must connect); the
    // application services are already stopped.
    steps.unshift({
      id: 'postgres:safety-copy',
      title: absent ? `Note that database ${db} does not exist` : `Dump database ${db} to ${file}`,
      doneTitle: absent ? `Nothing to keep of ${db}` : `Database ${db} dumped to ${file}`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: false,
      safetyCopy: absent
        ? { component: 'postgres', kind: 'none', location: '', description: `nothing to keep: database ${db} did not exist when probed` }
        : { component: 'postgres', kind: 'dump', location: file, description: `pg_dump -Fc of ${db} as it was` },
      actions: absent
        ? [{ type: 'note', purpose: `Database ${db} did not exist when probed: there is nothing to dump.` }]
        : pg.dumpSafetyCopyActions(t, file, `/tmp/restore-assistant-safety-${stamp}.dump`),
    });
    const restoreBack = absent
      ? []
      : pg.archiveRestoreActions(t, file, { jobs: 1, skipOwnership: false, ctxTempPath: `/tmp/restore-assistant-safety-${stamp}.dump` })
          .actions;
    steps.push({
      id: 'postgres:drop',
      title: `Drop database ${db}`,
      doneTitle: `Database ${db} dropped`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: !absent,
      ...(absent ? {} : { destroys: `database ${db} (a pg_dump of it is kept at ${file})` }),
      actions: pg.dropDatabaseActions(t, `Drop database ${db}`),
      undo: {
        title: absent ? `Check that nothing is named ${db} now` : `Recreate ${db} from the safety dump`,
        // The database this run created is dropped by its OID (postgres:create's undo); whatever else
        // is named ${db} now is not this run's to drop: refused with its OID.
        actions: [
          ...pg.assertNoDatabaseActions(t, 'the one this run created was dropped by its OID'),
          ...(absent ? [] : [...pg.createDatabaseActions(t), ...restoreBack]),
        ],
      },
    });
  } else {
    // A drill's scratch database is throwaway: the drill keeps no copy of it, whatever the recipe says.
    const why = input.mode === 'drill' ? 'a drill keeps no copy of its throwaway scratch database' : 'the recipe sets safetyCopy: none';
    if (input.mode !== 'drill') warnings.push(`No safety copy of database ${db}: ${why}. Its current contents are lost for good.`);
    steps.push({
      id: 'postgres:drop',
      title: `Drop database ${db} (no safety copy)`,
      doneTitle: `Database ${db} dropped`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: true,
      destroys: `database ${db} and everything in it, with no copy kept (${why})`,
      safetyCopy: {
        component: 'postgres',
        kind: 'none',
        location: '',
        description: input.mode === 'drill' ? `none: ${why}` : 'none: the operator chose to keep no copy (recipe safetyCopy: none)',
      },
      actions: [
        { type: 'note', purpose: `No safety copy is kept of ${db} (${why}); this was recorded.` },
        ...pg.dropDatabaseActions(t, `Drop database ${db}`),
      ],
    });
  }

  if (missing.length > 0 && options.missingRoles === 'create') {
    steps.push({
      id: 'postgres:roles',
      title: `Create missing roles ${missing.join(', ')}`,
      doneTitle: `Roles ${missing.join(', ')} created`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: false,
      actions: pg.createRolesActions(t, missing),
      undo: { title: `Drop roles ${missing.join(', ')}`, actions: pg.dropRolesActions(t, missing) },
    });
  } else if (missing.length > 0 && skipOwnership) {
    warnings.push(`The dump references roles the server lacks (${missing.join(', ')}): restoring without ownership and grants.`);
  } else if (missing.length > 0) {
    warnings.push(
      `The dump references roles the server lacks (${missing.join(', ')}): preflight refuses until you choose --missing-roles create or --missing-roles skip-ownership.`,
    );
  }

  steps.push({
    id: 'postgres:create',
    title: `Create database ${db}`,
    doneTitle: `Database ${db} created`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: pg.createDatabaseRecordedActions(t),
    undo: {
      title: `Drop the new database ${db} (only the one this run created, by its OID)`,
      actions: pg.dropCreatedDatabaseActions(t, stamp),
    },
  });

  let restoreActions: PlannedAction[];
  let undoActions: PlannedAction[] | undefined;
  if (comp.format === 'pg-plain' || comp.format === 'pg-plain-gz') {
    const choice = plainParallelChoice(
      Math.max(1, options.jobs),
      verifyFacts(verify, 'postgres')['plainSections'],
      path.basename(comp.path),
      verify ? verify.depth : 'none',
      // A drill's scratch cluster on this host runs with wal_level minimal (sandbox/pg-tuning.ts).
      input.mode === 'drill' && t.exec.kind === 'host',
    );
    if (choice.warning) warnings.push(choice.warning);
    restoreActions = [
      pg.plainRestoreAction(t, comp.path, {
        gunzip: comp.format === 'pg-plain-gz',
        skipOwnership,
        ...(choice.parallel ? { parallel: choice.parallel } : {}),
      }),
    ];
  } else {
    const toc = f?.dump?.tocEntries ?? num(verifyFacts(verify, 'postgres')['tocEntries']);
    const jobs = Math.max(1, options.jobs);
    const r = pg.archiveRestoreActions(t, comp.path, {
      jobs,
      skipOwnership,
      ctxTempPath: ctxTemp,
      ...(toc !== undefined ? { tocEntries: toc } : {}),
    });
    restoreActions = r.actions;
    if (r.cleanup.length > 0) undoActions = r.cleanup;
  }
  steps.push({
    id: 'postgres:restore',
    title: `Restore PostgreSQL database ${db}`,
    doneTitle: `PostgreSQL database ${db} restored`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: restoreActions,
    ...(undoActions ? { undo: { title: 'Remove the archive copied into the container', actions: undoActions } } : {}),
  });
  steps.push({
    id: 'postgres:analyze',
    title: `Analyze database ${db}`,
    doneTitle: `Database ${db} analyzed`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: pg.analyzeActions(t),
  });
  return steps;
}
