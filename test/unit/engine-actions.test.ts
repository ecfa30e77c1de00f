import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pasteableAction } from '../../source/actions/describe.js';
import { ActionError, executeAction, type ActionContext } from '../../source/engine/actions.js';
import type { EngineEventBody } from '../../source/engine/events.js';
import { StripOwnershipAndAcl } from '../../source/engine/streams.js';
import { createRedactor } from '../../source/exec/redact.js';
import type { PlannedAction } from '../../source/actions/types.js';

let dir: string;
let events: EngineEventBody[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'engine-actions-'));
  events = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ctx(extra: Partial<ActionContext> = {}): ActionContext {
  return {
    stepId: 's1',
    emit: (e) => events.push(e),
    redact: createRedactor(),
    env: {},
    signal: new AbortController().signal,
    runCheck: async () => ({ ok: true, attempts: 1, detail: 'ok', durationMs: 1 }),
    progressIntervalMs: 0,
    ...extra,
  };
}

/** A child that copies stdin to a file and exits 0 (whatever it got). */
const sinkTo = (file: string): PlannedAction => ({
  type: 'exec',
  argv: [process.execPath, '-e', `process.stdin.pipe(require('fs').createWriteStream(${JSON.stringify(file)}))`],
  purpose: 'sink',
  runsIn: 'host',
});

async function strip(text: string, chunkSize = 7): Promise<string> {
  const chunks: Buffer[] = [];
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += chunkSize) chunks.push(buf.subarray(i, i + chunkSize));
  const out: Buffer[] = [];
  const t = Readable.from(chunks).pipe(new StripOwnershipAndAcl());
  for await (const c of t) out.push(c as Buffer);
  return Buffer.concat(out).toString();
}

describe('strip-ownership-and-acl filter', () => {
  it('drops OWNER TO, GRANT, REVOKE and default privileges lines, across chunk boundaries', async () => {
    const dump = [
      'SET statement_timeout = 0;',
      'CREATE TABLE public.t (id integer);',
      'ALTER TABLE public.t OWNER TO app_owner;',
      'ALTER SEQUENCE public.t_id_seq OWNER TO app_owner;',
      'ALTER MATERIALIZED VIEW public.mv OWNER TO "Weird Role";',
      'GRANT SELECT ON TABLE public.t TO readonly;',
      'REVOKE ALL ON SCHEMA public FROM PUBLIC;',
      'ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO readonly;',
      'ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);',
      '',
    ].join('\n');
    const out = await strip(dump);
    expect(out).toBe(
      [
        'SET statement_timeout = 0;',
        'CREATE TABLE public.t (id integer);',
        'ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);',
        '',
      ].join('\n'),
    );
  });

  it('never touches COPY data or function bodies', async () => {
    const dump = [
      'COPY public.notes (id, body) FROM stdin;',
      '1\tGRANT SELECT ON TABLE x TO y;',
      'GRANT ALL ON t TO u;',
      '\\.',
      'CREATE FUNCTION public.f() RETURNS void',
      '    LANGUAGE plpgsql',
      '    AS $_$',
      'BEGIN',
      'REVOKE ALL ON t FROM u;',
      'END;',
      '$_$;',
      'GRANT ALL ON FUNCTION public.f() TO app;',
      'last line without newline',
    ].join('\n');
    const out = await strip(dump, 5);
    expect(out).toContain('1\tGRANT SELECT ON TABLE x TO y;\nGRANT ALL ON t TO u;\n\\.');
    expect(out).toContain('BEGIN\nREVOKE ALL ON t FROM u;\nEND;');
    expect(out).not.toContain('GRANT ALL ON FUNCTION');
    expect(out.endsWith('last line without newline')).toBe(true);
  });
});

