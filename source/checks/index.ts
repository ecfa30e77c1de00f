import net from 'node:net';
import { recipeRedactor } from '../recipe/secrets.js';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { createRedactor, type Redactor } from '../exec/redact.js';
import { run } from '../exec/run.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { Check, Recipe } from '../recipe/schema.js';
import { psqlCommand } from '../targets/postgres.js';
import { redisCliArgv } from '../targets/redis.js';

/**
 * Health and data checks: http (status, body), tcp, sql (psql -At), redis (redis-cli), promql
 * (/api/v1/query) and command (exit code). Each attempt has its own timeout; a failed attempt
 * is retried `retries` times, `intervalSeconds` apart (PromQL: polled faster within the same
 * patience, retryDelaysMs). SQL and Redis checks run in the
 * component's exec context with the password from the recipe's passwordEnv, in the environment.
 */

export interface CheckContext {
  recipe: LoadedRecipe | Recipe;
  env?: NodeJS.ProcessEnv;
  redact?: Redactor;
  signal?: AbortSignal;
  onAttempt?: (attempt: { attempt: number; of: number; ok: boolean; detail: string }) => void;
}

export interface CheckResult {
  ok: boolean;
  attempts: number;
  detail: string;
  durationMs: number;
}

interface Attempt {
  ok: boolean;
  detail: string;
}

export type CheckKind = 'http' | 'tcp' | 'sql' | 'redis' | 'promql' | 'command';

export function checkKind(check: Check): CheckKind {
  if ('http' in check) return 'http';
  if ('tcp' in check) return 'tcp';
  if ('sql' in check) return 'sql';
  if ('redis' in check) return 'redis';
  if ('promql' in check) return 'promql';
  return 'command';
}

function recipeOf(r: LoadedRecipe | Recipe): Recipe {
  return 'recipe' in r && 'digest' in r ? r.recipe : (r as Recipe);
}

function errText(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  return error instanceof Error ? error.message : String(error);
}

async function httpAttempt(c: Extract<Check, { http: unknown }>, signal: AbortSignal): Promise<Attempt> {
  try {
    const res = await fetch(c.http.url, { signal, redirect: 'manual' });
    const body = c.http.bodyContains !== undefined ? await res.text() : (await res.body?.cancel(), '');
    if (res.status !== c.http.status) return { ok: false, detail: `HTTP ${res.status} (expected ${c.http.status})` };
    if (c.http.bodyContains !== undefined && !body.includes(c.http.bodyContains))
      return { ok: false, detail: `HTTP ${res.status} but the body lacks "${c.http.bodyContains}"` };
    return { ok: true, detail: `HTTP ${res.status}` };
  } catch (error) {
    return { ok: false, detail: `${c.http.url}: ${errText(error)}` };
  }
}

function tcpAttempt(c: Extract<Check, { tcp: unknown }>, signal: AbortSignal): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: c.tcp.host, port: c.tcp.port });
    const done = (a: Attempt): void => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(a);
    };
    const onAbort = (): void => done({ ok: false, detail: `${c.tcp.host}:${c.tcp.port}: timed out` });
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done({ ok: true, detail: `${c.tcp.host}:${c.tcp.port} accepts connections` }));
    socket.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, detail: `${c.tcp.host}:${c.tcp.port}: ${e.code ?? e.message}` }));
  });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

