import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupMetachat,
  fingerprintPostgres,
  freePort,
  SandboxGroup,
  seedPostgres,
  type PostgresFingerprint,
  type PostgresSandbox,
} from '../../source/sandbox/index.js';
import { cliBin, runCli, type CliResult } from '../support/cli.js';
import { startS3, type S3Sandbox } from '../support/s3.js';

/**
 * Evidence off-site (issue 15), end to end with the built CLI, a real PostgreSQL and a real S3
 * server (s3rver behind a SigV4 check, test/support/s3.ts): a restore whose bucket is down ends
 * with its own exit code, warns, and history.jsonl records the failure; `evidence upload` later
 * sends it; a verify run is uploaded when it seals; `evidence fetch` brings it back and `evidence
 * verify` accepts the copy, and refuses it when one byte of an object was changed in the bucket.
 */

const CHAT = 'chatdb';
const PREFIX = 'evidence/chat';

function walk(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

interface HistoryJson {
  runs: Array<{
    runId: string;
    kind: string;
    evidence: string;
    upload?: {
      status: string;
      url: string;
      why: string | null;
      attempts: number;
      objects: Array<{ key: string; etag: string; sha256: string }>;
    };
  }>;
}

describe('evidence off-site: evidence.upload, evidence upload / fetch / verify', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let s3: S3Sandbox | undefined;
  let port: number;
  let holder: Server | undefined;
  let stamp: string;
  let backupChat: PostgresFingerprint;
  let recipeFile: string;
  let env: Record<string, string>;
  const outputs: string[] = [];
  const argvSeen: string[] = [];
  const evidenceRoot = (): string => join(base, 'evidence');

  async function cli(args: string[]): Promise<CliResult> {
    const r = await watchArgv(() => runCli(args, { env, cwd: base }));
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  const show = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  /** Runs `fn` while sampling every process's argv (/proc/<pid>/cmdline). */
  async function watchArgv<T>(fn: () => Promise<T>): Promise<T> {
    let running = true;
    const sampler = (async () => {
      while (running) {
        for (const pid of await readdir('/proc').catch(() => [] as string[])) {
          if (!/^\d+$/.test(pid)) continue;
          try {
            argvSeen.push((await readFile(`/proc/${pid}/cmdline`)).toString('utf8').replace(/\0/g, ' '));
          } catch {
            // gone
          }
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    try {
      return await fn();
    } finally {
      running = false;
      await sampler;
    }
  }

  async function history(): Promise<HistoryJson> {
    const r = await cli(['history', '--recipe', recipeFile, '--json']);
    expect(r.code, show(r)).toBe(0);
    return JSON.parse(r.stdout) as HistoryJson;
  }

  async function bucketKeys(prefix: string): Promise<string[]> {
    const page = await s3!.client().send(new ListObjectsV2Command({ Bucket: s3!.bucket, Prefix: prefix }));
    return (page.Contents ?? []).map((c) => c.Key ?? '').sort();
  }

  async function object(key: string): Promise<Buffer> {
    const res = await s3!.client().send(new GetObjectCommand({ Bucket: s3!.bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-evidence-upload-it-'));
    group = new SandboxGroup({ baseDir: base });
    pg = await group.postgres();
    await seedPostgres(pg, CHAT, { rows: 20 });
    const mc = await backupMetachat({ pg, db: CHAT }, join(base, 'backups'), { time: new Date(Date.now() - 3600_000) });
    stamp = mc.timestamp;
    backupChat = await fingerprintPostgres(pg, CHAT);
    // The bucket's port: until the test starts the server there, a holder keeps it (so no other
    // process takes it meanwhile) and drops every connection at once: the bucket is down.
    port = await freePort();
    holder = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      holder!.once('error', reject);
      holder!.listen(port, '127.0.0.1', resolve);
    });
    recipeFile = join(base, 'chat.json');
    await writeFile(
      recipeFile,
      JSON.stringify(
        {
          name: 'chat',
          backups: { root: join(base, 'backups'), layout: 'metachat', database: CHAT },
          components: {
            postgres: {
              host: pg.host,
              port: pg.port,
              user: 'postgres',
              passwordEnv: 'IT_PG_PASSWORD',
              database: CHAT,
              owner: 'app_owner',
              bin: pg.binDir,
            },
          },
          objectives: { rpoMinutes: 1440 },
          evidence: {
            dir: evidenceRoot(),
            upload: {
              endpoint: `http://127.0.0.1:${port}`,
              region: 'eu-central-1',
              bucket: 'backups',
              prefix: PREFIX,
              forcePathStyle: true,
              accessKeyIdEnv: 'IT_S3_KEY',
              secretAccessKeyEnv: 'IT_S3_SECRET',
              attempts: 2,
              retryDelaySeconds: 0.2,
            },
          },
        },
        null,
        2,
      ),
    );
    env = {
      IT_PG_PASSWORD: pg.password,
      // The server's keys are made when it starts; until then the bucket is down anyway.
      IT_S3_KEY: 'AKRADOWN',
      IT_S3_SECRET: 'not-yet',
      XDG_STATE_HOME: join(base, 'state'),
      XDG_RUNTIME_DIR: join(base, 'run'),
    };
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    await s3?.dispose();
    holder?.close();
    if (base) rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  });

  let downRun: string;
  let warningNext: string;
  it('bucket down: the restore keeps its own exit code, warns, and history records the failed upload', async () => {
    await pg.psql('UPDATE app.users SET karma = -3', CHAT);
    const r = await cli(['restore', '--recipe', recipeFile, '--backup', stamp, '--yes']);
    expect(r.code, show(r)).toBe(0);
    expect(await fingerprintPostgres(pg, CHAT)).toEqual(backupChat);
    expect(r.stderr).toMatch(/Warning: evidence not uploaded to s3:\/\/backups\/evidence\/chat\/\d{8}T\d{6}Z-restore-chat-[0-9a-f]{4}\//);
    expect(r.stderr).toContain('try 1 of 2 failed');
    expect(r.stderr).toContain(`Next: restore-assistant evidence upload --recipe ${recipeFile} `);
    warningNext = /^Warning: evidence not uploaded.* Next: restore-assistant (.+)$/m.exec(r.stderr)![1]!;
    const h = await history();
    const run = h.runs.find((x) => x.kind === 'restore')!;
    expect(run.evidence).toBe('sealed');
    expect(run.upload).toMatchObject({ status: 'failed', attempts: 2 });
    expect(run.upload!.why).toMatch(/ECONNRESET|socket hang up|ECONNREFUSED/i);
    downRun = run.runId;
    const table = await cli(['history', '--recipe', recipeFile]);
    expect(table.stdout).toMatch(new RegExp(`sealed, upload FAILED.*${downRun}`));
    expect(table.stderr).toContain(`evidence not uploaded off-site`);
  });

  it('`evidence upload` sends the runs not uploaded yet once the bucket is back: the bucket holds the sealed run', async () => {
    await new Promise((resolve) => holder!.close(resolve));
    holder = undefined;
    s3 = await startS3({ baseDir: base, port });
    env = { ...env, IT_S3_KEY: s3.accessKeyId, IT_S3_SECRET: s3.secretAccessKey };
    // The warning's Next: line, pasted (the paths here need no quoting).
    expect(warningNext).toBe(`evidence upload --recipe ${recipeFile} ${downRun}`);
    const r = await cli(warningNext.split(' '));
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(`Uploaded ${downRun}: s3://backups/${PREFIX}/${downRun}/`);
    const keys = await bucketKeys(`${PREFIX}/${downRun}/`);
    const local = readdirSync(join(evidenceRoot(), downRun)).sort();
    expect(local).toEqual(expect.arrayContaining(['events.jsonl', 'report.json', 'report.md', 'seal.sig.json']));
    expect(keys).toEqual(local.map((f) => `${PREFIX}/${downRun}/${f}`));
    for (const f of local)
      expect((await object(`${PREFIX}/${downRun}/${f}`)).equals(readFileSync(join(evidenceRoot(), downRun, f))), f).toBe(true);

    const run = (await history()).runs.find((x) => x.runId === downRun)!;
    expect(run.upload?.status).toBe('uploaded');
    expect(run.upload?.objects.map((o) => o.key).sort()).toEqual(keys);
    expect(run.upload?.objects.every((o) => /^"?[0-9a-f]{32}"?$/.test(o.etag))).toBe(true);
    // The index still cross-checks the run's seal (upload records are not run entries).
    const v = await cli(['evidence', 'verify', join(evidenceRoot(), downRun)]);
    expect(v.code, show(v)).toBe(0);
    expect(v.stdout).toContain('matches the seal recorded in history.jsonl');

    const again = await cli(['evidence', 'upload', '--recipe', recipeFile]);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toContain('Nothing to upload');
  });

  let verifyRun: string;
  it('a verify run is uploaded when it seals; fetched back, its seal (and signature) verifies on the copy', async () => {
    const r = await cli(['verify', stamp, '--recipe', recipeFile]);
    expect(r.code, show(r)).toBe(0);
    const m = /Evidence uploaded: s3:\/\/backups\/evidence\/chat\/(\S+)\/ \((\d+) objects\)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    verifyRun = m![1]!;
    expect(verifyRun).toMatch(/-verify-chat-/);
    expect((await history()).runs.find((x) => x.runId === verifyRun)?.upload?.status).toBe('uploaded');

    const f = await cli(['evidence', 'fetch', '--recipe', recipeFile, verifyRun, join(base, 'fetched')]);
    expect(f.code, show(f)).toBe(0);
    expect(f.stdout).toContain('every object matches the sha256 this host recorded');
    const copy = join(base, 'fetched', verifyRun);
    expect(readdirSync(copy).sort()).toEqual(readdirSync(join(evidenceRoot(), verifyRun)).sort());
    const key = JSON.parse((await cli(['evidence', 'key', '--json'])).stdout) as { publicKey: string };
    const v = await cli(['evidence', 'verify', copy, '--key', key.publicKey]);
    expect(v.code, show(v)).toBe(0);
    expect(v.stdout).toContain('Evidence verified');
    expect(v.stdout).toContain('signed by the given key');

    // A copy made without the tool (as `aws s3 cp --recursive` makes it) verifies the same way.
    const plain = join(base, 'plain-copy', verifyRun);
    await mkdir(plain, { recursive: true });
    for (const k of await bucketKeys(`${PREFIX}/${verifyRun}/`)) await writeFile(join(plain, k.split('/').at(-1)!), await object(k));
    const pv = await cli(['evidence', 'verify', plain, '--key', key.publicKey, '--json']);
    expect(pv.code, show(pv)).toBe(0);
    expect(JSON.parse(pv.stdout)).toMatchObject({ status: 'sealed', indexed: false, signature: { status: 'valid' } });
  });

  it('one byte changed in the bucket: fetch says it differs from the upload, evidence verify fails; hostile keys are not written', async () => {
    const key = `${PREFIX}/${verifyRun}/events.jsonl`;
    const bytes = await object(key);
    const at = bytes.indexOf('"outcome":"verified"');
    expect(at).toBeGreaterThan(0);
    const forged = Buffer.from(bytes);
    forged.write('"outcome":"rejected"', at, 'utf8');
    await s3!.put(key, forged.subarray(0, bytes.length));
    await s3!.put(`${PREFIX}/${verifyRun}/nested/evil.json`, '{}');

    const f = await cli(['evidence', 'fetch', '--recipe', recipeFile, verifyRun, join(base, 'fetched-2')]);
    expect(f.code, show(f)).toBe(7);
    expect(f.stdout).toContain('differs from what this host uploaded');
    expect(f.stdout).toMatch(/events\.jsonl: sha256 [0-9a-f]{64}, uploaded [0-9a-f]{64}/);
    expect(f.stdout).toContain(`skipped ${PREFIX}/${verifyRun}/nested/evil.json`);
    const copy = join(base, 'fetched-2', verifyRun);
    expect(
      walk(join(base, 'fetched-2'))
        .map((p) => p.slice(copy.length + 1))
        .sort(),
    ).not.toContain('nested/evil.json');
    expect(existsSync(join(base, 'fetched-2', 'nested'))).toBe(false);
    const v = await cli(['evidence', 'verify', copy]);
    expect(v.code, show(v)).toBe(7);
    expect(v.stdout).toContain('Evidence tampered');
  });

  /** The `restore-assistant ...` commands of an error's Next: line, as argv (these paths need no quoting). */
  function nextCommands(r: CliResult): string[][] {
    const line = r.stderr.split('\n').find((l) => l.startsWith('Next: ')) ?? '';
    return [...line.matchAll(/`restore-assistant ([^`]+)`/g)].map((m) => m[1]!.split(' '));
  }

  it('errors of upload and fetch name a command that works when pasted', async () => {
    const notRun = await cli(['evidence', 'fetch', '--recipe', recipeFile, 'not-a-run', join(base, 'x')]);
    expect(notRun.code, show(notRun)).toBe(2);
    expect(notRun.stderr).toContain('is not a run id');
    const [list] = nextCommands(notRun);
    expect(list).toEqual(['history', '--recipe', recipeFile]);
    expect((await cli(list!)).code).toBe(0);

    const absent = await cli(['evidence', 'fetch', '--recipe', recipeFile, '20990101T000000Z-restore-chat-ffff', join(base, 'x')]);
    expect(absent.code, show(absent)).toBe(2);
    expect(absent.stderr).toContain('holds no events.jsonl');
    expect(existsSync(join(base, 'x', '20990101T000000Z-restore-chat-ffff'))).toBe(false);
    const [hist] = nextCommands(absent);
    expect((await cli(hist!)).code).toBe(0);

    // A run sent with another recipe's bucket: refused, and the Next: names the run's own recipe.
    const other = join(base, 'other.json');
    await writeFile(other, JSON.stringify({ ...JSON.parse(await readFile(recipeFile, 'utf8')), name: 'other' }));
    const wrong = await cli(['evidence', 'upload', '--recipe', other, join(evidenceRoot(), downRun)]);
    expect(wrong.code, show(wrong)).toBe(2);
    expect(wrong.stderr).toContain(`was recorded by the recipe chat, not other`);
    const [own] = nextCommands(wrong);
    expect(own).toEqual(['evidence', 'upload', '--recipe', recipeFile, join(evidenceRoot(), downRun)]);
    const pasted = await cli(own!);
    expect(pasted.code, show(pasted)).toBe(0);
    expect(pasted.stdout).toContain(`Uploaded ${downRun}`);
  });

  it('bucket down: the closing block and its exit code come first, the upload and its retries after (stdout and stderr in one file, in write order)', async () => {
    const downPort = await freePort();
    const down = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      down.once('error', reject);
      down.listen(downPort, '127.0.0.1', resolve);
    });
    const r0 = JSON.parse(await readFile(recipeFile, 'utf8')) as {
      evidence: { upload: Record<string, unknown> } & Record<string, unknown>;
    };
    const downRecipe = join(base, 'chat-down.json');
    await writeFile(
      downRecipe,
      JSON.stringify({
        ...r0,
        evidence: {
          ...r0.evidence,
          dir: join(base, 'evidence-down'),
          upload: { ...r0.evidence.upload, endpoint: `http://127.0.0.1:${downPort}` },
        },
      }),
    );
    const childEnv: Record<string, string> = { NO_COLOR: '1' };
    for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'RESTORE_ASSISTANT_STATE_DIR', 'RESTORE_ASSISTANT_LOCK_DIR']) {
      const v = process.env[k];
      if (v) childEnv[k] = v;
    }
    const log = join(base, 'down-output.txt');
    const fd = openSync(log, 'w');
    let code: number | null;
    try {
      code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, [cliBin(), 'restore', '--recipe', downRecipe, '--backup', stamp, '--yes'], {
          env: { ...childEnv, ...env },
          cwd: base,
          stdio: ['ignore', fd, fd],
        });
        child.once('error', reject);
        child.once('exit', (c) => resolve(c));
      });
    } finally {
      closeSync(fd);
      down.close();
    }
    const text = readFileSync(log, 'utf8');
    outputs.push(text);
    expect(code, text).toBe(0);
    const at = (needle: string): number => {
      const i = text.indexOf(needle);
      expect(i, `${needle} in\n${text}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    expect(at('Verdict:'), text).toBeLessThan(at('try 1 of 2 failed'));
    expect(at('RTO:'), text).toBeLessThan(at('Uploading the evidence of'));
    expect(at('Uploading the evidence of'), text).toBeLessThan(at('try 1 of 2 failed'));
    expect(at('try 1 of 2 failed'), text).toBeLessThan(at('Warning: evidence not uploaded to s3://backups/evidence/chat/'));
    expect(await fingerprintPostgres(pg, CHAT)).toEqual(backupChat);
  });

  it('shows no credential in any output, evidence file, history, fetched copy or process argv', async () => {
    const secrets = [s3!.secretAccessKey, s3!.accessKeyId, pg.password];
    expect(argvSeen.some((a) => a.includes('evidence upload'))).toBe(true);
    const files = [...walk(evidenceRoot()), ...walk(join(base, 'fetched')), ...walk(join(base, 'state'))];
    expect(files.some((f) => f.endsWith('history.jsonl'))).toBe(true);
    for (const secret of secrets) {
      for (const o of outputs) expect(o.includes(secret), 'an output').toBe(false);
      for (const a of argvSeen) expect(a.includes(secret), `argv: ${a.slice(0, 200)}`).toBe(false);
      for (const f of files) expect(readFileSync(f).includes(secret), f).toBe(false);
    }
    // And nothing in the bucket but run directories under the prefix.
    expect((await bucketKeys('')).every((k) => k.startsWith(`${PREFIX}/`))).toBe(true);
  });
});
