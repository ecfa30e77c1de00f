import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../source/checks/index.js';
import { recipeSchema, type Check, type Recipe } from '../../source/recipe/schema.js';
import {
  freePort,
  SandboxGroup,
  serviceCtlArgv,
  type PostgresSandbox,
  type PrometheusSandbox,
  type RedisSandbox,
} from '../../source/sandbox/index.js';

/** Every check kind against real services: each passes when it should and fails when it should. */

let baseDir: string;
let group: SandboxGroup;
let pg: PostgresSandbox;
let redis: RedisSandbox;
let prom: PrometheusSandbox;
let recipe: Recipe;
let closedPort: number;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, RA_CHECK_PG: pg.password, RA_CHECK_REDIS: 'check-redis-pw' });

function check(partial: Record<string, unknown>): Check {
  // Defaults as the recipe schema applies them; no waiting between attempts.
  const parsed = recipeSchema.parse({
    name: 'x',
    backups: { root: '/x' },
    components: {},
    checks: [{ name: 'c', retries: 0, intervalSeconds: 0, ...partial }],
  });
  return parsed.checks[0]!;
}

beforeAll(async () => {
  baseDir = mkdtempSync(join(tmpdir(), 'ra-checks-test-'));
  group = new SandboxGroup({ baseDir });
  [pg, redis, prom] = await Promise.all([group.postgres(), group.redis({ password: 'check-redis-pw' }), group.prometheus()]);
  await pg.psql('CREATE DATABASE checked');
  await pg.psql('CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 5)', 'checked');
  await redis.command(['SET', 'greeting', 'hello']);
  await redis.command(['SET', 'other', 'x'], 3);
  await prom.waitForSamples(2);
  closedPort = await freePort();
  const svc = { stop: serviceCtlArgv('stop', redis.spec), start: serviceCtlArgv('start', redis.spec) };
  recipe = recipeSchema.parse({
    name: 'checks-test',
    backups: { root: baseDir },
    components: {
      postgres: { host: pg.host, port: pg.port, user: pg.user, passwordEnv: 'RA_CHECK_PG', database: 'checked' },
      redis: { host: redis.host, port: redis.port, passwordEnv: 'RA_CHECK_REDIS', service: svc },
      prometheus: { url: prom.url, dataDir: prom.dataDir, service: { stop: ['true'], start: ['true'] } },
    },
  });
}, 120_000);

afterAll(async () => {
  await group?.stopAll();
  rmSync(baseDir, { recursive: true, force: true });
});

async function result(c: Check): Promise<{ ok: boolean; attempts: number; detail: string }> {
  const r = await runCheck(c, { recipe, env: env() });
  return { ok: r.ok, attempts: r.attempts, detail: r.detail };
}