describe('exec action', () => {
  it('streams a .gz through gunzip into the process and reports bytes read of the total', async () => {
    const gz = path.join(dir, 'dump.sql.gz');
    const body = 'SELECT 1;\n'.repeat(50_000);
    await writeFile(gz, gzipSync(body));
    const out = path.join(dir, 'out.sql');
    await executeAction({ ...sinkTo(out), input: { file: gz, gunzip: true }, progress: 'input-bytes' } as PlannedAction, ctx());
    expect(await readFile(out, 'utf8')).toBe(body);
    const progress = events.filter((e) => e.type === 'progress');
    const last = progress.at(-1);
    expect(last).toMatchObject({ unit: 'bytes', done: (await readFile(gz)).length, total: (await readFile(gz)).length });
  });

  it('fails on a truncated .gz even though the process exits 0', async () => {
    const gz = path.join(dir, 'dump.sql.gz');
    const full = gzipSync('CREATE TABLE a (id int);\n'.repeat(20_000));
    await writeFile(gz, full.subarray(0, Math.floor(full.length / 2)));
    const out = path.join(dir, 'out.sql');
    await expect(executeAction({ ...sinkTo(out), input: { file: gz, gunzip: true } } as PlannedAction, ctx())).rejects.toThrow(
      /decompressing .* failed .*damaged or truncated/,
    );
  });

  it('fails on an empty .gz', async () => {
    const gz = path.join(dir, 'empty.sql.gz');
    await writeFile(gz, '');
    await expect(
      executeAction({ ...sinkTo(path.join(dir, 'o')), input: { file: gz, gunzip: true } } as PlannedAction, ctx()),
    ).rejects.toThrow(/decompressing/);
  });

  it('fails when the process exits 0 without reading all of its input', async () => {
    const file = path.join(dir, 'dump.sql');
    await writeFile(file, 'x'.repeat(8 * 1024 * 1024));
    const action: PlannedAction = {
      type: 'exec',
      argv: [process.execPath, '-e', 'process.exit(0)'],
      input: { file },
      purpose: 'x',
      runsIn: 'host',
    };
    await expect(executeAction(action, ctx())).rejects.toThrow(/exited before reading all of .*dump\.sql/);
  });

  it('fails with the exit code and stderr tail of a failing process', async () => {
    const action: PlannedAction = {
      type: 'exec',
      argv: [process.execPath, '-e', 'console.error("ERROR: relation exists"); process.exit(3)'],
      purpose: 'x',
      runsIn: 'host',
    };
    await expect(executeAction(action, ctx())).rejects.toThrow(/exited with code 3: ERROR: relation exists/);
    expect(events.find((e) => e.type === 'command-finished')).toMatchObject({
      stepId: 's1',
      exitCode: 3,
      stderrTail: ['ERROR: relation exists'],
    });
  });

  it('passes envFrom secrets through the environment and never shows them', async () => {
    const action: PlannedAction = {
      type: 'exec',
      argv: [process.execPath, '-e', 'console.log("password is " + process.env.PGPASSWORD)'],
      envFrom: { PGPASSWORD: 'APP_DB_PASSWORD' },
      purpose: 'x',
      runsIn: 'host',
    };
    await executeAction(action, ctx({ env: { APP_DB_PASSWORD: 's3cr3t-value' } }));
    const text = JSON.stringify(events);
    expect(text).not.toContain('s3cr3t-value');
    expect(text).toContain('password is ****');
    await expect(executeAction(action, ctx({ env: {} }))).rejects.toThrow(/APP_DB_PASSWORD is not set/);
  });

  it('counts pg_restore --verbose items against the total', async () => {
    const lines = [
      'pg_restore: connecting to database for restore',
      'pg_restore: creating TABLE "public.a"',
      'pg_restore: processing data for table "public.a"',
      'pg_restore: creating INDEX "public.a_idx"',
    ];
    const action: PlannedAction = {
      type: 'exec',
      argv: [process.execPath, '-e', `console.error(${JSON.stringify(lines.join('\n'))})`],
      purpose: 'x',
      runsIn: 'host',
      progress: 'pg-restore-items',
      progressTotal: 3,
    };
    await executeAction(action, ctx());
    expect(events.filter((e) => e.type === 'progress').at(-1)).toMatchObject({ unit: 'items', done: 3, total: 3 });
  });

  it('describes itself as a pasteable command line', () => {
    const text = pasteableAction(
      {
        type: 'exec',
        argv: ['psql', '-v', 'ON_ERROR_STOP=1', '-d', 'my db'],
        envFrom: { PGPASSWORD: 'PW' },
        input: { file: '/b/d.sql.gz', gunzip: true },
        purpose: 'x',
        runsIn: 'host',
      },
      createRedactor(),
    );
    expect(text).toBe(`gunzip -c /b/d.sql.gz | PGPASSWORD="$PW" psql -v ON_ERROR_STOP=1 -d 'my db'`);
  });
});

