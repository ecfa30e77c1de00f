import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupSet } from '../../source/catalog/types.js';
import { buildPlan, planStamp, type BuildPlanInput } from '../../source/plan/build.js';
import { resolvePlanOptions } from '../../source/plan/options.js';
import { renderPlanText } from '../../source/plan/render.js';
import type { Plan, PlanStep, TargetFacts } from '../../source/plan/types.js';
import type { PlannedAction } from '../../source/actions/types.js';
import { loadRecipeFile, type LoadedRecipe } from '../../source/recipe/load.js';

const NOW = new Date('2026-01-18T03:04:05.678Z');
const recipesDir = path.resolve(import.meta.dirname, '../../recipes');

async function story(): Promise<LoadedRecipe> {
  return loadRecipeFile(path.join(recipesDir, 'story-portal.yaml'));
}
async function metachat(): Promise<LoadedRecipe> {
  return loadRecipeFile(path.join(recipesDir, 'metachat.yaml'));
}

function storySet(): BackupSet {
  const loc = '/var/backups/story-portal/2026-01-18_01-45-13';
  return {
    id: '2026-01-18_01-45-13',
    layout: 'story-portal',
    root: '/var/backups/story-portal',
    location: loc,
    time: '2026-01-18T01:45:13Z',
    timeSource: 'metadata',
    components: [
      { kind: 'postgres', format: 'pg-plain-gz', path: `${loc}/postgres.sql.gz`, size: 1000, checksum: 'absent' },
      { kind: 'redis', format: 'redis-rdb', path: `${loc}/redis.rdb`, size: 100, checksum: 'absent' },
      { kind: 'prometheus', format: 'prometheus-tar-gz', path: `${loc}/prometheus-data.tar.gz`, size: 5000, checksum: 'absent' },
    ],
    metadata: {},
    warnings: [],
    totalSize: 6100,
  };
}

function metachatSet(): BackupSet {
  return {
    id: '20260118_020000',
    layout: 'metachat',
    root: '/var/backups/metachat',
    location: '/var/backups/metachat',
    time: '2026-01-18T02:00:00Z',
    timeSource: 'name',
    components: [
      {
        kind: 'postgres',
        format: 'pg-custom',
        path: '/var/backups/metachat/postgres/metachat_20260118_020000.dump',
        size: 2000,
        checksum: 'present',
        expectedSha256: 'ab'.repeat(32),
      },
      { kind: 'redis', format: 'redis-rdb', path: '/var/backups/metachat/redis/dump_20260118_020000.rdb', size: 50, checksum: 'absent' },
    ],
    metadata: {},
    warnings: [],
    totalSize: 2050,
  };
}

const metachatFacts = (
  over: Partial<NonNullable<TargetFacts['redis']>> = {},
  pgOver: Partial<NonNullable<TargetFacts['postgres']>> = {},
): TargetFacts => ({
  postgres: { serverMajor: 15, databaseExists: true, missingRoles: [], dump: { tocEntries: 42 }, ...pgOver },
  redis: {
    dir: '/var/lib/redis',
    dbfilename: 'dump.rdb',
    appendonly: false,
    appenddirname: 'appendonlydir',
    appendfilename: 'appendonly.aof',
    version: '7.0.15',
    versionMajor: 7,
    source: 'server',
    backupKeys: 12,
    ...over,
  },
});

function input(
  recipe: LoadedRecipe,
  set: BackupSet,
  facts: TargetFacts,
  flags: Parameters<typeof resolvePlanOptions>[1] = {},
): BuildPlanInput {
  return { recipe, set, facts, options: resolvePlanOptions(recipe.recipe, { jobs: 4, ...flags }, 2), mode: 'restore', now: NOW };
}

function step(plan: Plan, id: string): PlanStep {
  const s = plan.steps.find((x) => x.id === id);
  if (!s) throw new Error(`no step ${id}: ${plan.steps.map((x) => x.id).join(', ')}`);
  return s;
}

function execs(actions: PlannedAction[]): Array<Extract<PlannedAction, { type: 'exec' }>> {
  return actions.filter((a): a is Extract<PlannedAction, { type: 'exec' }> => a.type === 'exec');
}