async function sqlAttempt(
  c: Extract<Check, { sql: unknown }>,
  recipe: Recipe,
  env: NodeJS.ProcessEnv,
  redact: Redactor,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Attempt> {
  const t = recipe.components.postgres;
  if (!t) return { ok: false, detail: 'the recipe has no postgres component to run this query against' };
  const cmd = psqlCommand(t, { database: c.sql.database ?? t.database, sql: [c.sql.query], purpose: c.name, tuplesOnly: true });
  const childEnv = t.passwordEnv && env[t.passwordEnv] !== undefined ? { PGPASSWORD: env[t.passwordEnv] } : {};
  const r = await run(cmd.argv, { env: childEnv, redact, signal, timeoutMs });
  if (!r.ok) {
    const err = r.stderrTail.find((l) => /\b(ERROR|FATAL)\b|^psql:/.test(l)) ?? r.stderrTail.find((l) => l.trim() !== '');
    return { ok: false, detail: r.timedOut ? 'query timed out' : (err?.trim() ?? '') || `psql exited ${r.exitCode}` };
  }
  const value = firstLine(r.stdout).split('|')[0] ?? '';
  if (c.sql.expect !== undefined)
    return value === c.sql.expect
      ? { ok: true, detail: `returned ${value}` }
      : { ok: false, detail: `returned "${value}" (expected "${c.sql.expect}")` };
  if (c.sql.minRows !== undefined) {
    const n = Number(value);
    if (!Number.isFinite(n) || value === '')
      return { ok: false, detail: `returned "${value}", not a number (expected at least ${c.sql.minRows})` };
    return n >= c.sql.minRows
      ? { ok: true, detail: `returned ${n} (at least ${c.sql.minRows})` }
      : { ok: false, detail: `returned ${n} (expected at least ${c.sql.minRows})` };
  }
  return { ok: true, detail: value === '' ? 'query ran' : `returned ${value}` };
}

/** Total keys over every database from `INFO keyspace` (db0:keys=3,expires=1,...). */
export function keyspaceTotal(info: string): number {
  let total = 0;
  for (const m of info.matchAll(/^db\d+:keys=(\d+)/gm)) total += Number(m[1]);
  return total;
}

async function redisAttempt(
  c: Extract<Check, { redis: unknown }>,
  recipe: Recipe,
  env: NodeJS.ProcessEnv,
  redact: Redactor,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Attempt> {
  const t = recipe.components.redis;
  if (!t) return { ok: false, detail: 'the recipe has no redis component to send this command to' };
  const childEnv = t.passwordEnv && env[t.passwordEnv] !== undefined ? { REDISCLI_AUTH: env[t.passwordEnv] } : {};
  const r = await run(redisCliArgv(t, c.redis.command, c.redis.db), { env: childEnv, redact, signal, timeoutMs });
  const out = r.stdout.trim();
  if (!r.ok)
    return {
      ok: false,
      detail: r.timedOut
        ? 'redis-cli timed out'
        : redact(firstLine([...r.stderrTail, ...r.stdoutTail].join('\n'))) || `redis-cli exited ${r.exitCode}`,
    };
  // redis-cli exits 0 on error replies: look at the reply.
  if (/^(ERR|WRONGTYPE|NOAUTH|WRONGPASS|NOPERM|LOADING|MISCONF|BUSY|Could not connect)\b/.test(out))
    return { ok: false, detail: redact(firstLine(out)) };
  const isKeyspace =
    c.redis.command.length === 2 && c.redis.command[0]?.toUpperCase() === 'INFO' && c.redis.command[1]?.toLowerCase() === 'keyspace';
  const value = isKeyspace ? String(keyspaceTotal(out)) : firstLine(out);
  const label = isKeyspace ? `${value} keys in all databases` : `replied ${redact(value)}`;
  if (c.redis.expect !== undefined)
    return value === c.redis.expect ? { ok: true, detail: label } : { ok: false, detail: `${label} (expected "${c.redis.expect}")` };
  if (c.redis.min !== undefined) {
    const n = Number(value);
    if (!Number.isFinite(n) || value === '') return { ok: false, detail: `${label}, not a number (expected at least ${c.redis.min})` };
    return n >= c.redis.min ? { ok: true, detail: label } : { ok: false, detail: `${label} (expected at least ${c.redis.min})` };
  }
  return { ok: true, detail: label };
}

/**
 * When the restored data ends: the newest sample in Prometheus's head (/api/v1/status/tsdb
 * headStats.maxTime, ms), which after a restart is the newest sample the restored WAL brought
 * back (or a newer scrape). Undefined when the head is empty or the answer is not usable.
 */
async function newestSampleSeconds(base: string, signal: AbortSignal): Promise<number | undefined> {
  const res = await fetch(`${base}/api/v1/status/tsdb`, { signal });
  if (res.status !== 200) {
    await res.body?.cancel();
    return undefined;
  }
  const body = (await res.json()) as { data?: { headStats?: { maxTime?: unknown; numSeries?: unknown } } };
  const max = body.data?.headStats?.maxTime;
  // An empty head reports the extreme int64 values; anything outside 2000 .. a day from now is not a sample time.
  if (typeof max !== 'number' || !Number.isFinite(max) || max < 946_684_800_000 || max > Date.now() + 86_400_000) return undefined;
  // A millisecond before it: a Prometheus stopped gracefully may end its series with staleness
  // markers at the newest time, and a query evaluated there would see the series as gone.
  return (max - 1) / 1000;
}

async function promqlAttempt(c: Extract<Check, { promql: unknown }>, recipe: Recipe, signal: AbortSignal): Promise<Attempt> {
  const t = recipe.components.prometheus;
  if (!t) return { ok: false, detail: 'the recipe has no prometheus component to query' };
  const base = t.url.replace(/\/+$/, '');
  const url = new URL(`${base}/api/v1/query`);
  url.searchParams.set('query', c.promql.query);
  let at = '';
  try {
    if (c.promql.time) url.searchParams.set('time', c.promql.time);
    else if (c.promql.freshScrape === false) {
      // Proved on the restored data: evaluated at its newest sample, not now (no new scrape needed).
      const newest = await newestSampleSeconds(base, signal);
      if (newest !== undefined) {
        url.searchParams.set('time', String(newest));
        at = ` at the newest stored sample (${new Date(newest * 1000).toISOString()})`;
      } else at = ' now (no stored sample yet)';
    }
    const res = await fetch(url, { signal });
    const body = (await res.json()) as { status?: string; error?: string; data?: { resultType?: string; result?: unknown } };
    if (res.status !== 200 || body.status !== 'success')
      return { ok: false, detail: `query failed: HTTP ${res.status}${body.error ? `: ${body.error}` : ''}` };
    const result = body.data?.result;
    const series = Array.isArray(result) ? result.length : result === undefined || result === null ? 0 : 1;
    const detail = `${series} series for ${c.promql.query}${at}`;
    return series >= c.promql.minSeries
      ? { ok: true, detail }
      : { ok: false, detail: `${detail} (expected at least ${c.promql.minSeries})` };
  } catch (error) {
    return { ok: false, detail: `${url.origin}: ${errText(error)}` };
  }
}

/**
 * The waits before each retry of a check. Most kinds wait `intervalSeconds` each time. A PromQL
 * check (an HTTP GET: cheap) polls fast instead, 100 ms doubling up to min(2 s, intervalSeconds),
 * as many times as fit in the same patience (retries x intervalSeconds): a scrape or a TSDB that
 * comes up a moment later is seen a moment later, not up to an interval later, and a check never
 * gives up sooner than its recipe says.
 */
export function retryDelaysMs(check: Check): number[] {
  const interval = check.intervalSeconds * 1000;
  if (!('promql' in check) || interval <= 100) return Array.from({ length: check.retries }, () => interval);
  const budget = check.retries * interval;
  const cap = Math.min(2000, interval);
  const delays: number[] = [];
  let spent = 0;
  for (let d = 100; ; d = Math.min(cap, d * 2)) {
    if (spent + d > budget) break;
    delays.push(d);
    spent += d;
  }
  return delays;
}

async function commandAttempt(
  c: Extract<Check, { command: unknown }>,
  redact: Redactor,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Attempt> {
  const r = await run(c.command.argv, { redact, signal, timeoutMs, okExitCodes: [c.command.expectExitCode] });
  if (r.ok) return { ok: true, detail: `exited ${r.exitCode}` };
  const how = r.timedOut
    ? 'timed out'
    : r.exitCode === null
      ? `could not run: ${r.stderrTail.at(-1) ?? ''}`
      : `exited ${r.exitCode} (expected ${c.command.expectExitCode})`;
  return { ok: false, detail: how };
}

async function attempt(
  check: Check,
  recipe: Recipe,
  env: NodeJS.ProcessEnv,
  redact: Redactor,
  outer: AbortSignal | undefined,
): Promise<Attempt> {
  const timeoutMs = check.timeoutSeconds * 1000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
  if ('http' in check) return httpAttempt(check, signal);
  if ('tcp' in check) return tcpAttempt(check, signal);
  if ('sql' in check) return sqlAttempt(check, recipe, env, redact, outer ?? new AbortController().signal, timeoutMs);
  if ('redis' in check) return redisAttempt(check, recipe, env, redact, outer ?? new AbortController().signal, timeoutMs);
  if ('promql' in check) return promqlAttempt(check, recipe, signal);
  return commandAttempt(check, redact, outer ?? new AbortController().signal, timeoutMs);
}

/** Run one check with its timeout, retries and interval. Never throws for a failing target. */
export async function runCheck(check: Check, ctx: CheckContext): Promise<CheckResult> {
  const recipe = recipeOf(ctx.recipe);
  const env = ctx.env ?? process.env;
  const redact = recipeRedactor(recipe, env, ctx.redact ?? createRedactor());
  const started = performance.now();
  const delays = retryDelaysMs(check);
  const of = delays.length + 1;
  let last: Attempt = { ok: false, detail: 'not run' };
  let n = 0;
  for (n = 1; n <= of; n++) {
    if (ctx.signal?.aborted) {
      last = { ok: false, detail: 'interrupted' };
      break;
    }
    last = await attempt(check, recipe, env, redact, ctx.signal);
    last = { ok: last.ok, detail: redact(last.detail) };
    ctx.onAttempt?.({ attempt: n, of, ok: last.ok, detail: last.detail });
    if (last.ok) break;
    const wait = delays[n - 1] ?? 0;
    if (n < of && wait > 0) {
      try {
        await delay(wait, undefined, ctx.signal ? { signal: ctx.signal } : {});
      } catch {
        last = { ok: false, detail: `${last.detail}; interrupted` };
        break;
      }
    }
  }
  return { ok: last.ok, attempts: Math.min(n, of), detail: last.detail, durationMs: Math.round(performance.now() - started) };
}
