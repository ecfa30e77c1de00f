import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../sandbox/ports.js';
import { isRoot, lookupOsUser } from '../sandbox/process-utils.js';
import { serviceCtlArgv, stopService, writeServiceSpec, type ServiceSpec } from '../sandbox/service-ctl.js';
import type { DrillSandbox } from './isolate.js';

/**
 * The scratch cluster a point-in-time drill recovers into: an empty throwaway data directory in a
 * private temp dir, run by service-ctl as the postgres OS user with the server binaries of the
 * base's major. It is never production's:
 * - its own data directory (data_directory, hba_file, ident_file, external_pid_file forced on the
 *   command line, which beats anything the base's postgresql.conf or postgresql.auto.conf says);
 * - no network at all: listen_addresses = '' and a unix socket in its own 0700 dir (the port only
 *   names the socket, a free loopback port number so it is no one else's);
 * - archive_mode = off: the recovered cluster's new timeline is never archived, so production's
 *   WAL archive is only ever read (by restore_command);
 * - primary_conninfo = '': it never streams from anything;
 * - peer authentication on the socket only, mapped to the OS users root/postgres (the restored
 *   roles' passwords are production's: the drill never needs them).
 */

const exec = promisify(execFile);

export interface PitrScratch {
  /** The temp dir holding everything (removed by teardown). */
  base: string;
  dataDir: string;
  socketDir: string;
  port: number;
  binDir: string;
  major: number;
  osUser: string;
  service: { stop: string[]; start: string[]; status: string[] };
  sandbox: DrillSandbox;
  connectionInfo(): string[];
  teardown(): Promise<void>;
}

/** `postgres --version` major of a bin dir (undefined: no server binary there). */
export async function serverMajor(binDir: string): Promise<number | undefined> {
  const bin = path.join(binDir, 'postgres');
  if (!existsSync(bin)) return undefined;
  try {
    const { stdout } = await exec(bin, ['--version'], { timeout: 10_000 });
    const m = /\(PostgreSQL\)\s+(\d+)/.exec(stdout);
    return m?.[1] ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export async function startPitrScratch(o: { binDir: string; major: number; productionPort?: number }): Promise<PitrScratch> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'restore-assistant-drill-pitr-'));
  try {
    await chmod(base, 0o711);
    const root = isRoot();
    const user = root ? lookupOsUser('postgres') : undefined;
    const osUser = user?.name ?? os.userInfo().username;
    const own = async (p: string): Promise<void> => {
      if (user) await chown(p, user.uid, user.gid);
    };
    const cluster = path.join(base, 'cluster');
    const dataDir = path.join(cluster, 'data');
    const socketDir = path.join(cluster, 'socket');
    for (const d of [cluster, dataDir, socketDir]) {
      await mkdir(d, { mode: 0o700 });
      await chmod(d, 0o700);
      await own(d);
    }
    let port = await freePort();
    while (port === o.productionPort) port = await freePort();
    const hba = path.join(cluster, 'pg_hba.conf');
    const ident = path.join(cluster, 'pg_ident.conf');
    const conf = path.join(cluster, 'postgresql.conf');
    const me = os.userInfo().username;
    await writeFile(hba, '# restore-assistant drill: the unix socket only, peer-mapped\nlocal all all peer map=drill\n', { mode: 0o600 });
    await writeFile(
      ident,
      `drill root postgres\ndrill postgres postgres\n${me !== 'root' && me !== 'postgres' ? `drill ${me} postgres\n` : ''}`,
      {
        mode: 0o600,
      },
    );
    // The base's own postgresql.conf when it carries one (its memory and connection settings), then
    // the command line below overrides everything that could reach production.
    await writeFile(conf, `include_if_exists '${dataDir.replace(/'/g, "''")}/postgresql.conf'\n`, { mode: 0o600 });
    for (const f of [hba, ident, conf]) await own(f);
    const set = (k: string, v: string): string[] => ['-c', `${k}=${v}`];
    const argv = [
      path.join(o.binDir, 'postgres'),
      '-D',
      dataDir,
      ...set('config_file', conf),
      ...set('data_directory', dataDir),
      ...set('hba_file', hba),
      ...set('ident_file', ident),
      ...set('external_pid_file', ''),
      ...set('listen_addresses', ''),
      ...set('port', String(port)),
      ...set('unix_socket_directories', socketDir),
      ...set('unix_socket_permissions', '0700'),
      ...set('archive_mode', 'off'),
      ...set('primary_conninfo', ''),
      ...set('hot_standby', 'on'),
      ...set('logging_collector', 'off'),
      ...set('log_destination', 'stderr'),
      ...set('ssl', 'off'),
      ...set('shared_buffers', '128MB'),
      ...set('huge_pages', 'try'),
      ...set('fsync', 'off'),
      ...set('synchronous_commit', 'off'),
      ...set('cluster_name', 'restore-assistant-drill'),
    ];
    const spec: ServiceSpec = {
      name: 'restore-assistant-drill-postgres',
      argv,
      ...(root ? { runAsUser: 'postgres' } : {}),
      cwd: cluster,
      pidFile: path.join(base, 'postgres.pid'),
      logFile: path.join(base, 'postgres.log'),
      stopSignal: 'SIGINT',
      stopTimeoutMs: 60_000,
    };
    const specFile = path.join(base, 'postgres.service.json');
    await writeServiceSpec(specFile, spec);
    const service = {
      stop: serviceCtlArgv('stop', specFile),
      start: serviceCtlArgv('start', specFile),
      status: serviceCtlArgv('status', specFile),
    };
    let tornDown = false;
    return {
      base,
      dataDir,
      socketDir,
      port,
      binDir: o.binDir,
      major: o.major,
      osUser,
      service,
      sandbox: {
        rootDirs: [base],
        postgres: { host: socketDir, port, user: 'postgres', passwordEnv: 'RESTORE_ASSISTANT_DRILL_PGPASSWORD', socketDir },
      },
      connectionInfo: () => [
        `PostgreSQL: psql -h ${socketDir} -p ${port} -U postgres (as root or postgres: peer authentication on the socket only)`,
        `Files:      ${base} (log: ${spec.logFile})`,
        `Stop:       ${service.stop.join(' ')}, then remove ${base}`,
      ],
      teardown: async () => {
        if (tornDown) return;
        tornDown = true;
        await stopService(spec).catch(() => undefined);
        await rm(base, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}
