import { existsSync } from 'node:fs';
import { recipeRedactor } from '../recipe/secrets.js';
import { run } from '../exec/run.js';
import type { LoadedRecipe } from '../recipe/load.js';
import * as pg from '../targets/postgres.js';
import { redisCliArgv } from '../targets/redis.js';
import { sanitizeText } from '../text/sanitize.js';
import { shellQuote } from '../text/shell.js';
import { settledState, type StepState, type UnfinishedRun } from './state.js';

/**
 * The one block every command that touches a recipe's targets prints when an unfinished run holds
 * them: which run, when, which step it died in, what each target holds now (probed live,
 * read-only), and the one command to run next.
 */

const TIMEOUT_MS = 10_000;

function firstLine(r: { stderrTail: string[]; stdoutTail: string[] }): string {
  return [...r.stderrTail, ...r.stdoutTail].find((l) => l.trim() !== '')?.trim() ?? 'no answer';
}

/** What each target holds now, one line each, checked live and read-only. */
export async function probeTargetsNow(
  loaded: LoadedRecipe,
  /** An unfinished run (or a run just interrupted): only its plan's targets, and where its copies are. */
  unfinished:
    | {
        plan: Pick<UnfinishedRun['plan'], 'steps'>;
        preIncident: ReadonlyArray<Pick<UnfinishedRun['preIncident'][number], 'component' | 'kind' | 'location'>>;
      }
    | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[]> {
  const redact = recipeRedactor(loaded, env);
  const c = loaded.recipe.components;
  const lines: string[] = [];
  const copies = unfinished?.preIncident ?? [];
  const only = unfinished ? new Set(unfinished.plan.steps.map((s) => s.component)) : undefined;
  if (c.postgres && (!only || only.has('postgres'))) {
    const t = c.postgres;
    const db = t.database;
    const copy = copies.find((x) => x.component === 'postgres' && x.kind === 'rename')?.location;
    const names = [db, ...(copy ? [copy] : [])];
    const cmd = pg.psqlCommand(t, {
      purpose: 'Which databases exist now',
      tuplesOnly: true,
      sql: [
        `SELECT d.datname || '|' || d.datallowconn::text || '|' || d.oid::text FROM pg_catalog.pg_database d WHERE d.datname IN (${names.map((n) => pg.quoteLiteral(n)).join(', ')}) ORDER BY 1`,
      ],
    });
    const childEnv = t.passwordEnv && env[t.passwordEnv] !== undefined ? { PGPASSWORD: env[t.passwordEnv]! } : {};
    const r = await run(cmd.argv, { redact, timeoutMs: TIMEOUT_MS, env: childEnv });
    const label = `PostgreSQL ${db} on ${t.host}:${t.port}`;
    if (!r.ok) lines.push(`${label}: the server does not answer (${redact(firstLine(r))})`);
    else {
      const found = new Map(
        r.stdout
          .split('\n')
          .filter((l) => l.includes('|'))
          .map((l) => {
            const [name = '', allow = '', oid = ''] = l.split('|');
            return [name, { allow: allow === 'true', oid }] as const;
          }),
      );
      const parts = names.map((n) => {
        const f = found.get(n);
        const what = n === db ? `database ${n}` : `${n} (the pre-incident copy)`;
        return f ? `${what}: exists (oid ${f.oid}${f.allow ? '' : ', connections refused'})` : `${what}: absent`;
      });
      lines.push(`${label}: ${parts.join('; ')}`);
    }
  }
  if (c.redis && (!only || only.has('redis'))) {
    const t = c.redis;
    const childEnv = t.passwordEnv && env[t.passwordEnv] !== undefined ? { REDISCLI_AUTH: env[t.passwordEnv]! } : {};
    const r = await run(redisCliArgv(t, ['DBSIZE']), { redact, timeoutMs: TIMEOUT_MS, env: childEnv });
    const n = /^\(?integer\)?\s*(\d+)|^(\d+)/m.exec(r.stdout.trim());
    const aside = copies
      .filter((x) => x.component === 'redis')
      .flatMap((x) => x.location.split(', '))
      .filter((p) => p.startsWith('/'));
    const kept =
      aside.length > 0 ? `; pre-incident copy ${aside.map((p) => `${p} ${existsSync(p) ? 'present' : 'absent'}`).join(', ')}` : '';
    lines.push(
      `Redis ${t.host}:${t.port}: ${r.ok && n ? `running, ${n[1] ?? n[2]} keys` : `not answering (${redact(firstLine(r))})`}${kept}`,
    );
  }
  if (c.prometheus && (!only || only.has('prometheus'))) {
    const t = c.prometheus;
    const url = `${t.url.replace(/\/+$/, '')}/-/ready`;
    let state: string;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await res.body?.cancel();
      state = res.ok ? 'ready' : `answers HTTP ${res.status}`;
    } catch (error) {
      state = `not answering (${(error as { cause?: { code?: string } }).cause?.code ?? 'error'})`;
    }
    const aside = copies
      .filter((x) => x.component === 'prometheus')
      .map((x) => x.location)
      .filter((p) => p.startsWith('/'));
    const data = t.dataDir ? `; data dir ${t.dataDir} ${existsSync(t.dataDir) ? 'present' : 'ABSENT'}` : '';
    const kept =
      aside.length > 0 ? `; pre-incident copy ${aside.map((p) => `${p} ${existsSync(p) ? 'present' : 'absent'}`).join(', ')}` : '';
    lines.push(`Prometheus ${t.url}: ${state}${data}${kept}`);
  }
  for (const svc of loaded.recipe.services) {
    if (!svc.status) {
      lines.push(`${svc.name}: state unknown (the recipe gives no status command)`);
      continue;
    }
    const r = await run(svc.status, { redact, timeoutMs: TIMEOUT_MS });
    lines.push(`${svc.name}: ${r.ok ? 'running' : 'stopped'}`);
  }
  return lines.map((l) => sanitizeText(l));
}

