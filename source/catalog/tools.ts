import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import path from 'node:path';

async function executable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable named `name` on PATH. */
export async function which(name: string, envPath = process.env['PATH'] ?? ''): Promise<string | undefined> {
  for (const dir of envPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    if (await executable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * A PostgreSQL client binary (pg_restore, psql). Order: `binDir` when given (recipe
 * postgres.bin), then the newest major under /usr/lib/postgresql/<major>/bin (a newer pg_restore
 * reads older dumps, never the reverse), then PATH.
 */
export async function findPgTool(name: string, opts: { binDir?: string; libRoot?: string } = {}): Promise<string | undefined> {
  if (opts.binDir) {
    const candidate = path.join(opts.binDir, name);
    if (await executable(candidate)) return candidate;
  }
  const libRoot = opts.libRoot ?? '/usr/lib/postgresql';
  let majors: string[] = [];
  try {
    majors = (await readdir(libRoot)).filter((d) => /^\d+(\.\d+)?$/.test(d)).sort((a, b) => Number(b) - Number(a));
  } catch {
    // no Debian-style install
  }
  for (const major of majors) {
    const candidate = path.join(libRoot, major, 'bin', name);
    if (await executable(candidate)) return candidate;
  }
  return which(name);
}

/** redis-check-rdb on PATH (Debian: redis-tools / redis-server). */
export async function findRedisCheckRdb(): Promise<string | undefined> {
  return (await which('redis-check-rdb')) ?? ((await executable('/usr/bin/redis-check-rdb')) ? '/usr/bin/redis-check-rdb' : undefined);
}
