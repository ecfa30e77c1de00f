import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startPostgres, writeServiceSpec, type PostgresSandbox } from '../../source/sandbox/index.js';

/**
 * A small point-in-time world for tests of the guide (and anything else that needs one): a real
 * PostgreSQL 15 with archive_mode = on (1 MiB WAL segments, archive_command = cp), a
 * pg_basebackup -Ft -z in <base>/backups/base/<stamp>, then `writes` rows inserted one at a time
 * (pg_switch_wal after each), the server's time recorded after each commit with the rows up to
 * it. From then on the server runs under the sandbox's service-ctl (as a recipe's service would),
 * and a physical-layout recipe for it is written to <base>/pitr.yaml.
 */

export interface PitrMark {
  /** The server's clock_timestamp() after the write, as psql prints it ("2026-12-01 03:00:05.123+00"). */
  at: string;
  /** The rows of table t then ("0,1,2"). */
  rows: string;
}

export interface PitrWorld {
  pg: PostgresSandbox;
  recipe: string;
  archive: string;
  marks: PitrMark[];
  /** The rows of table t now. */
  rows(): Promise<string>;
  /** The environment the CLI needs (the recipe's password variable, state and lock dirs, NO_COLOR). */
  env: NodeJS.ProcessEnv;
  dispose(): Promise<void>;
}

export type ServiceCtlArgv = (action: 'start' | 'stop' | 'status', spec: string) => string[];

export async function buildPitrWorld(o: {
  base: string;
  serviceCtlArgv: ServiceCtlArgv;
  writes?: number;
  name?: string;
}): Promise<PitrWorld> {
  const { base, serviceCtlArgv } = o;
  const writes = o.writes ?? 3;
  await chmod(base, 0o711);
  const archive = join(base, 'wal_archive');
  const root = join(base, 'backups');
  await mkdir(archive);
  await mkdir(join(root, 'base'), { recursive: true });
  const { stdout: uid } = await execa('id', ['-u', 'postgres']);
  const { stdout: gid } = await execa('id', ['-g', 'postgres']);
  await chown(archive, Number(uid), Number(gid));
  await chown(join(root, 'base'), Number(uid), Number(gid));
  const pg = await startPostgres({
    baseDir: base,
    initdbArgs: ['--wal-segsize=1'],
    extraConf: ['wal_level = replica', 'archive_mode = on', `archive_command = 'cp %p ${archive}/%f'`],
  });
  const rows = (): Promise<string> => pg.psql("SELECT coalesce(string_agg(i::text, ',' ORDER BY i), '') FROM t");
  try {
    await pg.psql('CREATE TABLE t (i int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); INSERT INTO t (i) VALUES (0)');
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
        '-D',
        join(root, 'base', '2026-12-01_03-00-00'),
      ],
      { env: { ...process.env, PGPASSWORD: pg.password } },
    );
    const marks: PitrMark[] = [];
    for (let i = 1; i <= writes; i++) {
      await pg.psql(`INSERT INTO t (i) VALUES (${i}); SELECT pg_switch_wal();`);
      await new Promise((r) => setTimeout(r, 300));
      marks.push({ at: await pg.psql('SELECT clock_timestamp()'), rows: await rows() });
      await new Promise((r) => setTimeout(r, 700));
    }
    const last = await pg.psql('SELECT pg_walfile_name(pg_current_wal_lsn()); SELECT pg_switch_wal();');
    const lastSeg = last.split('\n')[0] ?? '';
    for (let i = 0; i < 100 && !existsSync(join(archive, lastSeg)); i++) await new Promise((r) => setTimeout(r, 200));
    if (!existsSync(join(archive, lastSeg))) throw new Error(`the last WAL segment ${lastSeg} was not archived`);

    // From here on the recipe's service controls the server (the way it would call systemctl).
    await pg.stop();
    const spec = join(base, 'pg-service.json');
    await writeServiceSpec(spec, {
      name: 'postgres',
      argv: [pg.bin('postgres'), '-D', pg.dataDir],
      runAsUser: 'postgres',
      pidFile: join(base, 'pg-service.pid'),
      logFile: join(base, 'pg-service.log'),
      ready: { tcp: { host: pg.host, port: pg.port } },
      stopSignal: 'SIGINT',
      stopTimeoutMs: 30_000,
    });
    const [file, ...args] = serviceCtlArgv('start', spec);
    await execa(file ?? process.execPath, args);
    await pg.psql('SELECT 1');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PITR_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      RESTORE_ASSISTANT_STATE_DIR: join(base, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: join(base, 'locks'),
      NO_COLOR: '1',
    };
    delete env['CI'];
    const recipe = join(base, 'pitr.yaml');
    await writeFile(
      recipe,
      JSON.stringify({
        name: o.name ?? 'pitr-world',
        backups: { root, layout: 'physical', walArchive: archive },
        components: {
          postgres: {
            host: pg.host,
            port: pg.port,
            user: 'postgres',
            passwordEnv: 'PITR_PG_PASSWORD',
            database: 'postgres',
            bin: pg.binDir,
            cluster: {
              dataDir: pg.dataDir,
              osUser: 'postgres',
              recoveryTimeoutMinutes: 2,
              service: {
                stop: serviceCtlArgv('stop', spec),
                start: serviceCtlArgv('start', spec),
                status: serviceCtlArgv('status', spec),
                timeoutSeconds: 60,
              },
            },
          },
        },
        checks: [{ name: 'table t readable', sql: { query: 'SELECT count(*) FROM t', minRows: 1 }, retries: 5, intervalSeconds: 0.5 }],
        evidence: { dir: join(base, 'evidence') },
      }),
    );
    return {
      pg,
      recipe,
      archive,
      marks,
      rows,
      env,
      dispose: async () => {
        await execa(serviceCtlArgv('stop', spec)[0] ?? process.execPath, serviceCtlArgv('stop', spec).slice(1), { reject: false });
        await pg.dispose();
      },
    };
  } catch (error) {
    await pg.dispose();
    throw error;
  }
}
