import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backupStoryPortal,
  fingerprintPostgres,
  fingerprintPrometheus,
  fingerprintRedis,
  freePort,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  type PostgresFingerprint,
  type PostgresSandbox,
  type PrometheusFingerprint,
  type PrometheusSandbox,
  type RedisFingerprint,
  type RedisSandbox,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';
import { keys } from '../support/keys.js';
import { Terminal } from '../support/terminal.js';

/**
 * The guided interface end to end: the real built binary in a pseudo-terminal, driven by real
 * keystrokes, restoring a real story-portal backup into real throwaway PostgreSQL, Redis and
 * Prometheus. What the screen showed is read from the terminal stream (ANSI stripped); what
 * happened to the data is read from the servers.
 */

const DB = 'storydb';
describe('guide: the real binary in a pseudo-terminal, real keystrokes, real services', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let prom: PrometheusSandbox;
  let set: StoryPortalBackup;
  let promT: number;
  let backupPg: PostgresFingerprint;
  let backupRedis: RedisFingerprint;
  let backupProm: PrometheusFingerprint;
  let env: NodeJS.ProcessEnv;
  let serviceCtlArgv: (action: 'start' | 'stop' | 'status', spec: string) => string[];
  const terminals: Terminal[] = [];

  const ctl = (action: 'start' | 'stop' | 'status', spec: string): string[] => serviceCtlArgv(action, spec);

  async function writeRecipe(name: string, extraChecks: unknown[] = []): Promise<string> {
    const file = join(base, `${name}.yaml`);
    const recipe = {
      name,
      description: 'e2e story-portal',
      backups: { root: join(base, 'backups'), layout: 'story-portal' },
      components: {
        postgres: {
          host: pg.host,
          port: pg.port,
          user: 'postgres',
          passwordEnv: 'E2E_PG_PASSWORD',
          database: DB,
          owner: 'app_owner',
          bin: pg.binDir,
          missingRoles: 'create',
        },
        redis: {
          host: redis.host,
          port: redis.port,
          service: {
            stop: ctl('stop', redis.spec),
            start: ctl('start', redis.spec),
            status: ctl('status', redis.spec),
            timeoutSeconds: 30,
          },
        },
        prometheus: {
          url: prom.url,
          dataDir: prom.dataDir,
          service: { stop: ctl('stop', prom.spec), start: ctl('start', prom.spec), status: ctl('status', prom.spec), timeoutSeconds: 60 },
        },
      },
      checks: [
        { name: 'users restored', sql: { query: 'SELECT count(*) FROM app.users', minRows: 1 }, retries: 1, intervalSeconds: 0.5 },
        ...extraChecks,
      ],
      objectives: { rtoMinutes: 30, rpoMinutes: 1440 },
      evidence: { dir: join(base, 'evidence') },
    };
    await writeFile(file, JSON.stringify(recipe, null, 2)); // JSON is YAML
    return file;
  }

  function guide(recipe: string): Terminal {
    const t = Terminal.start(['guide', '--recipe', recipe], env, base);
    terminals.push(t);
    return t;
  }

  async function asideDatabases(): Promise<string[]> {
    const out = await pg.psql(
      `SELECT coalesce(string_agg(datname, ' '), '') FROM pg_database WHERE datname LIKE '${DB}\\_\\_pre\\_restore\\_%'`,
    );
    return out.split(' ').filter(Boolean);
  }

  async function runDirs(): Promise<string[]> {
    try {
      return (await readdir(join(base, 'evidence'))).filter((n) => /^\d{8}T/.test(n));
    } catch {
      return [];
    }
  }

  /** `?` on a screen: the keys, then Esc back to where it was. */
  async function helpAndBack(t: Terminal, back: string | RegExp): Promise<void> {
    t.write('?');
    const help = await t.waitFor('Nothing is touched until you type the confirm word');
    expect(help).toContain('Keys');
    t.write(keys.escape);
    await t.waitFor(back);
  }

  /**
   * Every documented key on the screens before the plan (README "The guided restore", `?`):
   * ↑↓ and j/k, Esc (other recipe; clear the filter; back), `?`, `/` and digits to filter,
   * Backspace in the filter, Enter.
   */
  async function everyKeyBeforePlan(t: Terminal, recipeName: string): Promise<void> {
    await helpAndBack(t, `What do you want to do with ${recipeName}?`);
    t.write(keys.down);
    await t.waitFor('› Drill');
    t.write('j');
    await t.waitFor('› History');
    t.write('k');
    await t.waitFor('› Drill');
    t.write(keys.up);
    await t.waitFor('› Restore in place');
    t.write(keys.escape); // other recipe: the list of recipes
    await t.waitFor('Which deployment?');
    t.write(keys.enter);
    await t.waitFor(`What do you want to do with ${recipeName}?`);
    t.write(keys.enter); // Restore in place
    await t.waitFor(`Set ${set.id}`);
    await helpAndBack(t, `Set ${set.id}`);
    // Digits start the filter; Backspace edits it; Esc clears it.
    const digits = set.id.slice(0, 4);
    t.write(digits);
    await t.waitFor(`Filter: ${digits}`);
    t.write(keys.backspace);
    await t.waitFor(new RegExp(`Filter: ${digits.slice(0, 3)}(?!\\d)`));
    t.write(keys.escape);
    await t.waitFor(`Set ${set.id}`);
    // `/` opens it too; a filter nothing matches lists nothing; Esc clears it and the set is back.
    t.write('/');
    await t.waitFor('Filter: ');
    t.write('zz-no-such-set');
    await t.waitFor('Filter: zz-no-such-set');
    t.write(keys.escape);
    await t.waitFor(`Set ${set.id}`);
    // Esc back to the recipe, Enter forward again.
    t.write(keys.escape);
    await t.waitFor(`What do you want to do with ${recipeName}?`);
    t.write(keys.enter);
    await t.waitFor(`Set ${set.id}`);
  }

  /** Recipe → backup → verify → plan: the keystrokes and what each screen must show. */
  async function walkToConfirm(
    t: Terminal,
    recipeName: string,
    o: { rollbackOnUnhealthy?: boolean; everyKey?: boolean } = {},
  ): Promise<void> {
    const recipeScreen = await t.waitFor(`What do you want to do with ${recipeName}?`);
    expect(recipeScreen).toContain(`Backups     ${join(base, 'backups')} (story-portal layout)`);
    expect(recipeScreen).toContain(`PostgreSQL ${DB} on ${pg.host}:${pg.port} (host)`);
    if (o.everyKey) await everyKeyBeforePlan(t, recipeName);
    else t.write(keys.enter); // Restore in place
    const backupScreen = await t.waitFor(`Set ${set.id}`);
    expect(backupScreen).toContain(`Which backup of ${recipeName} do you want to restore?`);
    expect(backupScreen).toMatch(/Time \(UTC\)\s+Age\s+PostgreSQL\s+Redis\s+Prometheus\s+Checksums/);
    expect(backupScreen).toMatch(/RPO if restored now: \d+[sm] of changes lost \(target 24h 0m\)/);
    t.write(keys.enter); // verify this set
    if (o.everyKey) {
      // Esc on the plan goes back to the list; Enter verifies and plans again.
      await t.waitFor(`IN-PLACE restore of ${recipeName} from ${set.id}`);
      await helpAndBack(t, `IN-PLACE restore of ${recipeName} from ${set.id}`);
      t.write(keys.escape);
      await t.waitFor(`Which backup of ${recipeName} do you want to restore?`);
      t.write(keys.enter);
    }
    const plan = await t.waitFor(`IN-PLACE restore of ${recipeName} from ${set.id}`);
    expect(plan).toMatch(/Restore PostgreSQL database storydb/);
    expect(plan).toContain('If health checks fail: ask: keep the restored state or roll back');
    // u in each of its three positions (ask → roll back → keep → ask): the plan this guide built
    // still runs afterwards (issue 12: a copied plan was refused as "not built by this guide").
    t.write('u');
    await t.waitFor('If health checks fail: ROLL BACK to the pre-restore data (no question)');
    t.write('u');
    await t.waitFor('If health checks fail: keep the restored state (no question; undo printed)');
    t.write('u');
    await t.waitFor('If health checks fail: ask: keep the restored state or roll back');
    if (o.rollbackOnUnhealthy) {
      t.write('u');
      await t.waitFor('If health checks fail: ROLL BACK to the pre-restore data (no question)');
    }
    // The exact commands of a step, on demand: move to the database restore step and press c.
    // Each j waits for the frame with the cursor one further (the age ticks: a repainted old frame
    // must not count as the move).
    const target = /›\s+(\d+)\. Restore PostgreSQL database storydb/;
    let at = 1;
    let f = '';
    for (let i = 0; i < 20 && !target.test(f); i++) {
      t.write('j');
      at++;
      f = await t.waitFor(new RegExp(`›\\s+${at}\\. `));
    }
    expect(f).toMatch(target);
    t.write('c');
    const cmds = await t.waitFor('$ ');
    expect(cmds).toMatch(/\$ \S*psql .*storydb/s);
    if (o.everyKey) {
      // k moves back up, c hides the commands again and shows them once more.
      t.write('k');
      await t.waitFor(new RegExp(`›\\s+${at - 1}\\. `));
      t.write('j');
      await t.waitFor(new RegExp(`›\\s+${at}\\. Restore PostgreSQL database storydb`));
      t.write('c');
      // The last whole frame (the age ticks, so older frames with the commands are in the stream too).
      await t.waitFor((f: string) => {
        const last = f.slice(f.lastIndexOf('IN-PLACE restore of'));
        return last.includes('Destroys') && last.includes('q quit') && !last.includes('$ ');
      });
      t.write('c');
      await t.waitFor('$ ');
    }
    t.write(keys.enter); // to confirm
    let confirm = await t.waitFor(`Type ${DB} to restore, or Esc to go back:`);
    if (o.everyKey) {
      // Esc on the confirm screen goes back to the plan (as it was: u's choice kept), Enter returns.
      t.write(keys.escape);
      await t.waitFor(`IN-PLACE restore of ${recipeName} from ${set.id}`);
      t.write(keys.enter);
      confirm = await t.waitFor(`Type ${DB} to restore, or Esc to go back:`);
    }
    expect(confirm).toContain(`IN-PLACE restore over the real targets of ${recipeName}`);
    expect(confirm).toContain(
      o.rollbackOnUnhealthy
        ? 'If health checks fail: roll back (changed on the plan screen)'
        : 'If health checks fail: ask then (changed on the plan screen)',
    );
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-guide-e2e-'));
    ({ serviceCtlArgv } = (await import(join(dirname(cliBin()), 'sandbox', 'service-ctl.js'))) as {
      serviceCtlArgv: typeof serviceCtlArgv;
    });
    group = new SandboxGroup();
    [pg, redis, prom] = await Promise.all([group.postgres(), group.redis(), group.prometheus()]);
    await Promise.all([seedPostgres(pg, DB, { rows: 60 }), seedRedis(redis)]);
    await prom.waitForSamples(4);
    promT = Math.floor(Date.now() / 1000) - 1;
    set = await backupStoryPortal({ pg, db: DB, redis, prom }, join(base, 'backups'), { time: new Date() });
    [backupPg, backupRedis, backupProm] = await Promise.all([
      fingerprintPostgres(pg, DB),
      fingerprintRedis(redis),
      fingerprintPrometheus(prom, promT),
    ]);
    env = {
      ...process.env,
      E2E_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      RESTORE_ASSISTANT_RECIPES: join(base, 'no-recipes-here'),
      NO_COLOR: '1',
      TERM: 'xterm-256color',
    };
  }, 240_000);

  // A test that failed half-way must not leave its guide holding the targets' locks for the next one.
  afterEach(() => {
    for (const t of terminals.splice(0)) t.kill();
  });

  afterAll(async () => {
    for (const t of terminals) t.kill();
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('walks every screen with real keys through a full restore, and the data comes back', async () => {
    // The incident: a table dropped, rows changed, Redis flushed.
    await pg.psql('DROP TABLE app.comments; UPDATE app.users SET karma = -1', DB);
    await redis.command(['FLUSHALL']);
    expect(await fingerprintPostgres(pg, DB)).not.toEqual(backupPg);

    const recipe = await writeRecipe('e2e-story');
    const t = guide(recipe);
    await walkToConfirm(t, 'e2e-story', { rollbackOnUnhealthy: true, everyKey: true });
    // The confirm word with a typo and its backspaces in one write (a paste, a laggy link), then Enter.
    t.write(`${DB}xx\u007F\u007F`);
    t.write(keys.enter);
    const run = await t.waitFor('Confirmed at');
    expect(run).toContain(`IN-PLACE restore of e2e-story from ${set.id}`);
    const summary = await t.waitFor(/p print it plainly/, 180_000);
    expect(summary).toContain(`Restore of e2e-story from ${set.id}: restored, healthy (exit 0)`);
    // The closing block for the incident channel (the same text restore and report.md have).
    expect(summary).toContain('----- restore-assistant restore of e2e-story -----');
    expect(summary).toContain('Verdict:       RESTORED and healthy (exit 0)');
    expect(summary).toMatch(/RTO: {11}\S+ (s|ms|\dm \d\ds) from confirm to healthy \(target 30m 00s: met\)/);
    expect(summary).toMatch(/RPO: {11}\d+[sm]( \d+s)? of data lost at most/);
    expect(summary).toMatch(/Health checks: (\d+) of \1 passed/);
    expect(summary).toMatch(new RegExp(`Safety copies: ${DB}__pre_restore_\\d{8}T\\d{6}Z \\(postgres: `));
    expect(summary).toMatch(/Evidence: {6}\S+/);
    // Finished steps were printed above the summary, with their past-participle titles.
    expect(t.text()).toMatch(/✔ .*restored/);
    // The run screen said where the run was overall.
    expect(t.text()).toMatch(/Steps? \d+(–\d+)? of \d+ · \d+ done/);
    // p: the block printed plainly after the screen (the last copy in the stream), whole lines.
    t.write('p');
    expect(await t.exited).toBe(0);
    const all = t.text();
    const block = all.slice(all.lastIndexOf('----- restore-assistant restore of e2e-story -----'));
    expect(block).not.toContain('✔');
    expect(block).not.toContain('p print');
    expect(block).toMatch(new RegExp(`\\nSet: {11}${set.id}, taken \\S+\\r?\\n`));
    expect(block).toMatch(/\nRTO: {11}.* from confirm to healthy \(target 30m 00s: met\)\r?\n/);
    expect(block).toMatch(/\nHealth checks: (\d+) of \1 passed/);
    expect(block).toMatch(new RegExp(`\\nSafety copies: ${DB}__pre_restore_\\d{8}T\\d{6}Z \\(postgres: [^\\n]+\\r?\\n`));
    expect(block).toMatch(/\nNext: {10}restore-assistant evidence verify \S+\r?\n/);

    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
    expect(await fingerprintRedis(redis)).toEqual(backupRedis);
    expect(await fingerprintPrometheus(prom, promT)).toEqual(backupProm);
    expect(await redis.isRunning()).toBe(true);
    expect(await prom.isRunning()).toBe(true);
    const dirs = await runDirs();
    expect(dirs).toHaveLength(1);
    // The plan that ran (recorded in the evidence) carries the choice made with u.
    const started = JSON.parse(
      (await readFile(join(base, 'evidence', dirs[0] ?? '', 'events.jsonl'), 'utf8'))
        .split('\n')
        .find((l) => l.includes('"run-started"')) ?? '{}',
    ) as { event?: { plan?: { options?: { rollbackOnUnhealthy?: boolean } } } };
    expect(started.event?.plan?.options?.rollbackOnUnhealthy).toBe(true);
    for (const name of await asideDatabases()) await pg.psql(`DROP DATABASE "${name}"`);
  }, 300_000);

  it('history: the restore above is listed; Enter opens its report, keys scroll it, Esc goes back; the RTO trend line is there', async () => {
    const t = guide(await writeRecipe('e2e-story'));
    await t.waitFor('What do you want to do with e2e-story?');
    t.write('j');
    await t.waitFor('› Drill');
    t.write('j');
    await t.waitFor('› History');
    t.write(keys.enter);
    // One frame: the run listed, and the trend line under the runs.
    const list = await t.waitFor('Drill RTO trend: no successful drill with a measured RTO yet');
    expect(list).toMatch(/restore\s+\S+\s+restored, healthy/);
    expect(list).toContain('Restores and drills of e2e-story, newest first');
    t.write(keys.enter);
    const report = await t.waitFor(/lines 1–\d+ of \d+/);
    expect(report).toContain('# Restore report: e2e-story: restored');
    t.write('j');
    await t.waitFor(/lines 2–/);
    t.write(keys.pageDown);
    await t.waitFor(/lines \d+–/);
    t.write(keys.escape);
    await t.waitFor(/› \d{4}-\d\d-\d\d \d\d:\d\dZ\s+restore/);
    t.write(keys.escape);
    await t.waitFor('What do you want to do with e2e-story?');
    t.write('q');
    await t.waitFor('Cancelled, nothing was touched.');
    expect(await t.exited).toBe(0);
  }, 120_000);

  it('cancelling at the confirm screen touches nothing', async () => {
    await pg.psql(
      "CREATE TABLE IF NOT EXISTS public.cancel_marker (tag text); INSERT INTO public.cancel_marker VALUES ('before-cancel')",
      DB,
    );
    await redis.command(['SET', 'cancel:marker', 'before-cancel']);
    const [pgBefore, redisBefore, redisPid, promPid, runsBefore] = await Promise.all([
      fingerprintPostgres(pg, DB),
      fingerprintRedis(redis),
      redis.pid(),
      prom.pid(),
      runDirs(),
    ]);

    const recipe = await writeRecipe('e2e-cancel');
    const t = guide(recipe);
    await walkToConfirm(t, 'e2e-cancel');
    await t.type('stroydb'); // a typo is not a confirmation
    const wrong = await t.waitFor('"stroydb" is not "storydb". Nothing was touched');
    expect(wrong).toContain('Type storydb to restore');
    // Esc goes back one screen (the plan), as everywhere; q there cancels.
    t.write(keys.escape);
    await t.waitFor(`IN-PLACE restore of e2e-cancel from ${set.id}`);
    t.write('q');
    const cancelled = await t.waitFor('Cancelled');
    expect(cancelled).toContain('Cancelled, nothing was touched.');
    expect(await t.exited).toBe(0);
    expect(t.text().match(/Cancelled/g)).toHaveLength(1);

    expect(await fingerprintPostgres(pg, DB)).toEqual(pgBefore);
    expect(await fingerprintRedis(redis)).toEqual(redisBefore);
    // Not even restarted: the same server processes are running.
    expect(await redis.pid()).toBe(redisPid);
    expect(await prom.pid()).toBe(promPid);
    expect(await asideDatabases()).toEqual([]);
    expect(await runDirs()).toEqual(runsBefore);
  }, 300_000);

  it('Ctrl-C during the run rolls back and says so on screen', async () => {
    // The pre-restore state to come back to.
    await pg.psql(
      "CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('before-abort')",
      DB,
    );
    await redis.command(['SET', 'pre:restore:marker', 'before-abort']);
    const [pgBefore, redisBefore] = await Promise.all([fingerprintPostgres(pg, DB), fingerprintRedis(redis)]);

    // A health check that keeps the run busy after every destructive step, until interrupted.
    const closedPort = await freePort();
    const recipe = await writeRecipe('e2e-abort', [
      { name: 'never answers', tcp: { host: '127.0.0.1', port: closedPort }, timeoutSeconds: 1, retries: 600, intervalSeconds: 1 },
    ]);
    const t = guide(recipe);
    await walkToConfirm(t, 'e2e-abort');
    // Typed in bursts, backspaces inside them, Enter in the last one: the right word is taken.
    for (const burst of ['sto', 'ryx', '\u007F\u007Fy', 'db\r']) t.write(burst);
    await t.waitFor('▸ Run health checks', 180_000);
    // By now the database, Redis and Prometheus were replaced by the backup's.
    expect(await pg.psql("SELECT to_regclass('public.pre_restore_marker') IS NULL", DB)).toBe('t');
    t.write(keys.ctrlC);
    const aborting = await t.waitFor('Interrupt received: stopping and rolling back');
    expect(aborting).toContain('Ctrl-C stop waiting and report the state');
    const rolled = await t.waitFor('interrupted, rolled back (exit 130)', 180_000);
    expect(t.text()).toContain('Rolling back: interrupted by a signal');
    expect(t.text()).toMatch(/✔ .* undone/);
    expect(rolled).toMatch(/Evidence: {6}\S+/);
    t.write('q');
    expect(await t.exited).toBe(130);

    // Everything is as it was before the restore started.
    expect(await fingerprintPostgres(pg, DB)).toEqual(pgBefore);
    expect(await fingerprintRedis(redis)).toEqual(redisBefore);
    expect(await asideDatabases()).toEqual([]);
    expect(await redis.isRunning()).toBe(true);
    expect(await prom.isRunning()).toBe(true);
  }, 300_000);

  it('failed health checks: the run asks keep or roll back; r rolls back and the pre-restore data is back (exit 1)', async () => {
    await pg.psql("CREATE TABLE IF NOT EXISTS public.ask_marker (tag text); INSERT INTO public.ask_marker VALUES ('before-ask')", DB);
    await redis.command(['SET', 'ask:marker', 'before-ask']);
    const [pgBefore, redisBefore, promBefore, runsBefore] = await Promise.all([
      fingerprintPostgres(pg, DB),
      fingerprintRedis(redis),
      fingerprintPrometheus(prom, promT),
      runDirs(),
    ]);

    // A check that can never pass: the first column is 0, at least 1 is expected.
    const recipe = await writeRecipe('e2e-ask', [{ name: 'orders counted', sql: { query: 'SELECT 0', minRows: 1 }, retries: 0 }]);
    const t = guide(recipe);
    await walkToConfirm(t, 'e2e-ask');
    await t.type(DB);
    const asked = await t.waitFor('Keep the restored state (k) or roll back (r)?', 180_000);
    expect(asked).toContain('Health checks failed: orders counted');
    expect(asked).toContain('orders counted: returned 0 (expected at least 1) (1 attempt)');
    expect(asked).toMatch(/k keep the restored state\s+·\s+r roll back/);
    // While the question is open, the backup's data is in place.
    expect(await pg.psql("SELECT to_regclass('public.ask_marker') IS NULL", DB)).toBe('t');
    t.write('r');
    const summary = await t.waitFor('failed, rolled back (exit 1)', 180_000);
    expect(t.text()).toContain('Rolling back, as you chose.');
    expect(t.text()).toContain('Rolling back: health checks failed: orders counted; the operator chose to roll back');
    expect(t.text()).toMatch(/✔ .* undone/);
    expect(summary).toContain('Health check orders counted: FAILED');
    expect(summary).toMatch(/back to its pre-restore data \(rolled back\)/);
    t.write(keys.enter); // Enter leaves the summary too
    expect(await t.exited).toBe(1);

    expect(await fingerprintPostgres(pg, DB)).toEqual(pgBefore);
    expect(await fingerprintRedis(redis)).toEqual(redisBefore);
    expect(await fingerprintPrometheus(prom, promT)).toEqual(promBefore);
    expect(await asideDatabases()).toEqual([]);
    expect(await redis.isRunning()).toBe(true);
    expect(await prom.isRunning()).toBe(true);
    // The evidence records who decided.
    const newRuns = (await runDirs()).filter((d) => !runsBefore.includes(d));
    expect(newRuns).toHaveLength(1);
    const events = await readFile(join(base, 'evidence', newRuns[0] ?? '', 'events.jsonl'), 'utf8');
    expect(events).toContain('operator chose to roll back after failed health checks');
  }, 300_000);

  it('Ctrl-C before anything ran cancels: exit 0 (130 means a rolled-back run), "Cancelled" said once', async () => {
    const t = guide(await writeRecipe('e2e-ctrlc'));
    await t.waitFor('What do you want to do with e2e-ctrlc?');
    t.write(keys.enter);
    await t.waitFor(`Set ${set.id}`);
    t.write(keys.ctrlC);
    await t.waitFor('Cancelled, nothing was touched.');
    expect(await t.exited).toBe(0);
    expect(t.text().match(/Cancelled/g)).toHaveLength(1);
  }, 120_000);

  it('Ctrl-C at the typed confirmation cancels (exit 0, never "Internal error" exit 70): in the guide, and at the prompt of restore without --yes', async () => {
    const recipe = await writeRecipe('e2e-confirm-ctrlc');
    const runsBefore = await runDirs();
    const t = guide(recipe);
    await walkToConfirm(t, 'e2e-confirm-ctrlc');
    t.write('sto'); // half typed
    await t.waitFor('sto');
    t.write(keys.ctrlC);
    await t.waitFor('Cancelled, nothing was touched.');
    expect(await t.exited).toBe(0);
    expect(t.text()).not.toMatch(/Internal error|This is a bug/);

    const r = Terminal.start(['restore', '--recipe', recipe, '--quick-verify'], env, base);
    terminals.push(r);
    await r.waitFor(`Type "${DB}" to start the restore (anything else cancels):`);
    r.write('sto');
    await r.waitFor('sto');
    r.write(keys.ctrlC);
    const said = await r.waitFor('cancelled before anything was touched.');
    expect(said).toContain('Ctrl-C received during the confirmation: cancelled before anything was touched.');
    expect(await r.exited).toBe(0);
    expect(r.text()).toContain('Nothing was touched; the locks it took are released.');
    expect(r.text()).not.toMatch(/Internal error|This is a bug/);
    expect(await runDirs()).toEqual(runsBefore);
    expect(await asideDatabases()).toEqual([]);
  }, 300_000);

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} from outside while the guide verifies cancels: exit 0, "Cancelled" once, no lock left on the targets`, async () => {
      const runsBefore = await runDirs();
      const t = guide(await writeRecipe(`e2e-${signal.toLowerCase()}`));
      await t.waitFor(`What do you want to do with e2e-${signal.toLowerCase()}?`);
      t.write(keys.enter); // Restore in place
      await t.waitFor(`Set ${set.id}`);
      t.write(keys.enter); // verify this set: the guide locks the targets first
      await t.waitFor(/Verifying|Targets being probed|IN-PLACE restore of/);
      t.signal(signal);
      await t.waitFor('Cancelled, nothing was touched.');
      // The whole screen on a mismatch: CI once saw exit 1 here (an error after the cancel, not yet explained).
      expect(await t.exited, t.text()).toBe(0);
      expect(t.text().match(/Cancelled/g)).toHaveLength(1);
      expect(t.text()).not.toMatch(/Internal error/);
      expect(await runDirs()).toEqual(runsBefore);
      // No lock on these targets is left in the machine-wide directory.
      const locks = await readdir(env['RESTORE_ASSISTANT_LOCK_DIR'] ?? '/run/restore-assistant/locks').catch(() => [] as string[]);
      expect(locks.filter((f) => f.includes(`%3a${pg.port}%2f`) || f.includes(`%3a${redis.port}.`))).toEqual([]);
    }, 120_000);
  }

  it('an error nothing handles (injected once the guide holds its locks): exit 70, says it is a bug and that the locks are released, none left', async () => {
    const name = 'e2e-fault';
    const preload = join(dirname(fileURLToPath(import.meta.url)), '..', 'support', 'fault-after-lock.mjs');
    const t = Terminal.start(['guide', '--recipe', await writeRecipe(name)], { ...env, NODE_OPTIONS: `--import=${preload}` }, base);
    terminals.push(t);
    await t.waitFor(`What do you want to do with ${name}?`);
    t.write(keys.enter); // Restore in place
    await t.waitFor(`Set ${set.id}`);
    t.write(keys.enter); // verify this set: the guide locks the targets first, and the fault fires
    expect(await t.exited, t.text()).toBe(70);
    const text = t.text();
    expect(text).toContain('Internal error: restore-assistant stopped on a rejected promise nothing awaited: Error: injected fault');
    expect(text).toContain('This is a bug in restore-assistant: please report it with these lines.');
    // However many of its locks it had taken when the fault fired (they are taken one after another).
    expect(text).toMatch(/No restore was in flight \(nothing was touched\): the (lock|\d+ locks) this process held (is|are) released\./);
    const locks = await readdir(env['RESTORE_ASSISTANT_LOCK_DIR'] ?? '/run/restore-assistant/locks').catch(() => [] as string[]);
    expect(locks.filter((f) => f.includes(`%3a${pg.port}%2f`) || f.includes(`%3a${redis.port}.`))).toEqual([]);
  }, 120_000);

  it('refuses without a terminal and names the restore flags instead', async () => {
    const { runCli } = await import('../support/cli.js');
    const r = await runCli(['guide', '--recipe', await writeRecipe('e2e-notty')], { env: { XDG_STATE_HOME: join(base, 'state') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('The guided restore needs a terminal');
    expect(r.stderr).toContain('restore-assistant restore --recipe');
    expect(r.stderr).toMatch(/`restore-assistant restore --recipe \S+e2e-notty\.yaml --backup latest --yes`/);
    expect(r.stdout).toBe('');
  });
});