/** Every argv the plan runs, in run order for a single lane, with the step id. */
function allArgv(plan: Plan): Array<{ step: string; argv: string[]; probe: boolean }> {
  const out: Array<{ step: string; argv: string[]; probe: boolean }> = [];
  for (const s of plan.steps) {
    for (const a of s.actions) {
      if (a.type === 'exec') out.push({ step: s.id, argv: a.argv, probe: false });
      if (a.type === 'wait-command') out.push({ step: s.id, argv: a.command.argv, probe: a.untilExit === 'non-zero' });
    }
  }
  return out;
}

describe('buildPlan: story-portal (docker)', () => {
  it('is pure and deterministic: same input, same plan; stamp from now', async () => {
    const r = await story();
    const a = buildPlan(input(r, storySet(), {}));
    const b = buildPlan(input(r, storySet(), {}));
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.stamp).toBe('20260118T030405Z');
    expect(planStamp(new Date('2026-12-31T23:59:59.999Z'))).toBe('20261231T235959Z');
    expect(a.createdAt).toBe(NOW.toISOString());
  });

  it('orders the steps: preflight, quiesce in recipe order, lanes, start in reverse, health', async () => {
    const plan = buildPlan(input(await story(), storySet(), {}));
    expect(plan.steps.map((s) => s.id)).toEqual([
      'preflight',
      'quiesce:api',
      'quiesce:worker',
      'postgres:terminate',
      'postgres:safety-copy',
      'postgres:create',
      'postgres:restore',
      'postgres:analyze',
      'redis:stop',
      'redis:safety-copy',
      'redis:place',
      'redis:start',
      'redis:verify-keys',
      'prometheus:stop',
      'prometheus:safety-copy',
      'prometheus:place',
      'prometheus:start',
      'prometheus:verify-series',
      'start:worker',
      'start:api',
      'health',
    ]);
    // Lanes start after the last quiesce; services start after every lane; health after them.
    expect(step(plan, 'postgres:terminate').dependsOn).toEqual(['quiesce:worker']);
    expect(step(plan, 'redis:stop').dependsOn).toEqual(['quiesce:worker']);
    expect(step(plan, 'prometheus:stop').dependsOn).toEqual(['quiesce:worker']);
    expect(step(plan, 'redis:place').dependsOn).toEqual(['redis:safety-copy']);
    expect(step(plan, 'start:worker').dependsOn).toEqual(['postgres:analyze', 'redis:verify-keys', 'prometheus:verify-series']);
    expect(step(plan, 'start:api').dependsOn).toEqual(['start:worker']);
    expect(step(plan, 'health').dependsOn).toEqual(['start:api']);
    expect(step(plan, 'postgres:restore').lane).toBe('postgres');
  });

  it('restores the plain .sql.gz through docker exec -i psql fed from the host-side gunzip stream', async () => {
    const plan = buildPlan(input(await story(), storySet(), {}));
    const [restore] = execs(step(plan, 'postgres:restore').actions);
    expect(restore?.argv).toEqual([
      'docker',
      'exec',
      '-i',
      '-e',
      'PGPASSWORD',
      'agentic-postgres',
      'psql',
      '-X',
      '-v',
      'ON_ERROR_STOP=1',
      '--no-psqlrc',
      '--no-password',
      '-h',
      '127.0.0.1',
      '-p',
      '5432',
      '-U',
      'postgres',
      '-d',
      'agentic_platform',
    ]);
    expect(restore?.input).toEqual({
      file: '/var/backups/story-portal/2026-01-18_01-45-13/postgres.sql.gz',
      gunzip: true,
      psqlRestrict: true,
    });
    expect(restore?.envFrom).toEqual({ PGPASSWORD: 'STORY_PORTAL_PGPASSWORD' });
    expect(restore?.progress).toBe('input-bytes');
    expect(restore?.runsIn).toBe('docker exec agentic-postgres');
  });

  it('never docker-execs into a container between its docker stop and its docker start', async () => {
    const plan = buildPlan({
      ...input(await story(), storySet(), {}),
      options: { ...resolvePlanOptions((await story()).recipe, { jobs: 2 }, 2), parallel: false },
    });
    const stopped = new Set<string>();
    const everStopped = new Set<string>();
    const offenders: string[] = [];
    let execsChecked = 0;
    for (const { step: id, argv, probe } of allArgv(plan)) {
      if (argv[0] === 'docker' && argv[1] === 'stop') {
        stopped.add(argv[2]!);
        everStopped.add(argv[2]!);
      }
      if (argv[0] === 'docker' && argv[1] === 'start') stopped.delete(argv[2]!);
      // A status probe that waits for the failure ("really stopped") is the one allowed exec.
      if (argv[0] === 'docker' && argv[1] === 'exec' && !probe) {
        const container = argv.slice(2).find((a, i, arr) => !a.startsWith('-') && arr[i - 1] !== '-e');
        execsChecked++;
        if (container && stopped.has(container)) offenders.push(`${id}: ${argv.join(' ')}`);
      }
    }
    // The check is only worth something when the plan stops containers and execs into them.
    expect([...everStopped].length).toBeGreaterThan(0);
    expect(execsChecked).toBeGreaterThan(0);
    expect(stopped.size).toBe(0);
    expect(offenders).toEqual([]);
    // The same holds for every undo list, run in reverse.
    const undoArgv = plan.steps.flatMap((s) => execs(s.undo?.actions ?? []).map((a) => a.argv));
    expect(undoArgv.some((a) => a[1] === 'exec' && a.includes('agentic-prometheus'))).toBe(false);
  });

  it('moves Redis files of the stopped container with docker run --rm --volumes-from and places the RDB with docker cp', async () => {
    const plan = buildPlan(input(await story(), storySet(), {}));
    const safety = execs(step(plan, 'redis:safety-copy').actions);
    expect(safety).toHaveLength(2);
    for (const a of safety) {
      expect(a.argv.slice(0, 12)).toEqual([
        'docker',
        'run',
        '--rm',
        '--volumes-from',
        'agentic-redis',
        '--user',
        '0:0',
        '--network',
        'none',
        '--entrypoint',
        'sh',
        'busybox:stable',
      ]);
      expect(a.argv[12]).toBe('-c');
    }
    expect(safety[0]?.argv.slice(-2)).toEqual(['/data/dump.rdb', '/data/dump.rdb.pre_restore_20260118T030405Z']);
    const place = execs(step(plan, 'redis:place').actions);
    expect(place.map((a) => a.argv)).toEqual([
      ['docker', 'cp', '/var/backups/story-portal/2026-01-18_01-45-13/redis.rdb', 'agentic-redis:/data/dump.rdb'],
    ]);
    // Recipe says appendonly: false, so no AOF base.
    expect(JSON.stringify(step(plan, 'redis:place'))).not.toContain('manifest');
  });

  it('streams the Prometheus tarball with docker cp - and moves the data inside the volume', async () => {
    const plan = buildPlan(input(await story(), storySet(), {}));
    const aside = execs(step(plan, 'prometheus:safety-copy').actions);
    expect(aside[0]?.argv.slice(0, 12)).toEqual([
      'docker',
      'run',
      '--rm',
      '--volumes-from',
      'agentic-prometheus',
      '--user',
      '0:0',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      'busybox:stable',
    ]);
    expect(aside[0]?.argv.slice(-2)).toEqual(['/prometheus', '.pre_restore_20260118T030405Z']);
    const place = execs(step(plan, 'prometheus:place').actions);
    expect(place[0]?.argv).toEqual(['docker', 'cp', '-', 'agentic-prometheus:/prometheus']);
    expect(place[0]?.input).toEqual({ file: '/var/backups/story-portal/2026-01-18_01-45-13/prometheus-data.tar.gz', gunzip: true });
    // lock / queries.active removed, chown to the recipe owner, by the helper container.
    expect(place[1]?.argv.slice(-2)).toEqual(['/prometheus', '65534:65534']);
    expect(place[1]?.argv[place[1].argv.length - 4]).toContain('queries.active');
    const start = step(plan, 'prometheus:start').actions;
    expect(start).toContainEqual(expect.objectContaining({ type: 'wait-http', url: 'http://127.0.0.1:9090/-/ready' }));
    const verify = step(plan, 'prometheus:verify-series').actions[0];
    // Evaluated an hour after the recorded time, looking back two: an hour either side of it.
    expect(
      verify?.type === 'check' && 'promql' in verify.check ? [verify.check.promql.time, verify.check.promql.query] : undefined,
    ).toEqual(['2026-01-18T02:45:13.000Z', 'count(last_over_time({__name__=~".+"}[2h]))']);
    const undo = execs(step(plan, 'prometheus:safety-copy').undo?.actions ?? []);
    expect(undo).toHaveLength(2); // move back, then remove the restored copy (no .failed_restore_ leftover)
    expect(undo[1]?.argv.slice(-1)).toEqual(['/prometheus/.failed_restore_20260118T030405Z']);
  });

  it('marks destructive steps, says what they destroy, and gives each a safety copy and an undo', async () => {
    const plan = buildPlan(input(await story(), storySet(), {}));
    const destructive = plan.steps.filter((s) => s.destructive);
    expect(destructive.map((s) => s.id)).toEqual(['postgres:safety-copy', 'redis:safety-copy', 'prometheus:safety-copy']);
    for (const s of destructive) {
      expect(s.destroys).toBeTruthy();
      expect(s.safetyCopy).toBeTruthy();
      expect(s.undo?.actions.length).toBeGreaterThan(0);
    }
    expect(step(plan, 'postgres:safety-copy').safetyCopy).toEqual(
      expect.objectContaining({ kind: 'rename', location: 'agentic_platform__pre_restore_20260118T030405Z' }),
    );
    for (const s of plan.steps) expect(s.doneTitle).not.toBe(s.title);
    expect(step(plan, 'postgres:restore').doneTitle).toBe('PostgreSQL database agentic_platform restored');
  });

  it('filters health checks by mode', async () => {
    const r = await story();
    const restore = buildPlan(input(r, storySet(), {}));
    const drill = buildPlan({ ...input(r, storySet(), {}), mode: 'drill' });
    const names = (p: Plan): string[] => step(p, 'health').actions.flatMap((a) => (a.type === 'check' ? [a.check.name] : []));
    expect(names(restore)).toEqual(['api responds', 'database has tables', 'redis answers', 'prometheus has series']);
    expect(names(drill)).toEqual(['database has tables', 'redis answers', 'prometheus has series']);
  });

  it('renders numbered steps with DESTRUCTIVE markers, undo and shell-quoted argv', async () => {
    const text = renderPlanText(buildPlan(input(await story(), storySet(), {})));
    expect(text).toMatch(/^ 5\. Rename database agentic_platform aside to agentic_platform__pre_restore_20260118T030405Z DESTRUCTIVE/m);
    expect(text).toContain('$ docker exec -i -e PGPASSWORD agentic-postgres psql -X');
    expect(text).toContain('Undo: Rename agentic_platform__pre_restore_20260118T030405Z back to agentic_platform');
    expect(text).toContain("'DO $ra$ BEGIN IF EXISTS");
  });
});