describe('file actions', () => {
  it('move: renames, tolerates a missing source with ifExists, refuses to overwrite', async () => {
    const a = path.join(dir, 'a');
    await writeFile(a, 'A');
    await executeAction({ type: 'move', from: a, to: `${a}.old`, purpose: 'm' }, ctx());
    expect(await readFile(`${a}.old`, 'utf8')).toBe('A');
    await executeAction({ type: 'move', from: a, to: `${a}.x`, purpose: 'm', ifExists: true }, ctx());
    await expect(executeAction({ type: 'move', from: a, to: `${a}.x`, purpose: 'm' }, ctx())).rejects.toThrow(/does not exist/);
    await writeFile(a, 'B');
    await expect(executeAction({ type: 'move', from: a, to: `${a}.old`, purpose: 'm' }, ctx())).rejects.toThrow(/already exists/);
    expect(await readFile(`${a}.old`, 'utf8')).toBe('A');
  });

  it('copy-file: copies, refuses to overwrite', async () => {
    const a = path.join(dir, 'a');
    await writeFile(a, 'A');
    await executeAction({ type: 'copy-file', from: a, to: path.join(dir, 'b'), purpose: 'c' }, ctx());
    expect(await readFile(path.join(dir, 'b'), 'utf8')).toBe('A');
    await expect(executeAction({ type: 'copy-file', from: a, to: path.join(dir, 'b'), purpose: 'c' }, ctx())).rejects.toThrow(ActionError);
  });
});

describe('extract-tar', () => {
  const tar = (cwd: string, archive: string, ...args: string[]): void => {
    execFileSync('tar', ['czf', archive, ...args], { cwd, stdio: 'ignore' });
  };

  it('extracts a GNU tar of a live data dir (./ entries) into a fresh directory', async () => {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'wal'), { recursive: true });
    await writeFile(path.join(src, 'wal', '00000001'), 'w');
    await writeFile(path.join(src, 'lock'), '');
    await symlink('wal/00000001', path.join(src, 'inner-link'));
    const archive = path.join(dir, 'p.tar.gz');
    tar(src, archive, '.');
    const dest = path.join(dir, 'restored');
    await executeAction({ type: 'extract-tar', archive, dest, purpose: 'x' }, ctx());
    expect(await readFile(path.join(dest, 'wal', '00000001'), 'utf8')).toBe('w');
    expect(existsSync(path.join(dest, 'lock'))).toBe(true);
    expect(readdirSync(dir).filter((n) => n.includes('.extract-'))).toEqual([]);
    await expect(executeAction({ type: 'extract-tar', archive, dest, purpose: 'x' }, ctx())).rejects.toThrow(/already exists/);
  });

  it.each([
    ['an absolute path', async (src: string, archive: string) => tar(src, archive, '-P', path.join(src, 'f'))],
    ['a ".." path', async (src: string, archive: string) => tar(path.join(src, 'sub'), archive, '-P', '../f')],
    [
      'a symlink leaving the archive',
      async (src: string, archive: string) => {
        await symlink('/etc/passwd', path.join(src, 'sub', 'evil'));
        tar(path.join(src, 'sub'), archive, 'evil');
      },
    ],
  ])('refuses an archive with %s and leaves nothing behind', async (_name, make) => {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'f'), 'x');
    const archive = path.join(dir, 'bad.tar.gz');
    await make(src, archive);
    const dest = path.join(dir, 'restored');
    await expect(executeAction({ type: 'extract-tar', archive, dest, purpose: 'x' }, ctx())).rejects.toThrow(/refused to extract/);
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.extract-'))).toEqual([]);
  });
});

describe('wait actions', () => {
  it('wait-tcp waits for up and for down', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await expect(executeAction({ type: 'wait-tcp', host: '127.0.0.1', port, timeoutSeconds: 5, purpose: 'up' }, ctx())).resolves.toMatch(
      /accepting/,
    );
    await expect(
      executeAction({ type: 'wait-tcp', host: '127.0.0.1', port, timeoutSeconds: 0.3, purpose: 'down', until: 'down' }, ctx()),
    ).rejects.toThrow(/still accepts/);
    await new Promise<void>((r) => server.close(() => r()));
    await expect(
      executeAction({ type: 'wait-tcp', host: '127.0.0.1', port, timeoutSeconds: 5, purpose: 'down', until: 'down' }, ctx()),
    ).resolves.toMatch(/refusing/);
  });

  it('wait-command polls until the command exits zero', async () => {
    // Fails on its first run (leaving a flag), succeeds on the next: two attempts whatever the load.
    const flag = path.join(dir, 'flag');
    const script = `const fs = require('fs'); const f = ${JSON.stringify(flag)}; if (fs.existsSync(f)) process.exit(0); fs.writeFileSync(f, 'x'); process.exit(1);`;
    const detail = await executeAction(
      {
        type: 'wait-command',
        command: { argv: [process.execPath, '-e', script], purpose: 'p', runsIn: 'host' },
        timeoutSeconds: 20,
        untilExit: 'zero',
        purpose: 'flag appears',
      },
      ctx(),
    );
    expect(detail).toMatch(/attempts/);
    // first and deciding attempts are recorded, not every poll
    expect(events.filter((e) => e.type === 'command-finished').length).toBeLessThanOrEqual(2);
  });
});
