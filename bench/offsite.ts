import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatBytes } from '../source/output.js';
import { backupMetachat, SandboxGroup, type PostgresSandbox } from '../source/sandbox/index.js';
import { startS3 } from '../test/support/s3.js';
import { writeBenchSection } from './benchmarks-doc.js';
import { median, toolArgs } from './common.js';

/**
 * Off-site restore: the same metachat set (pg_dump -Fc + .sha256) restored with the CLI
 * (`restore --yes`, deep verification first) from a local root and from an S3 bucket (s3rver on
 * loopback: download to staging + sha256, then the same verification and restore), alternating,
 * for a small and a big dump, with the CLI's peak RSS (GNU time %M). Writes the "Off-site restore"
 * section of docs/benchmarks.md.
 *
 *   node --import tsx bench/offsite.ts            (OFFSITE_BENCH_ROWS, OFFSITE_BENCH_RUNS to tune)
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..');

async function seed(pg: PostgresSandbox, db: string, rows: number): Promise<void> {
  await pg.psql(`CREATE DATABASE ${db}`);
  await pg.psql(
    `CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, payload text NOT NULL);
     INSERT INTO events (at, kind, payload)
       SELECT now() - (g || ' seconds')::interval, 'kind-' || (g % 17), md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
       FROM generate_series(1, ${rows}) g;
     CREATE INDEX events_at ON events (at);`,
    db,
  );
}

interface Run {
  ms: number;
  rssKiB?: number;
}

export async function runOffsiteBench(): Promise<void> {
  const rows = Number(process.env['OFFSITE_BENCH_ROWS'] ?? 1_000_000);
  const runs = Number(process.env['OFFSITE_BENCH_RUNS'] ?? 3);
  const base = await mkdtemp(path.join(os.tmpdir(), 'ra-bench-offsite-'));
  const group = new SandboxGroup({ baseDir: base });
  const s3 = await startS3({ baseDir: base });
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
  const load0 = os.loadavg()[0] ?? 0;
  try {
    const pg = await group.postgres();
    const sizes = [
      { name: 'small', rows: Math.ceil(rows / 50) },
      { name: 'big', rows },
    ];
    const results: Array<{ name: string; dump: number; local: Run[]; offsite: Run[] }> = [];
    for (const size of sizes) {
      process.stderr.write(`bench offsite: seeding ${size.name} (${size.rows} rows)\n`);
      await seed(pg, size.name, size.rows);
      const root = path.join(base, `${size.name}-local`);
      const mc = await backupMetachat({ pg, db: size.name }, root, { time: new Date(Date.now() - 60_000) });
      await s3.put(`${size.name}/postgres/${path.basename(mc.dump)}`, await readFile(mc.dump));
      await s3.put(`${size.name}/postgres/${path.basename(mc.sha256File)}`, await readFile(mc.sha256File));
      const recipe = async (name: string, offsite: boolean): Promise<string> => {
        const file = path.join(base, `${name}.json`);
        await writeFile(
          file,
          JSON.stringify({
            name,
            backups: {
              root: offsite ? path.join(base, 'none') : root,
              layout: 'metachat',
              database: size.name,
              ...(offsite
                ? {
                    offsite: {
                      endpoint: s3.endpoint,
                      region: s3.region,
                      bucket: s3.bucket,
                      prefix: `${size.name}/`,
                      forcePathStyle: true,
                      staging: path.join(base, 'staging'),
                    },
                  }
                : {}),
            },
            components: {
              postgres: {
                host: pg.host,
                port: pg.port,
                user: pg.user,
                passwordEnv: 'BENCH_PGPASSWORD',
                database: size.name,
                bin: pg.binDir,
              },
            },
            evidence: { dir: path.join(base, 'evidence') },
          }),
        );
        return file;
      };
      const files = { local: await recipe(`${size.name}-local`, false), offsite: await recipe(`${size.name}-offsite`, true) };
      const env = {
        ...process.env,
        NO_COLOR: '1',
        BENCH_PGPASSWORD: pg.password,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        XDG_STATE_HOME: path.join(base, 'state'),
        RESTORE_ASSISTANT_STATE_DIR: path.join(base, 'ra-state'),
        RESTORE_ASSISTANT_LOCK_DIR: path.join(base, 'locks'),
      };
      const once = async (which: 'local' | 'offsite'): Promise<Run> => {
        const cli = [process.execPath, ...toolArgs('restore', '--recipe', files[which], '--backup', 'latest', '--yes')];
        const argv = timeBin ? [timeBin, '-f', 'maxrss=%M', ...cli] : cli;
        const t = performance.now();
        const r = await exec(argv[0]!, argv.slice(1), { cwd: repo, env, maxBuffer: 64 * 1024 * 1024 }).catch((e: { stderr?: string }) => {
          throw new Error(`${which} restore failed: ${String(e.stderr ?? e).slice(-2000)}`);
        });
        const ms = performance.now() - t;
        const rss = /maxrss=(\d+)/.exec(r.stderr)?.[1];
        return { ms, ...(rss ? { rssKiB: Number(rss) } : {}) };
      };
      await once('local');
      await once('offsite');
      const local: Run[] = [];
      const offsite: Run[] = [];
      for (let i = 0; i < runs; i++) {
        local.push(await once('local'));
        offsite.push(await once('offsite'));
        process.stderr.write(
          `bench offsite: ${size.name} run ${i + 1}: local ${Math.round(local.at(-1)!.ms)} ms, off-site ${Math.round(offsite.at(-1)!.ms)} ms\n`,
        );
      }
      results.push({ name: size.name, dump: (await stat(mc.dump)).size, local, offsite });
    }
    const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
    const rss = (r: Run[]): string => (r.every((x) => x.rssKiB) ? `${Math.round(Math.max(...r.map((x) => x.rssKiB!)) / 1024)} MiB` : 'n/a');
    const { stdout: pgVersion } = await exec(path.join(pg.binDir, 'pg_restore'), ['--version']);
    const lines = [
      '## Off-site restore',
      '',
      `\`node --import tsx bench/offsite.ts\` (bench/offsite.ts), ${new Date().toISOString().slice(0, 10)}, on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${pgVersion.trim()}.`,
      '',
      'The same metachat set (`pg_dump -Fc` + its `.sha256`) restored by the CLI (`restore --recipe R --backup latest --yes`:',
      'deep verification, then drop/recreate and `pg_restore`) from a local root, and from an S3 bucket',
      '(s3rver on loopback behind the SigV4 check of test/support/s3.ts): list, download into the staging dir with',
      'sha256, then the same verification and restore, and the staged copy removed. Wall time of the whole CLI',
      `process (tsx loader included); runs alternate, median of ${runs} after one warm-up each. Peak RSS: GNU time %M`,
      'of the CLI process (max over the runs).',
      '',
      '| set | dump | local | off-site | difference | peak RSS local | peak RSS off-site |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...results.map((r) => {
        const l = median(r.local.map((x) => x.ms));
        const o = median(r.offsite.map((x) => x.ms));
        return `| ${r.name} | ${formatBytes(r.dump)} | ${s(l)} | ${s(o)} | ${o >= l ? '+' : ''}${s(o - l)} | ${rss(r.local)} | ${rss(r.offsite)} |`;
      }),
      '',
      `Runs (ms): ${results.map((r) => `${r.name} local ${r.local.map((x) => Math.round(x.ms)).join(', ')}; off-site ${r.offsite.map((x) => Math.round(x.ms)).join(', ')}`).join('; ')}.`,
      `Load average (1 min) ${load0.toFixed(1)} at the start, ${(os.loadavg()[0] ?? 0).toFixed(1)} at the end.`,
      '',
    ];
    await writeBenchSection('Off-site restore', lines.join('\n'));
    process.stderr.write(`${lines.join('\n')}\n`);
  } finally {
    await group.stopAll();
    await s3.dispose();
    await rm(base, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runOffsiteBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
