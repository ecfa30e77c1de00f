import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import type { PostgresSandbox } from './postgres.js';
import type { PrometheusSandbox } from './prometheus.js';
import type { RedisSandbox } from './redis.js';
import { cleanEnv, requireBinary } from './process-utils.js';

/**
 * Real backups made the way the two audited deployments make them (see /work/shared/context):
 *
 * story-portal (platform/backup.sh): BACKUP_ROOT/<%Y-%m-%d_%H-%M-%S>/ with
 *   postgres.sql.gz          pg_dump -U postgres <db> | gzip
 *   redis.rdb                redis-cli BGSAVE; copy /data/dump.rdb
 *   prometheus-data.tar.gz   tar czf - -C /prometheus .   (the LIVE data dir, no snapshot)
 *   metadata.txt             "Backup Date: ...", "Components:" list, container status, "Backup Size:"
 *
 * metachat: BACKUP_ROOT/postgres/<db>_<%Y%m%d_%H%M%S>.dump (pg_dump -Fc) + .sha256 sidecar
 *   (sha256sum format), BACKUP_ROOT/redis/dump_<%Y%m%d_%H%M%S>.rdb
 *   (the layout its verify_backups.sh / rollback.sh read: $BACKUP_ROOT/postgres, $BACKUP_ROOT/redis).
 *
 * Timestamps in names are UTC, from the `time` option (default now).
 */

export interface World {
  pg: PostgresSandbox;
  /** Database to dump. */
  db: string;
  redis?: RedisSandbox;
  prom?: PrometheusSandbox;
}

