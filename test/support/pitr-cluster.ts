import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { lookupOsUser } from '../../source/sandbox/process-utils.js';
import { writeServiceSpec } from '../../source/sandbox/service-ctl.js';
import { startPostgres, type PostgresSandbox, type StartPostgresOptions } from '../../source/sandbox/postgres.js';

/**
 * The point-in-time set-up shared by test/integration/pitr*.test.ts, drill-pitr.test.ts and
 * bench/pitr.ts: a real PostgreSQL with archive_mode = on and archive_command = 'cp %p <dir>/%f',
 * pg_basebackup -Ft -z into <root>/base/<stamp>, then the server handed to a service-ctl spec (the
 * way a recipe's systemctl controls it), and the physical recipe for it.
 *
 * No test framework here: bench/ uses it too.
 */

export type ServiceCtlArgv = (action: 'start' | 'stop' | 'status', spec: string) => string[];

export interface ArchivingCluster {
  pg: PostgresSandbox;
  /** The work dir everything lives in (0711: the postgres user traverses it). */
  work: string;
  archive: string;
  /** The backup root: <root>/base/<stamp>/ holds the bases. */
  root: string;
  uid: number;
  gid: number;
  /** pg_basebackup -Ft -z (plus `extra`) into <root>/base/<stamp>; returns that dir. */
  baseBackup(stamp: string, extra?: string[]): Promise<string>;
  /** pg_switch_wal() and wait until the segment it closed is in the archive; returns its name. */
  switchAndArchive(timeoutMs?: number): Promise<string>;
  /** Replace every other archived segment by its .gz (archive_command = 'gzip < %p > %f.gz' is common too). */
  gzipEveryOther(): Promise<void>;
  /**
   * Stop the sandbox's own pg_ctl control and start the server under a service-ctl spec instead;
   * returns the recipe's cluster.service argvs. From then on only the recipe's service runs it.
   */
  toService(serviceCtlArgv: ServiceCtlArgv, stopTimeoutMs?: number): Promise<{ stop: string[]; start: string[]; status: string[] }>;
  /** A physical-layout recipe (JSON text) for this cluster; the password comes from `passwordEnv`. */
  recipe(o: {
    name: string;
    service: { stop: string[]; start: string[]; status: string[] };
    passwordEnv: string;
    walArchive?: string;
    evidenceDir: string;
    recoveryTimeoutMinutes?: number;
    serviceTimeoutSeconds?: number;
    checks?: unknown[];
    drill?: Record<string, unknown>;
  }): string;
}

export async function startArchivingCluster(
  work: string,
  opts: { initdbArgs?: string[]; extraConf?: string[]; start?: (o: StartPostgresOptions) => Promise<PostgresSandbox> } = {},
): Promise<ArchivingCluster> {
  await execa('chmod', ['0711', work]);
  const user = lookupOsUser('postgres');
  const archive = join(work, 'wal_archive');
  const root = join(work, 'backups');
  await mkdir(archive, { recursive: true });
  await mkdir(join(root, 'base'), { recursive: true });
  await chown(archive, user.uid, user.gid);
  await chown(join(root, 'base'), user.uid, user.gid);
  const pg = await (opts.start ?? startPostgres)({
    baseDir: work,
    ...(opts.initdbArgs ? { initdbArgs: opts.initdbArgs } : {}),
    extraConf: ['wal_level = replica', 'archive_mode = on', `archive_command = 'cp %p ${archive}/%f'`, ...(opts.extraConf ?? [])],
  });

  const baseBackup = async (stamp: string, extra: string[] = []): Promise<string> => {
    const dir = join(root, 'base', stamp);
    await execa(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        pg.bin('pg_basebackup'),
        '-h',
        pg.socketDir,
        '-p',
        String(pg.port),
        '-U',
        'postgres',
        '-Ft',
        '-z',
        ...extra,
        '-D',
        dir,
      ],
      { env: { ...process.env, PGPASSWORD: pg.password } },
    );
    return dir;
  };

  const switchAndArchive = async (timeoutMs = 30_000): Promise<string> => {
    const seg = (await pg.psql('SELECT pg_walfile_name(pg_current_wal_lsn()); SELECT pg_switch_wal();')).split('\n')[0] ?? '';
    for (let i = 0; i < timeoutMs / 100; i++) {
      if (existsSync(join(archive, seg)) || existsSync(join(archive, `${seg}.gz`))) return seg;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`WAL segment ${seg} was not archived into ${archive} within ${timeoutMs / 1000} s`);
  };

  const gzipEveryOther = async (): Promise<void> => {
    const segs = (await readdir(archive)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    for (const [k, n] of segs.entries()) {
      if (k % 2 === 0) continue;
      await writeFile(join(archive, `${n}.gz`), gzipSync(await readFile(join(archive, n))));
      await rm(join(archive, n));
    }
  };

  const toService = async (
    serviceCtlArgv: ServiceCtlArgv,
    stopTimeoutMs = 30_000,
  ): Promise<{ stop: string[]; start: string[]; status: string[] }> => {
    await pg.stop();
    const spec = join(work, 'pg-service.json');
    await writeServiceSpec(spec, {
      name: 'postgres',
      argv: [pg.bin('postgres'), '-D', pg.dataDir],
      runAsUser: 'postgres',
      pidFile: join(work, 'pg-service.pid'),
      logFile: join(work, 'pg-service.log'),
      ready: { tcp: { host: pg.host, port: pg.port } },
      stopSignal: 'SIGINT',
      stopTimeoutMs,
    });
    const [file, ...args] = serviceCtlArgv('start', spec);
    await execa(file ?? process.execPath, args);
    // The port accepts before the server does ("the database system is starting up"): wait for a query.
    for (let i = 0; ; i++) {
      try {
        await pg.psql('SELECT 1');
        break;
      } catch (error) {
        if (i >= 300) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { stop: serviceCtlArgv('stop', spec), start: serviceCtlArgv('start', spec), status: serviceCtlArgv('status', spec) };
  };

  const recipe: ArchivingCluster['recipe'] = (o) =>
    JSON.stringify({
      name: o.name,
      backups: { root, layout: 'physical', walArchive: o.walArchive ?? archive },
      components: {
        postgres: {
          host: pg.host,
          port: pg.port,
          user: 'postgres',
          passwordEnv: o.passwordEnv,
          database: 'postgres',
          bin: pg.binDir,
          cluster: {
            dataDir: pg.dataDir,
            osUser: 'postgres',
            recoveryTimeoutMinutes: o.recoveryTimeoutMinutes ?? 2,
            service: { ...o.service, timeoutSeconds: o.serviceTimeoutSeconds ?? 60 },
          },
        },
      },
      ...(o.checks ? { checks: o.checks } : {}),
      ...(o.drill ? { drill: o.drill } : {}),
      evidence: { dir: o.evidenceDir },
    });

  return { pg, work, archive, root, uid: user.uid, gid: user.gid, baseBackup, switchAndArchive, gzipEveryOther, toService, recipe };
}
