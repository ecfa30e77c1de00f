import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MOVE_CONTENTS_ASIDE_SCRIPT,
  MOVE_CONTENTS_BACK_SCRIPT,
  MOVE_IF_EXISTS_SCRIPT,
  PROMETHEUS_FINISH_SCRIPT,
  REMOVE_PLACED_SCRIPT,
  WRITE_AOF_MANIFEST_SCRIPT,
  contextLabel,
  copyIntoArgv,
  copyOutArgv,
  extractIntoArgv,
  shScript,
  volumeHelperArgv,
  wrapArgv,
} from '../../source/exec/context.js';
import type { ExecContext } from '../../source/recipe/schema.js';

const host: ExecContext = { kind: 'host' };
const docker: ExecContext = { kind: 'docker', container: 'story-portal-postgres' };
const compose: ExecContext = {
  kind: 'compose',
  service: 'db',
  file: '/opt/app/docker-compose.yml',
  project: 'app',
  container: 'app-db-1',
  helperImage: 'alpine:3',
};

describe('wrapArgv', () => {
  it('leaves host argv unchanged (a copy)', () => {
    const argv = ['psql', '-c', 'select 1'];
    const wrapped = wrapArgv(host, argv, { interactive: true, env: ['PGPASSWORD'] });
    expect(wrapped).toEqual(argv);
    expect(wrapped).not.toBe(argv);
  });

  it('docker: exec, -i for stdin, -e NAME without a value, then the container', () => {
    expect(wrapArgv(docker, ['psql', '-d', 'x'], { interactive: true, env: ['PGPASSWORD'] })).toEqual([
      'docker',
      'exec',
      '-i',
      '-e',
      'PGPASSWORD',
      'story-portal-postgres',
      'psql',
      '-d',
      'x',
    ]);
    expect(wrapArgv(docker, ['redis-cli', 'PING'])).toEqual(['docker', 'exec', 'story-portal-postgres', 'redis-cli', 'PING']);
  });

  it('compose: -f, -p, exec -T, env names, service', () => {
    expect(wrapArgv(compose, ['psql'], { env: ['PGPASSWORD', 'OTHER'] })).toEqual([
      'docker',
      'compose',
      '-f',
      '/opt/app/docker-compose.yml',
      '-p',
      'app',
      'exec',
      '-T',
      '-e',
      'PGPASSWORD',
      '-e',
      'OTHER',
      'db',
      'psql',
    ]);
    expect(wrapArgv({ kind: 'compose', service: 'db', container: 'c' }, ['true'])).toEqual([
      'docker',
      'compose',
      'exec',
      '-T',
      'db',
      'true',
    ]);
    // Compose v1 (Debian's docker-compose package): the recipe names the program.
    const v1: ExecContext = { kind: 'compose', service: 'db', container: 'c', file: '/f.yml', command: ['docker-compose'] };
    expect(wrapArgv(v1, ['psql'], { env: ['PGPASSWORD'] })).toEqual([
      'docker-compose',
      '-f',
      '/f.yml',
      'exec',
      '-T',
      '-e',
      'PGPASSWORD',
      'db',
      'psql',
    ]);
    expect(contextLabel(v1)).toBe('docker-compose exec db');
  });

  it('keeps hostile argument values as single argv elements', () => {
    const hostile = '"; rm -rf / #$(reboot)`id`';
    const wrapped = wrapArgv(docker, ['psql', '-c', hostile]);
    expect(wrapped.at(-1)).toBe(hostile);
    expect(wrapped).toHaveLength(6);
  });
});

describe('files and labels', () => {
  it('docker cp in and out, extract from stdin; nothing on the host', () => {
    expect(copyIntoArgv(docker, '/b/redis.rdb', '/data/dump.rdb')).toEqual([
      'docker',
      'cp',
      '/b/redis.rdb',
      'story-portal-postgres:/data/dump.rdb',
    ]);
    expect(copyOutArgv(compose, '/tmp/x.dump', '/safe/x.dump')).toEqual(['docker', 'cp', 'app-db-1:/tmp/x.dump', '/safe/x.dump']);
    expect(extractIntoArgv(docker, '/prometheus')).toEqual(['docker', 'cp', '-', 'story-portal-postgres:/prometheus']);
    expect(copyIntoArgv(host, '/a', '/b')).toBeUndefined();
    expect(extractIntoArgv(host, '/a')).toBeUndefined();
  });

  it("helper containers mount the stopped container's volumes, run the program as root whatever the image's ENTRYPOINT and USER, without a network; default image busybox:stable", () => {
    expect(volumeHelperArgv(docker, ['mv', 'a', 'b'])).toEqual([
      'docker',
      'run',
      '--rm',
      '--volumes-from',
      'story-portal-postgres',
      '--user',
      '0:0',
      '--network',
      'none',
      '--entrypoint',
      'mv',
      'busybox:stable',
      'a',
      'b',
    ]);
    expect(volumeHelperArgv(compose, ['true'])).toEqual([
      'docker',
      'run',
      '--rm',
      '--volumes-from',
      'app-db-1',
      '--user',
      '0:0',
      '--network',
      'none',
      '--entrypoint',
      'true',
      'alpine:3',
    ]);
    expect(volumeHelperArgv(host, ['true'])).toEqual(['true']);
  });

  it('labels', () => {
    expect(contextLabel(host)).toBe('host');
    expect(contextLabel(docker)).toBe('docker exec story-portal-postgres');
    expect(contextLabel(compose)).toBe('docker compose exec db');
  });
});