const stateWords: Record<StepState, string> = {
  pending: 'not started',
  'in-doubt': 'started, outcome unknown (the run died in it)',
  failed: 'failed',
  done: 'done',
  undone: 'undone',
};

/** The block: run, when, where it died, what the targets hold now, the next command. */
/** `tempDirs`: the private temp dirs the run left (engine/run-temp.ts leftoverRunTempDirs), listed read-only. */
export function formatUnfinishedBlock(u: UnfinishedRun, now: string[], recipeRef: string, tempDirs: readonly string[] = []): string {
  const lines: string[] = [];
  const b = u.begin;
  lines.push(`An unfinished restore holds these targets: run ${u.runId}.`);
  lines.push(`  Started:  ${b.startedAt} by ${b.operator} (pid ${b.pid} on ${b.host}; that process is gone)`);
  lines.push(
    `  Last act: ${u.lastAt}${u.attempts.length > 0 ? ` (after ${u.attempts.length} recover attempt${u.attempts.length === 1 ? '' : 's'}: ${u.attempts.map((a) => `${a.runId} ${a.mode}`).join(', ')})` : ''}`,
  );
  if (u.diedIn)
    lines.push(
      `  Died in:  "${u.diedIn.title}" (step ${u.diedIn.stepId}, started ${u.diedIn.at})${u.rollingBack ? ', while rolling back' : ''}`,
    );
  const counts = new Map<StepState, number>();
  for (const s of u.plan.steps) counts.set(settledState(u, s), (counts.get(settledState(u, s)) ?? 0) + 1);
  lines.push(`  Steps:    ${[...counts.entries()].map(([k, n]) => `${n} ${stateWords[k]}`).join(', ')}`);
  if (u.preIncident.length > 0)
    lines.push(`  Pre-incident copies: ${u.preIncident.map((c) => `${c.location} (${c.description}, made by run ${c.run})`).join('; ')}`);
  lines.push('  Now (checked live):');
  for (const l of now) lines.push(`    - ${l}`);
  if (tempDirs.length > 0) lines.push(`  Temp dirs it left (recover removes them, by identity): ${tempDirs.join(', ')}`);
  lines.push(`  Evidence: ${b.evidenceDir}`);
  lines.push(
    `  Next:     restore-assistant recover --recipe ${shellQuote(recipeRef)}   (roll back to the pre-restore state, or finish the restore)`,
  );
  return lines.map((l) => sanitizeText(l)).join('\n');
}