describe('runCheck against real services', () => {
  it('http: status and body', async () => {
    expect(await result(check({ http: { url: `${prom.url}/-/ready` } }))).toEqual(
      expect.objectContaining({ ok: true, detail: 'HTTP 200' }),
    );
    expect((await result(check({ http: { url: `${prom.url}/-/ready`, bodyContains: 'Ready' } }))).ok).toBe(true);
    const body = await result(check({ http: { url: `${prom.url}/-/ready`, bodyContains: 'definitely not there' } }));
    expect(body).toEqual(expect.objectContaining({ ok: false }));
    expect(body.detail).toContain('body lacks');
    const status = await result(check({ http: { url: `${prom.url}/no-such-page` } }));
    expect(status).toEqual(expect.objectContaining({ ok: false, detail: 'HTTP 404 (expected 200)' }));
    const refused = await result(check({ http: { url: `http://127.0.0.1:${closedPort}/` } }));
    expect(refused.ok).toBe(false);
    expect(refused.detail).toContain('ECONNREFUSED');
  });

  it('tcp: accepting and refusing ports', async () => {
    expect((await result(check({ tcp: { host: '127.0.0.1', port: pg.port } }))).ok).toBe(true);
    const closed = await result(check({ tcp: { host: '127.0.0.1', port: closedPort } }));
    expect(closed).toEqual(expect.objectContaining({ ok: false }));
    expect(closed.detail).toContain('ECONNREFUSED');
  });

  it('sql: expect and minRows, with the password from passwordEnv', async () => {
    expect(await result(check({ sql: { query: 'select count(*) from items', expect: '5' } }))).toEqual(
      expect.objectContaining({ ok: true, detail: 'returned 5' }),
    );
    expect(await result(check({ sql: { query: 'select count(*) from items', expect: '6' } }))).toEqual(
      expect.objectContaining({ ok: false, detail: 'returned "5" (expected "6")' }),
    );
    expect((await result(check({ sql: { query: 'select count(*) from items', minRows: 5 } }))).ok).toBe(true);
    expect((await result(check({ sql: { query: 'select count(*) from items', minRows: 6 } }))).ok).toBe(false);
    const missing = await result(check({ sql: { query: 'select count(*) from no_such_table', minRows: 1 } }));
    expect(missing.ok).toBe(false);
    expect(missing.detail).toContain('no_such_table');
    const other = await result(check({ sql: { query: 'select current_database()', expect: 'postgres', database: 'postgres' } }));
    expect(other.ok).toBe(true);
    const noPw = await runCheck(check({ sql: { query: 'select 1', expect: '1' } }), { recipe, env: { ...env(), RA_CHECK_PG: 'wrong' } });
    expect(noPw.ok).toBe(false);
    expect(noPw.detail).not.toContain('wrong');
  });

  it('redis: expect, min, other databases, INFO keyspace totals, and error replies fail', async () => {
    expect(await result(check({ redis: { command: ['PING'], expect: 'PONG' } }))).toEqual(
      expect.objectContaining({ ok: true, detail: 'replied PONG' }),
    );
    expect((await result(check({ redis: { command: ['GET', 'greeting'], expect: 'hello' } }))).ok).toBe(true);
    expect((await result(check({ redis: { command: ['GET', 'greeting'], expect: 'bye' } }))).ok).toBe(false);
    expect((await result(check({ redis: { command: ['DBSIZE'], min: 1, db: 3 } }))).ok).toBe(true);
    expect((await result(check({ redis: { command: ['DBSIZE'], min: 2, db: 3 } }))).ok).toBe(false);
    expect(await result(check({ redis: { command: ['INFO', 'keyspace'], min: 2 } }))).toEqual(
      expect.objectContaining({ ok: true, detail: '2 keys in all databases' }),
    );
    expect((await result(check({ redis: { command: ['INFO', 'keyspace'], min: 3 } }))).ok).toBe(false);
    const err = await result(check({ redis: { command: ['NOSUCHCOMMAND'] } }));
    expect(err.ok).toBe(false);
    expect(err.detail).toMatch(/^ERR/);
    const auth = await runCheck(check({ redis: { command: ['PING'], expect: 'PONG' } }), {
      recipe,
      env: { ...env(), RA_CHECK_REDIS: 'nope-wrong' },
    });
    expect(auth.ok).toBe(false);
    expect(auth.detail).toMatch(/WRONGPASS|NOAUTH|AUTH/);
  });

  it('promql: series present or absent, at a given time', async () => {
    expect(await result(check({ promql: { query: 'up' } }))).toEqual(expect.objectContaining({ ok: true }));
    expect(await result(check({ promql: { query: 'no_such_metric_anywhere' } }))).toEqual(
      expect.objectContaining({ ok: false, detail: '0 series for no_such_metric_anywhere (expected at least 1)' }),
    );
    // Long before the server existed there is nothing.
    expect((await result(check({ promql: { query: 'up', time: '2001-01-01T00:00:00Z' } }))).ok).toBe(false);
    const bad = await result(check({ promql: { query: 'up{' } }));
    expect(bad.ok).toBe(false);
    expect(bad.detail).toContain('HTTP 400');
  });

  it('command: exit codes, and retries until the last attempt', async () => {
    expect((await result(check({ command: { argv: ['true'] } }))).ok).toBe(true);
    expect(await result(check({ command: { argv: ['false'] } }))).toEqual(
      expect.objectContaining({ ok: false, detail: 'exited 1 (expected 0)' }),
    );
    expect((await result(check({ command: { argv: ['false'], expectExitCode: 1 } }))).ok).toBe(true);
    const attempts: number[] = [];
    const r = await runCheck(check({ command: { argv: ['false'] }, retries: 2 }), { recipe, onAttempt: (a) => attempts.push(a.attempt) });
    expect(r).toEqual(expect.objectContaining({ ok: false, attempts: 3 }));
    expect(attempts).toEqual([1, 2, 3]);
    const gone = await result(check({ command: { argv: ['/nonexistent/tool'] } }));
    expect(gone.ok).toBe(false);
    expect(gone.detail).toContain('could not run');
  });

  it('a check that passes on a later attempt reports how many it took', async () => {
    // Redis is stopped; it comes back while the check retries.
    await redis.stop();
    const restart = setTimeout(() => void redis.start(), 600);
    try {
      const r = await runCheck(
        check({ redis: { command: ['PING'], expect: 'PONG' }, retries: 30, intervalSeconds: 0.2, timeoutSeconds: 2 }),
        { recipe, env: env() },
      );
      expect(r.ok).toBe(true);
      expect(r.attempts).toBeGreaterThan(1);
    } finally {
      clearTimeout(restart);
      await redis.start();
    }
  });
});