/** The helper scripts run for real with sh (what busybox sh runs inside the helper container). */
describe('helper scripts (real sh, hostile names)', () => {
  let dir: string;
  const sh = async (script: string, args: string[]) =>
    execa(shScript(script, args)[0]!, shScript(script, args).slice(1), { reject: false });
  const hostile = 'we ird"$(touch PWNED)`id`;\n*';

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ra-ctx-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('move-if-exists moves, skips a missing source, refuses to overwrite, refuses a dir not on a volume', async () => {
    writeFileSync(join(dir, hostile), 'x');
    expect((await sh(MOVE_IF_EXISTS_SCRIPT, [join(dir, hostile), join(dir, `${hostile}.aside`)])).exitCode).toBe(0);
    expect(readFileSync(join(dir, `${hostile}.aside`), 'utf8')).toBe('x');
    expect((await sh(MOVE_IF_EXISTS_SCRIPT, [join(dir, 'missing'), join(dir, 'x')])).exitCode).toBe(0);
    writeFileSync(join(dir, 'a'), 'a');
    writeFileSync(join(dir, 'b'), 'b');
    const refused = await sh(MOVE_IF_EXISTS_SCRIPT, [join(dir, 'a'), join(dir, 'b')]);
    expect(refused.exitCode).toBe(4);
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('b');
    const novolume = await sh(MOVE_IF_EXISTS_SCRIPT, [join(dir, 'nope', 'file'), join(dir, 'nope', 'x')]);
    expect(novolume.exitCode).toBe(3);
    // The helper runs on hosts and in containers: it names the missing directory (no "volume" wording).
    expect(novolume.stderr).toContain(`${join(dir, 'nope')} does not exist or is not a directory`);
    expect(existsSync(join(dir, 'nope'))).toBe(false);
    expect(existsSync(join(process.cwd(), 'PWNED'))).toBe(false);
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });

  it('move-contents-aside and back keep a mount point in place and round-trip its entries', async () => {
    const data = join(dir, 'prometheus');
    mkdirSync(join(data, '01HBLOCK'), { recursive: true });
    writeFileSync(join(data, '01HBLOCK', 'meta.json'), '{}');
    writeFileSync(join(data, '.hidden'), 'h');
    writeFileSync(join(data, hostile), 'odd');
    mkdirSync(join(data, '.pre_restore_OLD'));
    expect((await sh(MOVE_CONTENTS_ASIDE_SCRIPT, [data, '.pre_restore_S'])).exitCode).toBe(0);
    expect(readdirSync(data).sort()).toEqual(['.pre_restore_OLD', '.pre_restore_S']);
    expect(readdirSync(join(data, '.pre_restore_S')).sort()).toEqual(['.hidden', '01HBLOCK', hostile].sort());
    // A second run with the same name refuses.
    expect((await sh(MOVE_CONTENTS_ASIDE_SCRIPT, [data, '.pre_restore_S'])).exitCode).toBe(4);
    // "restored" data arrives, then the undo.
    writeFileSync(join(data, 'restored-file'), 'new');
    expect((await sh(MOVE_CONTENTS_BACK_SCRIPT, [data, '.pre_restore_S', '.failed_restore_S'])).exitCode).toBe(0);
    expect(readdirSync(data).sort()).toEqual(['.failed_restore_S', '.hidden', '.pre_restore_OLD', '01HBLOCK', hostile].sort());
    expect(readdirSync(join(data, '.failed_restore_S'))).toEqual(['restored-file']);
    expect(readFileSync(join(data, hostile), 'utf8')).toBe('odd');
    // Undo again (e.g. a retried rollback) is a no-op.
    expect((await sh(MOVE_CONTENTS_BACK_SCRIPT, [data, '.pre_restore_S', '.failed_restore_S'])).exitCode).toBe(0);
  });

  it('writes the AOF manifest, removes placed files, and finishes a Prometheus dir', async () => {
    mkdirSync(join(dir, 'appendonlydir'));
    expect(
      (await sh(WRITE_AOF_MANIFEST_SCRIPT, [join(dir, 'appendonlydir', 'appendonly.aof.manifest'), 'appendonly.aof.1.base.rdb'])).exitCode,
    ).toBe(0);
    expect(readFileSync(join(dir, 'appendonlydir', 'appendonly.aof.manifest'), 'utf8')).toBe(
      'file appendonly.aof.1.base.rdb seq 1 type b\n',
    );
    writeFileSync(join(dir, 'lock'), '');
    writeFileSync(join(dir, 'queries.active'), '');
    writeFileSync(join(dir, 'keep'), '');
    expect((await sh(PROMETHEUS_FINISH_SCRIPT, [dir, ''])).exitCode).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['appendonlydir', 'keep']);
    expect((await sh(REMOVE_PLACED_SCRIPT, [join(dir, 'appendonlydir'), join(dir, 'missing')])).exitCode).toBe(0);
    expect(readdirSync(dir)).toEqual(['keep']);
  });
});
