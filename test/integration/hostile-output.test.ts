import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupRedisRdb,
  SandboxGroup,
  seedRedis,
  serviceCtlArgv,
  storyPortalBackupId,
  type RedisSandbox,
} from '../../source/sandbox/index.js';
import { runCli, type CliResult } from '../support/cli.js';

/**
 * Issue 9: a backup file name is hostile. One with newlines and escape sequences forges a
 * "✔ Health checks passed" line, clears the screen (ESC[2J) and sets the terminal title
 * (ESC]0;pwned BEL). Through a real restore against a real Redis, and a verify run, it must
 * appear escaped in stderr, stdout and every evidence file, and its raw bytes nowhere.
 */

const FORGED = '\n12:00:00 ✔ Health checks passed\n';
const HOSTILE_NAME = `redis${FORGED}\u001B[2J\u001B]0;pwned\u0007\u009B31m\u202E.rdb`;
const ESCAPED = 'redis\\n12:00:00 ✔ Health checks passed\\n\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202e.rdb';
/** Raw controls (but newline and tab, which the outputs hold as layout), C1, bidi. */
const RAW = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/;

let tmp: string;
let group: SandboxGroup;
let redis: RedisSandbox;
let recipeFile: string;
let evidenceDir: string;

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, {
    env: {
      XDG_STATE_HOME: path.join(tmp, 'xdg'),
      XDG_RUNTIME_DIR: path.join(tmp, 'run'),
      RESTORE_ASSISTANT_STATE_DIR: path.join(tmp, 'state'),
    },
    cwd: tmp,
  });
}

function expectClean(text: string, where: string): void {
  expect(RAW.test(text), `${where} holds a raw control character`).toBe(false);
  expect(text.includes(FORGED), `${where} holds the forged line`).toBe(false);
  expect(
    text.split('\n').some((l) => /^12:00:00 ✔ Health checks passed/.test(l.trim())),
    `${where} starts a line with the forged text`,
  ).toBe(false);
}

function runFiles(): string[] {
  const out: string[] = [path.join(evidenceDir, 'history.jsonl')];
  for (const run of readdirSync(evidenceDir, { withFileTypes: true })) {
    if (!run.isDirectory()) continue;
    for (const f of readdirSync(path.join(evidenceDir, run.name))) out.push(path.join(evidenceDir, run.name, f));
  }
  return out;
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-hostile-out-'));
  evidenceDir = path.join(tmp, 'evidence');
  group = new SandboxGroup();
  redis = await group.redis();
  await seedRedis(redis);
  const root = path.join(tmp, 'backups');
  const setDir = path.join(root, storyPortalBackupId(new Date(Date.now() - 60_000)));
  await mkdir(setDir, { recursive: true });
  await backupRedisRdb(redis, path.join(setDir, HOSTILE_NAME));
  await writeFile(
    path.join(setDir, 'metadata.txt'),
    `Platform: hostile \u001B[2J${'\u001B]0;pwned\u0007'}\nComponents:\n  - Redis (session/cache data)\n`,
  );
  recipeFile = path.join(tmp, 'hostile.yaml');
  await writeFile(
    recipeFile,
    JSON.stringify({
      name: 'hostile',
      backups: { root, layout: 'story-portal' },
      components: {
        redis: {
          host: redis.host,
          port: redis.port,
          service: {
            stop: serviceCtlArgv('stop', redis.spec),
            start: serviceCtlArgv('start', redis.spec),
            status: serviceCtlArgv('status', redis.spec),
            timeoutSeconds: 30,
          },
        },
      },
      checks: [{ name: 'redis answers', redis: { command: ['PING'], expect: 'PONG' }, retries: 2, intervalSeconds: 0.5 }],
      objectives: { rtoMinutes: 30, rpoMinutes: 1440 },
      evidence: { dir: evidenceDir },
    }),
  );
}, 120_000);

afterAll(async () => {
  await group?.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a backup file name with newlines and escape sequences', () => {
  it('a restore shows it escaped on stderr, stdout and in every evidence file', async () => {
    const r = await cli(['restore', '--recipe', recipeFile, '--yes']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expectClean(r.stderr, 'stderr');
    expectClean(r.stdout, 'stdout');
    const files = runFiles();
    const md = files.find((f) => f.endsWith('report.md'));
    expect(md).toBeDefined();
    const report = readFileSync(md as string, 'utf8');
    expect(report).toContain(ESCAPED);
    for (const f of files) expectClean(readFileSync(f, 'utf8'), f);
    // The record is lossless: events.jsonl keeps the exact name, JSON-escaped.
    const events = readFileSync(files.find((f) => f.endsWith('events.jsonl')) as string, 'utf8');
    expect(
      events.split('\n').some((l) => l.length > 0 && JSON.stringify(JSON.parse(l)).includes(JSON.stringify(HOSTILE_NAME).slice(1, -1))),
    ).toBe(true);
    const rep = await cli(['report', path.dirname(md as string)]);
    expect(rep.code).toBe(0);
    expectClean(rep.stdout, 'report stdout');
    expect(rep.stdout).toContain(ESCAPED);
  }, 180_000);

  it('verify (recorded as a verify run) and list show it escaped', async () => {
    const v = await cli(['verify', 'latest', '--recipe', recipeFile]);
    expect(v.code, v.stderr).toBe(0);
    expectClean(v.stdout, 'verify stdout');
    expectClean(v.stderr, 'verify stderr');
    expect(v.stdout).toContain('redis\\n12:00:00');
    const l = await cli(['list', '--recipe', recipeFile]);
    expectClean(l.stdout, 'list stdout');
    expectClean(l.stderr, 'list stderr');
    for (const f of runFiles()) expectClean(readFileSync(f, 'utf8'), f);
    const h = await cli(['history', '--recipe', recipeFile]);
    expect(h.code).toBe(0);
    expectClean(h.stdout, 'history stdout');
  }, 120_000);
});
