import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../source/exit-codes.js';
import { cliBin } from '../support/cli.js';

/**
 * The shipped CLI is a bundle with code splitting (scripts/build.ts): the AWS SDK sits in chunks
 * of its own that only off-site commands load. This runs the built CLI (test/global-setup.ts) with
 * a module-resolution hook that records every file the ESM loader resolves, for commands on a
 * local backup root, and checks that none of the chunks esbuild's metafile says hold the AWS SDK
 * (@aws-sdk/*, @smithy/*) is among them. A positive control loads an SDK chunk with the same hook.
 */

let tmp: string;
let root: string;
let register: string;
let sdkChunks: Set<string>;

const dist = (): string => path.dirname(cliBin());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  loaded: string[];
}

/** `node --import <recording hook> <args>`; returns the files (absolute paths) it resolved. */
async function recorded(args: string[], label: string): Promise<Run> {
  const log = path.join(tmp, `${label}.loaded`);
  await writeFile(log, '');
  const env: Record<string, string> = {
    NO_COLOR: '1',
    HOME: tmp,
    RESTORE_ASSISTANT_STATE_DIR: path.join(tmp, 'state'),
    RA_TEST_LOADED: log,
  };
  if (process.env['PATH']) env['PATH'] = process.env['PATH'];
  const { code, stdout, stderr } = await new Promise<Omit<Run, 'loaded'>>((resolve) => {
    execFile(process.execPath, ['--import', register, ...args], { env, cwd: tmp, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
  const loaded = (await readFile(log, 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith('file:'))
    .map((u) => new URL(u).pathname);
  return { code, stdout, stderr, loaded };
}

function sdkLoaded(run: Run): string[] {
  return run.loaded.filter((f) => path.dirname(f) === dist() && sdkChunks.has(path.basename(f)));
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ra-bundle-'));
  // The hook runs in the loader's own thread; it appends each resolved URL to $RA_TEST_LOADED.
  await writeFile(
    path.join(tmp, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (process.env.RA_TEST_LOADED) appendFileSync(process.env.RA_TEST_LOADED, r.url + '\\n');
  return r;
}
`,
  );
  await writeFile(
    path.join(tmp, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(path.join(tmp, 'hooks.mjs')).href)});\n`,
  );
  register = pathToFileURL(path.join(tmp, 'register.mjs')).href;

  const meta = JSON.parse(await readFile(path.join(path.dirname(dist()), 'build-meta.json'), 'utf8')) as Metafile;
  sdkChunks = new Set(
    Object.entries(meta.outputs)
      .filter(([, o]) => Object.keys(o.inputs).some((i) => /(^|\/)node_modules\/(@aws-sdk|@smithy)\//.test(i)))
      .map(([file]) => path.basename(file)),
  );

  // A local story-portal-shaped root with one small set (its contents need not restore).
  root = path.join(tmp, 'backups');
  const set = path.join(root, '2026-01-18_01-45-13');
  await mkdir(set, { recursive: true });
  await writeFile(path.join(set, 'postgres.sql.gz'), gzipSync('-- PostgreSQL database dump\nSELECT 1;\n'));
  await writeFile(path.join(set, 'redis.rdb'), 'REDIS0010');
  await writeFile(path.join(set, 'metadata.txt'), 'Backup Date: 2026-01-18_01-45-13\nComponents:\n  - PostgreSQL (app)\n  - Redis\n');
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the shipped bundle loads the AWS SDK only for off-site sets', () => {
  it('the build put the AWS SDK in chunks of its own, and the hook sees them when they load (positive control)', async () => {
    expect(sdkChunks.size).toBeGreaterThan(0);
    const [chunk] = [...sdkChunks];
    const run = await recorded(
      ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(path.join(dist(), chunk!)).href)})`],
      'control',
    );
    expect(run.stderr).toBe('');
    expect(sdkLoaded(run).length).toBeGreaterThan(0);
  });

  it.each([
    ['--version', ['--version']],
    ['list of a local root', ['list', '--root', 'ROOT', '--json']],
    ['verify of a local set', ['verify', 'latest', '--root', 'ROOT']],
  ])('%s: no AWS SDK chunk is loaded', async (label, args) => {
    const run = await recorded([cliBin(), ...args.map((a) => (a === 'ROOT' ? root : a))], label.replace(/\W+/g, '-'));
    // It ran (the bundle's own chunks were loaded through the hook) and did not crash.
    expect(run.loaded).toContain(cliBin());
    expect(run.code, run.stderr).not.toBe(ExitCode.internal);
    expect(run.code, run.stderr).not.toBeNull();
    if (label !== '--version') expect(run.loaded.filter((f) => path.dirname(f) === dist()).length).toBeGreaterThan(1);
    expect(sdkLoaded(run), `AWS SDK chunks loaded by ${args.join(' ')}`).toEqual([]);
  });
});