describe('buildPlan: metachat (host)', () => {
  it('runs pg_restore --jobs on the host file with the TOC total and PGPASSWORD from the env', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), metachatFacts()));
    const [restore] = execs(step(plan, 'postgres:restore').actions);
    expect(restore?.argv).toEqual([
      'pg_restore',
      '--jobs',
      '4',
      '--exit-on-error',
      '--no-password',
      '--verbose',
      '-h',
      '127.0.0.1',
      '-p',
      '5432',
      '-U',
      'postgres',
      '-d',
      'metachat',
      '/var/backups/metachat/postgres/metachat_20260118_020000.dump',
    ]);
    expect(restore?.progress).toBe('pg-restore-items');
    expect(restore?.progressTotal).toBe(42);
    expect(restore?.envFrom).toEqual({ PGPASSWORD: 'METACHAT_PGPASSWORD' });
    expect(plan.steps.some((s) => s.id === 'prometheus:stop')).toBe(false);
  });

  it('keeps secrets out of argv: only env var names appear', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), metachatFacts()));
    const json = JSON.stringify(plan);
    expect(json).not.toMatch(/"-a"|--pass|password=/i);
    const cli = allArgv(plan).filter((x) => x.argv.includes('redis-cli') || x.argv.some((a) => a.includes('redis-cli')));
    expect(cli.length).toBeGreaterThan(0);
    const pong = step(plan, 'redis:start').actions.find((a) => a.type === 'wait-command' && a.purpose.includes('PONG'));
    expect(pong?.type === 'wait-command' ? pong.command.envFrom : undefined).toEqual({ REDISCLI_AUTH: 'METACHAT_REDIS_PASSWORD' });
  });

  it('moves Redis files aside on the host and waits for the port to refuse after stop', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), metachatFacts()));
    expect(step(plan, 'redis:stop').actions).toEqual([
      expect.objectContaining({ type: 'exec', argv: ['systemctl', 'stop', 'redis-server'] }),
      expect.objectContaining({ type: 'wait-command', untilExit: 'non-zero' }),
      expect.objectContaining({ type: 'wait-tcp', host: '127.0.0.1', port: 6379, until: 'down' }),
    ]);
    expect(step(plan, 'redis:safety-copy').actions).toEqual([
      expect.objectContaining({
        type: 'move',
        from: '/var/lib/redis/dump.rdb',
        to: '/var/lib/redis/dump.rdb.pre_restore_20260118T030405Z',
        ifExists: true,
      }),
      expect.objectContaining({
        type: 'move',
        from: '/var/lib/redis/appendonlydir',
        to: '/var/lib/redis/appendonlydir.pre_restore_20260118T030405Z',
        ifExists: true,
      }),
    ]);
    const place = step(plan, 'redis:place').actions;
    expect(place[0]).toEqual(
      expect.objectContaining({
        type: 'copy-file',
        from: '/var/backups/metachat/redis/dump_20260118_020000.rdb',
        to: '/var/lib/redis/dump.rdb',
      }),
    );
    expect(place).toHaveLength(2); // copy + chown, no AOF base
  });

  it('with appendonly on (Redis 7) installs the RDB as the AOF base with a manifest', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), metachatFacts({ appendonly: true })));
    const place = step(plan, 'redis:place').actions;
    expect(place.map((a) => a.type)).toEqual(['copy-file', 'install-aof', 'exec']);
    // One engine action builds the AOF dir in staging and renames it in (nothing by path in the redis-owned dir).
    expect(place[1]).toEqual(
      expect.objectContaining({
        type: 'install-aof',
        from: '/var/backups/metachat/redis/dump_20260118_020000.rdb',
        dir: '/var/lib/redis/appendonlydir',
        base: 'appendonly.aof.1.base.rdb',
        manifest: 'appendonly.aof.manifest',
      }),
    );
    const chown = place[2];
    expect(chown?.type === 'exec' ? chown.argv : []).toEqual([
      'chown',
      '-R',
      '--reference=/var/lib/redis',
      '--',
      '/var/lib/redis/dump.rdb',
      '/var/lib/redis/appendonlydir',
    ]);
    // Undone by identity: each restored path is removed only if it is what the run recorded there.
    const undo = step(plan, 'redis:place').undo?.actions[0];
    expect(undo?.type === 'remove' ? undo.paths : []).toEqual([
      { path: '/var/lib/redis/dump.rdb', expect: 'path.redis.placed.rdb', doneIf: ['path.redis.aside.rdb'] },
      { path: '/var/lib/redis/appendonlydir', expect: 'path.redis.placed.aof', doneIf: ['path.redis.aside.aof'] },
    ]);
    expect(place[0]).toEqual(expect.objectContaining({ type: 'copy-file', recordAs: 'path.redis.placed.rdb' }));
    expect(place[1]).toEqual(expect.objectContaining({ type: 'install-aof', recordAs: 'path.redis.placed.aof' }));
    // The Redis this run started may rewrite them: what it left is recorded when the undo stops it.
    expect(step(plan, 'redis:start').undo?.actions.at(-1)).toEqual(
      expect.objectContaining({
        type: 'record-identity',
        rewrittenOnly: true,
        paths: [
          { path: '/var/lib/redis/dump.rdb', recordAs: 'path.redis.placed.rdb' },
          { path: '/var/lib/redis/appendonlydir', recordAs: 'path.redis.placed.aof' },
        ],
      }),
    );
  });

  it('with appendonly on (Redis 6) copies the RDB as appendonly.aof', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), metachatFacts({ appendonly: true, version: '6.2.14', versionMajor: 6 })));
    const place = step(plan, 'redis:place').actions;
    expect(place[1]).toEqual(expect.objectContaining({ type: 'copy-file', to: '/var/lib/redis/appendonly.aof' }));
    expect(step(plan, 'redis:safety-copy').actions[1]).toEqual(expect.objectContaining({ from: '/var/lib/redis/appendonly.aof' }));
  });

  it('missing roles: create adds a roles step before the database is created; undo drops them', async () => {
    const plan = buildPlan(
      input(await metachat(), metachatSet(), metachatFacts({}, { missingRoles: ['ghost_role', 'we"ird'] }), { missingRoles: 'create' }),
    );
    const ids = plan.steps.map((s) => s.id);
    expect(ids.indexOf('postgres:roles')).toBeLessThan(ids.indexOf('postgres:create'));
    const argv = execs(step(plan, 'postgres:roles').actions)[0]?.argv ?? [];
    expect(argv.filter((a) => a.startsWith('DO '))).toHaveLength(2);
    expect(argv.join('\n')).toContain(`rolname = 'we"ird'`);
    const undo = execs(step(plan, 'postgres:roles').undo?.actions ?? [])[0]?.argv ?? [];
    expect(undo).toContain('DROP ROLE IF EXISTS "we""ird"');
  });

  it('missing roles: skip-ownership restores custom dumps with --no-owner --no-acl and plain dumps through the filter', async () => {
    const facts = metachatFacts({}, { missingRoles: ['ghost_role'] });
    const plan = buildPlan(input(await metachat(), metachatSet(), facts, { missingRoles: 'skip-ownership' }));
    expect(plan.steps.some((s) => s.id === 'postgres:roles')).toBe(false);
    expect(execs(step(plan, 'postgres:restore').actions)[0]?.argv).toEqual(expect.arrayContaining(['--no-owner', '--no-acl']));
    expect(plan.warnings.join(' ')).toContain('without ownership and grants');
    const sp = buildPlan(
      input(await story(), storySet(), { postgres: { missingRoles: ['ghost_role'] } }, { missingRoles: 'skip-ownership' }),
    );
    expect(execs(step(sp, 'postgres:restore').actions)[0]?.input?.filter).toBe('strip-ownership-and-acl');
  });

  it('safety copy none: a recorded decision, a destructive drop without undo, and a warning', async () => {
    const r = await metachat();
    r.recipe.components.postgres!.safetyCopy = 'none';
    const plan = buildPlan(input(r, metachatSet(), metachatFacts()));
    const drop = step(plan, 'postgres:drop');
    expect(drop.destructive).toBe(true);
    expect(drop.safetyCopy).toEqual(expect.objectContaining({ kind: 'none' }));
    expect(drop.undo).toBeUndefined();
    expect(drop.actions[0]).toEqual(expect.objectContaining({ type: 'note' }));
    expect(plan.steps.some((s) => s.id === 'postgres:safety-copy')).toBe(false);
    expect(plan.warnings.join(' ')).toContain('No safety copy of database metachat');
  });

  it('safety copy dump: pg_dump to the safety dir first, then a drop whose undo restores the dump', async () => {
    const r = await metachat();
    r.recipe.components.postgres!.safetyCopy = 'dump';
    const plan = buildPlan(input(r, metachatSet(), metachatFacts(), { safetyDir: '/srv/safety' }));
    const copy = step(plan, 'postgres:safety-copy');
    expect(copy.safetyCopy).toEqual(
      expect.objectContaining({ kind: 'dump', location: '/srv/safety/metachat__pre_restore_20260118T030405Z.dump' }),
    );
    expect(execs(copy.actions)[1]?.argv).toEqual(
      expect.arrayContaining(['pg_dump', '--format=custom', '--file', '/srv/safety/metachat__pre_restore_20260118T030405Z.dump']),
    );
    const undo = execs(step(plan, 'postgres:drop').undo?.actions ?? []).map((a) => a.argv[0]);
    expect(undo).toEqual(['psql', 'psql', 'pg_restore']);
    // pg_dump must connect: it runs before the terminate step refuses connections.
    const ids = plan.steps.map((s) => s.id);
    expect(ids.indexOf('postgres:safety-copy')).toBeLessThan(ids.indexOf('postgres:terminate'));
    expect(step(plan, 'postgres:safety-copy').dependsOn).toEqual(['quiesce:metachat-worker']);
    expect(step(plan, 'postgres:terminate').dependsOn).toEqual(['postgres:safety-copy']);
    // A database that does not exist has nothing to dump: recorded, not attempted.
    const absent = buildPlan(input(r, metachatSet(), metachatFacts({}, { databaseExists: false }), { safetyDir: '/srv/safety' }));
    expect(step(absent, 'postgres:safety-copy').safetyCopy).toEqual(expect.objectContaining({ kind: 'none' }));
    expect(execs(step(absent, 'postgres:safety-copy').actions)).toEqual([]);
    expect(execs(step(absent, 'postgres:drop').undo?.actions ?? []).map((a) => a.argv[0])).toEqual(['psql']);
  });

  it('--only restores just those components; services are still quiesced', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), metachatFacts(), { only: 'redis' }));
    expect(plan.steps.some((s) => s.component === 'postgres')).toBe(false);
    expect(plan.steps.some((s) => s.id === 'redis:place')).toBe(true);
    expect(plan.steps.some((s) => s.id === 'quiesce:metachat-api')).toBe(true);
    expect(plan.backup.components.map((c) => c.kind)).toEqual(['redis']);
    await expect(async () => buildPlan(input(await metachat(), metachatSet(), metachatFacts(), { only: 'prometheus' }))).rejects.toThrow(
      /no prometheus component/,
    );
  });

  it('parallel off: one lane, each step after the previous', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), metachatFacts(), { parallel: false }));
    expect(new Set(plan.steps.map((s) => s.lane))).toEqual(new Set(['main']));
    plan.steps.forEach((s, i) => expect(s.dependsOn).toEqual(i === 0 ? [] : [plan.steps[i - 1]!.id]));
    expect(plan.options.parallel).toBe(false);
  });

  it('offline without a Redis dir in the recipe refuses with the field to set', async () => {
    const m = await metachat();
    const redis = m.recipe.components.redis;
    if (!redis) throw new Error('metachat has redis');
    const { dataDir: _dir, ...withoutDir } = redis;
    const noDir: LoadedRecipe = { ...m, recipe: { ...m.recipe, components: { ...m.recipe.components, redis: withoutDir } } };
    await expect(async () => buildPlan(input(noDir, metachatSet(), {}))).rejects.toThrow(/components\.redis\.dataDir/);
  });
});