export interface BackupTimeOptions {
  time?: Date;
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** 2026-01-18_01-45-13 (story-portal: date +%Y-%m-%d_%H-%M-%S), UTC. */
export function storyPortalBackupId(time: Date): string {
  return `${time.getUTCFullYear()}-${pad(time.getUTCMonth() + 1)}-${pad(time.getUTCDate())}_${pad(time.getUTCHours())}-${pad(time.getUTCMinutes())}-${pad(time.getUTCSeconds())}`;
}

/** 20260118_014513 (metachat: date +%Y%m%d_%H%M%S), UTC. */
export function metachatTimestamp(time: Date): string {
  return `${time.getUTCFullYear()}${pad(time.getUTCMonth() + 1)}${pad(time.getUTCDate())}_${pad(time.getUTCHours())}${pad(time.getUTCMinutes())}${pad(time.getUTCSeconds())}`;
}

function pgDumpArgs(pg: PostgresSandbox, extra: string[], db: string): string[] {
  return ['-h', pg.host, '-p', String(pg.port), '-U', pg.user, ...extra, db];
}

function describeFailure(what: string, error: unknown): Error {
  const stderr = (error as { stderr?: unknown }).stderr;
  const detail = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : (error as Error).message;
  return new Error(`${what}: ${detail}`, { cause: error });
}

/** pg_dump (plain SQL) of `db` to `path`; streamed through gzip when path ends in .gz. */
export async function backupPgPlain(pg: PostgresSandbox, db: string, path: string, extraArgs: string[] = []): Promise<string> {
  const env = cleanEnv(pg.env());
  const pgDump = pg.bin('pg_dump');
  try {
    if (path.endsWith('.gz')) {
      const gzip = requireBinary('gzip', 'backup');
      await execa(pgDump, pgDumpArgs(pg, extraArgs, db), { env, extendEnv: false }).pipe(gzip, ['-c'], {
        stdout: { file: path },
      });
    } else {
      await execa(pgDump, pgDumpArgs(pg, ['-Fp', '-f', path, ...extraArgs], db), { env, extendEnv: false });
    }
  } catch (error) {
    await rm(path, { force: true });
    throw describeFailure(`pg_dump of ${db} from ${pg.host}:${pg.port} to ${path} failed`, error);
  }
  return path;
}

/** pg_dump -Fc (custom format) of `db` to `path`. */
export async function backupPgCustom(pg: PostgresSandbox, db: string, path: string, extraArgs: string[] = []): Promise<string> {
  try {
    await execa(pg.bin('pg_dump'), pgDumpArgs(pg, ['-Fc', '-f', path, ...extraArgs], db), { env: cleanEnv(pg.env()), extendEnv: false });
  } catch (error) {
    await rm(path, { force: true });
    throw describeFailure(`pg_dump -Fc of ${db} from ${pg.host}:${pg.port} to ${path} failed`, error);
  }
  return path;
}

/** pg_dump -Fd (directory format, toc.dat + <oid>.dat.gz) of `db` into `path` (must not exist). */
export async function backupPgDirectory(pg: PostgresSandbox, db: string, path: string, options: { jobs?: number } = {}): Promise<string> {
  const extra = ['-Fd', '-f', path, ...(options.jobs && options.jobs > 1 ? ['-j', String(options.jobs)] : [])];
  try {
    await execa(pg.bin('pg_dump'), pgDumpArgs(pg, extra, db), { env: cleanEnv(pg.env()), extendEnv: false });
  } catch (error) {
    await rm(path, { recursive: true, force: true });
    throw describeFailure(`pg_dump -Fd of ${db} from ${pg.host}:${pg.port} to ${path} failed`, error);
  }
  return path;
}

/** BGSAVE, wait for it, copy the RDB to `path`. */
export async function backupRedisRdb(redis: RedisSandbox, path: string): Promise<string> {
  await redis.bgsave();
  try {
    await copyFile(redis.rdbPath, path);
  } catch (error) {
    throw new Error(`copying ${redis.rdbPath} to ${path} failed: ${(error as Error).message}`, { cause: error });
  }
  return path;
}

export interface TarResult {
  path: string;
  /** tar warnings (exit 1 "file changed as we read it" is tolerated: the data dir is live). */
  warnings: string[];
}

/**
 * `tar czf - -C <dataDir> .` > path: the live Prometheus data dir, entries prefixed "./"
 * (./wal/, ./chunks_head/, ./lock, ./queries.active, blocks).
 */
export async function backupPrometheusLive(prom: PrometheusSandbox, path: string): Promise<TarResult> {
  const tar = requireBinary('tar', 'backup');
  const result = await execa(tar, ['czf', '-', '-C', prom.dataDir, '.'], { stdout: { file: path }, reject: false });
  const warnings = result.stderr.split('\n').filter((line) => line.trim() !== '');
  // GNU tar: exit 1 = "some files differ" (changed/removed while read) — expected for a live TSDB.
  if (
    result.exitCode !== 0 &&
    !(
      result.exitCode === 1 &&
      warnings.every((w) =>
        /file changed as we read it|File removed before we read it|file removed before we read it|socket ignored/i.test(w),
      )
    )
  ) {
    await rm(path, { force: true });
    throw new Error(`tar czf - -C ${prom.dataDir} . > ${path} failed (exit ${result.exitCode ?? result.signal}): ${result.stderr.trim()}`);
  }
  return { path, warnings };
}

async function duHuman(path: string): Promise<string> {
  try {
    const { stdout } = await execa('du', ['-sh', path]);
    return stdout.split('\t')[0] ?? '?';
  } catch {
    return '?';
  }
}

export interface StoryPortalBackup {
  id: string;
  dir: string;
  files: { postgres: string; redis?: string; prometheus?: string; metadata: string };
  metadata: string;
  warnings: string[];
}

/**
 * A backup set exactly like story-portal's platform/backup.sh: <root>/<YYYY-MM-DD_HH-MM-SS>/.
 * redis/prom missing from the world: those files are skipped (the script skips them too), but
 * metadata.txt still lists all three components, as the script's heredoc does.
 */
export async function backupStoryPortal(world: World, root: string, options: BackupTimeOptions = {}): Promise<StoryPortalBackup> {
  const id = storyPortalBackupId(options.time ?? new Date());
  const dir = join(root, id);
  await mkdir(root, { recursive: true });
  try {
    await mkdir(dir);
  } catch (error) {
    throw new Error(`story-portal backup: ${dir} already exists (two sets with the same second?)`, { cause: error });
  }
  const warnings: string[] = [];
  const files: StoryPortalBackup['files'] = {
    postgres: await backupPgPlain(world.pg, world.db, join(dir, 'postgres.sql.gz')),
    metadata: join(dir, 'metadata.txt'),
  };
  if (world.redis) files.redis = await backupRedisRdb(world.redis, join(dir, 'redis.rdb'));
  else warnings.push('Redis backup skipped (no data to backup)');
  if (world.prom) {
    const tar = await backupPrometheusLive(world.prom, join(dir, 'prometheus-data.tar.gz'));
    files.prometheus = tar.path;
    warnings.push(...tar.warnings);
  } else warnings.push('Prometheus not running, skipped');

  const status = [`  agentic-postgres: Up (sandbox pid ${world.pg.pid() ?? '?'}, ${world.pg.host}:${world.pg.port})`];
  if (world.redis)
    status.push(`  agentic-redis: Up (sandbox pid ${(await world.redis.pid()) ?? '?'}, ${world.redis.host}:${world.redis.port})`);
  if (world.prom)
    status.push(`  agentic-prometheus: Up (sandbox pid ${(await world.prom.pid()) ?? '?'}, ${world.prom.host}:${world.prom.port})`);
  const metadata = [
    `Backup Date: ${id}`,
    'Platform: Story Portal V2',
    'Components:',
    `  - PostgreSQL (${world.db} database)`,
    '  - Redis (session/cache data)',
    '  - Prometheus (metrics data)',
    '',
    'Container Status:',
    ...status,
    '',
    'Backup Size:',
    await duHuman(dir),
    '',
  ].join('\n');
  await writeFile(files.metadata, metadata);
  return { id, dir, files, metadata, warnings };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes `<hex>  <basename>\n` (sha256sum output format) to `<path>.sha256`. */
export async function writeSha256Sidecar(path: string): Promise<{ sidecar: string; sha256: string }> {
  const sha256 = await sha256File(path);
  const sidecar = `${path}.sha256`;
  await writeFile(sidecar, `${sha256}  ${basename(path)}\n`);
  return { sidecar, sha256 };
}

export interface MetachatBackup {
  timestamp: string;
  dump: string;
  sha256File: string;
  sha256: string;
  rdb?: string;
}

/** <root>/postgres/<db>_<YYYYMMDD_HHMMSS>.dump (+ .sha256) and <root>/redis/dump_<YYYYMMDD_HHMMSS>.rdb. */
export async function backupMetachat(world: World, root: string, options: BackupTimeOptions = {}): Promise<MetachatBackup> {
  const timestamp = metachatTimestamp(options.time ?? new Date());
  const pgDir = join(root, 'postgres');
  await mkdir(pgDir, { recursive: true });
  const dump = await backupPgCustom(world.pg, world.db, join(pgDir, `${world.db}_${timestamp}.dump`));
  const { sidecar, sha256 } = await writeSha256Sidecar(dump);
  const result: MetachatBackup = { timestamp, dump, sha256File: sidecar, sha256 };
  if (world.redis) {
    const redisDir = join(root, 'redis');
    await mkdir(redisDir, { recursive: true });
    result.rdb = await backupRedisRdb(world.redis, join(redisDir, `dump_${timestamp}.rdb`));
  }
  return result;
}

/**
 * What metachat's scripts/backup-database.sh itself writes (the cron job the audit could not confirm):
 * <root>/metachat_backup_<YYYYMMDD_HHMMSS>.sql.gz = pg_dump --format=plain --no-owner --no-acl --clean --if-exists | gzip.
 */
export async function backupMetachatDatabaseScript(
  pg: PostgresSandbox,
  db: string,
  root: string,
  options: BackupTimeOptions = {},
): Promise<string> {
  await mkdir(root, { recursive: true });
  const path = join(root, `metachat_backup_${metachatTimestamp(options.time ?? new Date())}.sql.gz`);
  return backupPgPlain(pg, db, path, ['--no-owner', '--no-acl', '--clean', '--if-exists']);
}
