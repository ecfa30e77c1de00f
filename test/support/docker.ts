import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DockerDeployment } from '../../source/sandbox/docker-deployment.js';
import type { StoryPortalBackup } from '../../source/sandbox/index.js';

/** Shared by the container integration tests: story-portal recipes for a deployment, backup variants. */

export const STORY_DB = 'agentic_platform';

/**
 * A story-portal recipe for the deployment: `docker` exec kind (docker exec/cp/stop/start), or
 * `compose` (Debian's docker-compose v1 with the deployment's compose file).
 */
export function storyPortalRecipe(
  d: DockerDeployment,
  opts: { name: string; kind: 'docker' | 'compose'; backupRoot: string; evidenceDir: string },
): Record<string, unknown> {
  const { names, ports, images } = d;
  const compose = d.compose;
  if (opts.kind === 'compose' && !compose) throw new Error('storyPortalRecipe: the deployment was not started with docker-compose');
  const c = (argv: string[]): string[] => (compose ? ['docker-compose', '-f', compose.file, '-p', compose.project, ...argv] : argv);
  const ctx = (component: 'postgres' | 'redis' | 'prometheus', helperImage?: string): Record<string, unknown> =>
    opts.kind === 'compose' && compose
      ? {
          kind: 'compose',
          command: ['docker-compose'],
          file: compose.file,
          project: compose.project,
          service: compose.services[component],
          container: names[component],
          ...(helperImage ? { helperImage } : {}),
        }
      : { kind: 'docker', container: names[component], ...(helperImage ? { helperImage } : {}) };
  const control = (component: 'redis' | 'prometheus' | 'app'): { stop: string[]; start: string[] } =>
    opts.kind === 'compose' && compose
      ? { stop: c(['stop', compose.services[component]]), start: c(['start', compose.services[component]]) }
      : { stop: ['docker', 'stop', names[component]], start: ['docker', 'start', names[component]] };
  return {
    name: opts.name,
    backups: { root: opts.backupRoot, layout: 'story-portal' },
    components: {
      postgres: {
        exec: ctx('postgres'),
        host: '127.0.0.1',
        port: ports.postgres,
        user: 'postgres',
        passwordEnv: 'IT_PG_PASSWORD',
        database: STORY_DB,
        owner: 'app_owner',
      },
      redis: {
        // The production image as the helper (it has an ENTRYPOINT: the helper must override it).
        exec: ctx('redis', images.redis),
        host: '127.0.0.1',
        port: ports.redis,
        dataDir: '/data',
        dbfilename: 'dump.rdb',
        appendonly: false,
        service: {
          ...control('redis'),
          status: ['docker', 'exec', names.redis, 'redis-cli', '-p', String(ports.redis), 'ping'],
          timeoutSeconds: 60,
        },
      },
      prometheus: {
        exec: ctx('prometheus', images.prometheus),
        url: d.prom.url,
        dataDir: '/prometheus',
        owner: '65534:65534',
        service: { ...control('prometheus'), timeoutSeconds: 60 },
      },
    },
    services: [{ name: 'api', ...control('app'), status: ['docker', 'exec', names.app, 'true'], timeoutSeconds: 60 }],
    checks: [
      { name: 'api responds', http: { url: d.appHealthUrl, status: 200 }, when: ['restore'], retries: 10, intervalSeconds: 0.5 },
      {
        name: 'database has tables',
        sql: { query: "select count(*) from information_schema.tables where table_schema = 'app'", minRows: 1 },
      },
      { name: 'redis answers', redis: { command: ['PING'], expect: 'PONG' } },
      { name: 'prometheus has series', promql: { query: 'up', minSeries: 1 } },
    ],
    objectives: { rtoMinutes: 30, rpoMinutes: 1440 },
    evidence: { dir: opts.evidenceDir },
  };
}

/** A copy of the set under a later id (offsetSeconds after it) with its PostgreSQL dump rewritten. */
export async function variantStorySet(
  set: StoryPortalBackup,
  root: string,
  offsetSeconds: number,
  rewrite: (gz: Buffer) => Buffer,
): Promise<string> {
  const time = new Date(Date.parse(`${set.id.slice(0, 10)}T${set.id.slice(11).replace(/-/g, ':')}Z`) + offsetSeconds * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  const id = `${time.getUTCFullYear()}-${p(time.getUTCMonth() + 1)}-${p(time.getUTCDate())}_${p(time.getUTCHours())}-${p(time.getUTCMinutes())}-${p(time.getUTCSeconds())}`;
  const dir = join(root, id);
  await mkdir(dir);
  for (const f of await readdir(set.dir))
    if (f !== 'postgres.sql.gz' && f !== 'metadata.txt') await copyFile(join(set.dir, f), join(dir, f));
  await writeFile(
    join(dir, 'metadata.txt'),
    (await readFile(join(set.dir, 'metadata.txt'), 'utf8')).replace(/^Backup Date: .*$/m, `Backup Date: ${id}`),
  );
  await writeFile(join(dir, 'postgres.sql.gz'), rewrite(await readFile(join(set.dir, 'postgres.sql.gz'))));
  return id;
}

/** Marks the pre-restore state in PostgreSQL and Redis (saved to its RDB: what a rollback puts back). */
export async function markPreRestoreState(d: DockerDeployment, tag: string): Promise<void> {
  await d.pg.psql(
    `CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('${tag}')`,
    STORY_DB,
  );
  await d.redis.command(['SET', 'pre:restore:marker', tag]);
  await d.redis.command(['SAVE']);
}

/** The marker is there and no database is left renamed aside. Returns what is wrong ('' when nothing). */
export async function preRestoreStateProblems(d: DockerDeployment, tag: string): Promise<string> {
  const problems: string[] = [];
  const pgTags = await d.pg.psql("SELECT string_agg(tag, ',') FROM public.pre_restore_marker", STORY_DB);
  if (!pgTags.split(',').includes(tag)) problems.push(`postgres marker ${tag} missing (have ${pgTags})`);
  const redisTag = String(await d.redis.command(['GET', 'pre:restore:marker']));
  if (redisTag !== tag) problems.push(`redis marker is ${redisTag}, not ${tag}`);
  const aside = await d.pg.psql(`SELECT count(*) FROM pg_database WHERE datname LIKE '${STORY_DB}\\_\\_pre\\_restore\\_%'`);
  if (aside !== '0') problems.push(`${aside} databases left renamed aside`);
  return problems.join('; ');
}