describe('buildPlan: recipe values vs what the server reports', () => {
  it("uses the server's Redis dir and says so when the recipe disagrees", async () => {
    // recipes/metachat.yaml states /var/lib/redis and dump.rdb for planning while Redis is down.
    const agree = buildPlan(input(await metachat(), metachatSet(), metachatFacts()));
    expect(agree.warnings.filter((w) => w.startsWith('Redis reports'))).toEqual([]);
    const differ = buildPlan(input(await metachat(), metachatSet(), metachatFacts({ dir: '/srv/redis', dbfilename: 'cache.rdb' })));
    expect(differ.warnings).toContain("Redis reports dir /srv/redis, the recipe says /var/lib/redis: using the server's.");
    expect(differ.warnings).toContain("Redis reports dbfilename cache.rdb, the recipe says dump.rdb: using the server's.");
    expect(JSON.stringify(step(differ, 'redis:place'))).toContain('/srv/redis/cache.rdb');
  });

  it('plans from the recipe when Redis cannot be asked (down in an incident)', async () => {
    const plan = buildPlan(input(await metachat(), metachatSet(), { ...metachatFacts(), redis: undefined }));
    expect(JSON.stringify(step(plan, 'redis:place'))).toContain('/var/lib/redis/dump.rdb');
  });
});

