import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BackupComponent } from '../../source/catalog/types.js';
import { ComponentRun, streamPass } from '../../source/catalog/verify-common.js';
import { verifyPlain } from '../../source/catalog/verify-postgres.js';
import { verifyPrometheus } from '../../source/catalog/verify-prometheus.js';
import { verifyRedis } from '../../source/catalog/verify-redis.js';

/**
 * A verification aborted while it is between two reads (the guide's SIGTERM or Esc while it
 * verifies: the abort lands while a verifier awaits open/stat/readEdges) rejects with the abort and
 * leaves no stray error behind. On the old code the read stream, created with the already-aborted
 * signal, emitted its AbortError again after the read loop had thrown it, with no listener left:
 * an uncaught exception that killed the guide with exit 1 before it released its locks (CI 21:15).
 * Deterministic: the signal is aborted before the read stream exists, every time.
 */

let dir: string;
const uncaught: unknown[] = [];
const onUncaught = (error: unknown): void => {
  uncaught.push(error);
};

beforeAll(() => {
  process.on('uncaughtException', onUncaught);
});
afterAll(() => {
  process.off('uncaughtException', onUncaught);
});
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'verify-abort-'));
  uncaught.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The stray 'error' came one event-loop turn after the rejection: give it several. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
}

function aborted(): AbortSignal {
  const ac = new AbortController();
  ac.abort(new Error('SIGTERM'));
  return ac.signal;
}

async function file(name: string, data: Buffer | string): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, data);
  return p;
}

function component(kind: BackupComponent['kind'], format: BackupComponent['format'], p: string, size: number): BackupComponent {
  return { kind, format, path: p, size, checksum: 'absent' };
}

const DUMP = '-- PostgreSQL database dump\n\nCREATE TABLE t (a int);\n\n-- PostgreSQL database dump complete\n\n';

describe('streamPass: an abort before or during the read', () => {
  it('a signal aborted before the call: rejects with it, no stray error', async () => {
    const p = await file('a.bin', Buffer.alloc(300_000, 7));
    await expect(streamPass(p, { hash: true, gunzip: false, signal: aborted() })).rejects.toThrow('SIGTERM');
    await settle();
    expect(uncaught).toEqual([]);
  });

  it('aborted while the file is being opened (the abort lands in an await): rejects, no stray error', async () => {
    const p = await file('b.bin', Buffer.alloc(300_000, 7));
    const ac = new AbortController();
    const pass = streamPass(p, { hash: true, gunzip: false, signal: ac.signal });
    // streamPass is now awaiting open(): the abort arrives before the read stream exists.
    ac.abort(new Error('SIGTERM'));
    await expect(pass).rejects.toThrow();
    await settle();
    expect(uncaught).toEqual([]);
  });

  it('aborted mid-read (from the progress callback), through gunzip and a consumer: rejects once, no stray error', async () => {
    const p = await file('c.sql.gz', gzipSync(Buffer.alloc(4 * 1024 * 1024, 'x')));
    const ac = new AbortController();
    const pass = streamPass(p, {
      hash: true,
      gunzip: true,
      onBytes: () => ac.abort(new Error('SIGTERM')),
      signal: ac.signal,
    });
    await expect(pass).rejects.toThrow();
    await settle();
    expect(uncaught).toEqual([]);
  });

  it('a signal that never aborts: reads the whole file as before', async () => {
    const p = await file('d.bin', Buffer.alloc(300_000, 7));
    const r = await streamPass(p, { hash: true, gunzip: false, signal: new AbortController().signal });
    expect(r.bytes).toBe(300_000);
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.identity).toBeDefined();
  });
});

describe('each deep verifier aborted after its header read, before its whole-file pass', () => {
  it('plain .sql.gz (PostgreSQL)', async () => {
    const data = gzipSync(DUMP);
    const p = await file('postgres.sql.gz', data);
    const cr = new ComponentRun(component('postgres', 'pg-plain-gz', p, data.length));
    await expect(verifyPlain(cr, { depth: 'deep', signal: aborted() }, true)).rejects.toThrow('SIGTERM');
    await settle();
    expect(uncaught).toEqual([]);
  });

  it('Prometheus .tar.gz (readEdges, then the gzip + tar pass)', async () => {
    const data = gzipSync(Buffer.alloc(10 * 512));
    const p = await file('prometheus.tar.gz', data);
    const cr = new ComponentRun(component('prometheus', 'prometheus-tar-gz', p, data.length));
    await expect(verifyPrometheus(cr, { depth: 'deep', signal: aborted() })).rejects.toThrow('SIGTERM');
    await settle();
    expect(uncaught).toEqual([]);
  });

  it('Redis RDB (readEdges, then the hash pass)', async () => {
    const data = Buffer.concat([Buffer.from('REDIS0011'), Buffer.alloc(64), Buffer.from([0xff]), Buffer.alloc(8)]);
    const p = await file('dump.rdb', data);
    const cr = new ComponentRun(component('redis', 'redis-rdb', p, data.length));
    await expect(verifyRedis(cr, { depth: 'deep', signal: aborted() })).rejects.toThrow('SIGTERM');
    await settle();
    expect(uncaught).toEqual([]);
  });
});
