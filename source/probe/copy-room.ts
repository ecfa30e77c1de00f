import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Redactor } from '../exec/redact.js';
import { run } from '../exec/run.js';
import type { TargetFacts } from '../plan/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import * as pg from '../targets/postgres.js';

/**
 * Room for the safety copies a restore keeps (issue 11), read-only:
 * - Where a disk check falls short (facts.disk), the safety copies earlier restores left on that
 *   disk are named (PostgreSQL `*__pre_restore_*` databases on the server; moved-aside Redis and
 *   Prometheus data beside the live data, `.failed_restore_*` leftovers; pg_dump safety files), so
 *   the refusal says what could be dropped and with which command (`safety-copies drop`, which
 *   drops by identity and refuses what an unfinished run needs).
 * - A Redis or Prometheus move aside is a rename beside the live data: no space, but only on the
 *   same file system. When the live data is a mount point (its device differs from its parent's)
 *   the rename cannot work (EXDEV/EBUSY) and the restore would stop half-way with the service
 *   down: said before anything is touched.
 */

type Kind = 'postgres' | 'redis' | 'prometheus';

async function dev(p: string): Promise<number | undefined> {
  try {
    return (await stat(p)).dev;
  } catch {
    return undefined;
  }
}

async function treeSize(p: string, budget = { left: 100_000 }): Promise<number> {
  try {
    const st = await lstat(p);
    if (!st.isDirectory()) return st.size;
    let total = 0;
    for (const n of await readdir(p)) {
      if (--budget.left < 0) break;
      total += await treeSize(path.join(p, n), budget);
    }
    return total;
  } catch {
    return 0;
  }
}

async function siblings(dir: string, prefix: string, kind: Kind, out: NonNullable<TargetFacts['keptCopies']>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names.sort()) {
    if (!n.startsWith(prefix) || !/(\.|__)(pre|failed)_restore_/.test(n)) continue;
    const p = path.join(dir, n);
    out.push({ component: kind, location: p, bytes: await treeSize(p) });
  }
}

/** The safety copies earlier runs left on the disks that fall short, and data dirs a rename cannot move aside. */
export async function copyRoomFacts(
  recipe: LoadedRecipe,
  facts: TargetFacts,
  opts: { env: NodeJS.ProcessEnv; redact: Redactor; safetyDir?: string },
): Promise<Pick<TargetFacts, 'keptCopies' | 'moveAside'>> {
  const c = recipe.recipe.components;
  const out: Pick<TargetFacts, 'keptCopies' | 'moveAside'> = {};
  const short = new Set((facts.disk ?? []).filter((d) => !d.parallelOnly && d.freeBytes < d.neededBytes).map((d) => d.component));

  const moveAside: NonNullable<TargetFacts['moveAside']> = [];
  const mountPoint = async (kind: Kind, p: string): Promise<void> => {
    const [a, b] = await Promise.all([dev(p), dev(path.dirname(p))]);
    if (a !== undefined && b !== undefined && a !== b) moveAside.push({ component: kind, path: p });
  };
  if (facts.prometheus && c.prometheus?.exec.kind === 'host') await mountPoint('prometheus', c.prometheus.dataDir.replace(/\/+$/, ''));
  if (facts.redis?.dir && c.redis?.exec.kind === 'host') {
    await mountPoint('redis', path.join(facts.redis.dir, facts.redis.dbfilename));
    await mountPoint('redis', path.join(facts.redis.dir, facts.redis.appenddirname));
  }
  if (moveAside.length > 0) out.moveAside = moveAside;

  if (short.size === 0) return out;
  const kept: NonNullable<TargetFacts['keptCopies']> = [];
  if (short.has('postgres') && c.postgres) {
    const t = c.postgres;
    if (t.safetyCopy === 'dump') {
      const dir = opts.safetyDir;
      if (dir) await siblings(dir, '', 'postgres', kept);
    } else {
      const cmd = pg.psqlCommand(t, {
        purpose: 'Safety-copy databases earlier restores kept',
        tuplesOnly: true,
        sql: [
          `SELECT pg_catalog.pg_database_size(oid)::text || '|' || datname FROM pg_catalog.pg_database WHERE datname LIKE '%\\_\\_pre\\_restore\\_%' ESCAPE '\\' ORDER BY datname`,
        ],
        timeoutSeconds: 20,
      });
      const childEnv = t.passwordEnv && opts.env[t.passwordEnv] !== undefined ? { PGPASSWORD: opts.env[t.passwordEnv]! } : {};
      const r = await run(cmd.argv, { redact: opts.redact, timeoutMs: 20_000, env: childEnv });
      if (r.ok)
        for (const l of r.stdout.split('\n').filter((x) => x.includes('|'))) {
          const [size = '0', ...name] = l.split('|');
          kept.push({ component: 'postgres', location: name.join('|'), bytes: Number(size) });
        }
    }
  }
  if (short.has('redis') && facts.redis?.dir && c.redis?.exec.kind === 'host') await siblings(facts.redis.dir, '', 'redis', kept);
  if (short.has('prometheus') && c.prometheus?.exec.kind === 'host') {
    const d = c.prometheus.dataDir.replace(/\/+$/, '');
    await siblings(path.dirname(d), path.basename(d), 'prometheus', kept);
  }
  if (kept.length > 0) out.keptCopies = kept;
  return out;
}