describe('buildPlan: hostile names', () => {
  it('quotes database names in SQL and keeps the safety name within 63 bytes', async () => {
    const r = await metachat();
    const name = `bad"name'; DROP DATABASE postgres; --\\ é${'ü'.repeat(30)}`;
    r.recipe.components.postgres!.database = name;
    const plan = buildPlan(input(r, metachatSet(), metachatFacts()));
    const aside = step(plan, 'postgres:safety-copy').safetyCopy!.location;
    expect(Buffer.byteLength(aside, 'utf8')).toBeLessThanOrEqual(63);
    expect(aside.endsWith('__pre_restore_20260118T030405Z')).toBe(true);
    expect(aside).not.toContain('\uFFFD');
    const sql = execs(step(plan, 'postgres:safety-copy').actions)[0]!.argv.at(-1)!;
    // Names only appear as escaped literals (E'' because of the backslash), identifiers via format('%I').
    expect(sql).toContain(`E'bad"name''; DROP DATABASE postgres; --\\\\ é`);
    expect(sql).toContain(`format('ALTER DATABASE %I RENAME TO %I'`);
    // The create step records the highest database OID first (undo by identity), then creates.
    const create = execs(step(plan, 'postgres:create').actions)
      .map((a) => a.argv.at(-1)!)
      .find((a) => a.startsWith('CREATE DATABASE'))!;
    expect(create.startsWith(`CREATE DATABASE "bad""name'; DROP DATABASE postgres; --\\ é`)).toBe(true);
    expect(plan.warnings.join(' ')).toContain('shortened');
  });
});
