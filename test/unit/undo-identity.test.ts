import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pasteableAction } from '../../source/actions/describe.js';
import type { PlannedAction } from '../../source/actions/types.js';
import { executeAction, withKnownFacts, type ActionContext } from '../../source/engine/actions.js';
import type { EngineEventBody } from '../../source/engine/events.js';
import { decodeIdentity } from '../../source/engine/path-identity.js';
import { createRedactor } from '../../source/exec/redact.js';

/**
 * Undo by identity for files and directories (issue 11): what a run creates or moves is recorded
 * (device, inode, real path) as a run fact; an undo that moves it back or removes it refuses
 * anything else at the name, and is idempotent. Real files in a temp dir.
 */

let dir: string;
let events: EngineEventBody[];
let facts: Map<string, string>;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'undo-identity-'));
  events = [];
  facts = new Map();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ctx(): ActionContext {
  return {
    stepId: 's1',
    emit: (e) => events.push(e),
    redact: createRedactor(),
    env: {},
    signal: new AbortController().signal,
    runCheck: async () => ({ ok: true, attempts: 1, detail: 'ok', durationMs: 1 }),
    facts,
  };
}

const run = (a: PlannedAction): Promise<string> => executeAction(a, ctx());

/** The Prometheus-style undo: restored dir away, previous back, restored removed. */
function putBack(data: string, aside: string, failed: string): PlannedAction[] {
  return [
    {
      type: 'move',
      from: data,
      to: failed,
      purpose: 'away',
      ifExists: true,
      expect: 'path.restored',
      doneIf: ['path.aside'],
      recordAs: 'path.failed',
    },
    { type: 'move', from: aside, to: data, purpose: 'back', ifExists: true, expect: 'path.aside' },
    { type: 'remove', paths: [{ path: failed, expect: 'path.failed' }], purpose: 'remove' },
  ];
}

describe('undo by identity (moves and removals)', () => {
  it('records what a move put aside and what a restore put in place, as journaled run facts', async () => {
    const data = path.join(dir, 'data');
    await mkdir(data);
    await writeFile(path.join(data, 'old'), 'old');
    await run({ type: 'move', from: data, to: `${data}.pre`, purpose: 'aside', recordAs: 'path.aside' });
    const id = decodeIdentity(facts.get('path.aside'));
    expect(id).toEqual(expect.objectContaining({ type: 'dir', realPath: path.join(await realDir(), 'data.pre') }));
    const fact = events.find((e) => e.type === 'log' && e.fact?.name === 'path.aside');
    expect(fact).toBeDefined();
  });

  it('rolls back by identity, and running the undo again is a no-op (idempotent), also after a kill half-way', async () => {
    const data = path.join(dir, 'data');
    const aside = `${data}.pre`;
    const failed = `${data}.failed`;
    await mkdir(data);
    await writeFile(path.join(data, 'old'), 'old');
    await run({ type: 'move', from: data, to: aside, purpose: 'aside', recordAs: 'path.aside' });
    await mkdir(data);
    await writeFile(path.join(data, 'new'), 'restored');
    await run({ type: 'record-identity', paths: [{ path: data, recordAs: 'path.restored' }], purpose: 'restored' });

    // Killed after the first two undo actions: the previous data is back, the restored one aside.
    const [away, back, remove] = putBack(data, aside, failed);
    await run(away!);
    await run(back!);
    expect(await readFile(path.join(data, 'old'), 'utf8')).toBe('old');
    // A recover runs the whole undo again: the previous data stays, the restored copy goes.
    for (const a of putBack(data, aside, failed)) await run(a);
    expect(await readFile(path.join(data, 'old'), 'utf8')).toBe('old');
    expect(existsSync(failed)).toBe(false);
    expect(existsSync(aside)).toBe(false);
    // And once more: nothing to do, nothing touched.
    for (const a of putBack(data, aside, failed)) await run(a);
    expect(readdirSync(data)).toEqual(['old']);
    void remove;
  });

  it('refuses to move back a planted replacement of the safety copy (nothing moved)', async () => {
    const data = path.join(dir, 'data');
    const aside = `${data}.pre`;
    await mkdir(data);
    await run({ type: 'move', from: data, to: aside, purpose: 'aside', recordAs: 'path.aside' });
    // Someone swaps the safety copy for another directory of the same name.
    await rename(aside, path.join(dir, 'elsewhere'));
    await mkdir(aside);
    await writeFile(path.join(aside, 'planted'), 'x');
    await expect(run({ type: 'move', from: aside, to: data, purpose: 'back', ifExists: true, expect: 'path.aside' })).rejects.toThrow(
      /refusing to move .*data\.pre.* is not what this run put there: it recorded a directory .*found a directory.*Nothing was moved/,
    );
    expect(existsSync(data)).toBe(false);
    expect(readdirSync(aside)).toEqual(['planted']);
  });

  it('refuses to remove a different directory at the restored name, and removes nothing', async () => {
    const restored = path.join(dir, 'appendonlydir');
    await mkdir(restored);
    await run({ type: 'record-identity', paths: [{ path: restored, recordAs: 'path.placed' }], purpose: 'placed' });
    // Replaced by another directory (the first is kept elsewhere, so the inode cannot be reused).
    await rename(restored, path.join(dir, 'ours-moved'));
    await mkdir(restored);
    await writeFile(path.join(restored, 'someone-elses'), 'keep me');
    const remove: PlannedAction = { type: 'remove', paths: [{ path: restored, expect: 'path.placed' }], purpose: 'remove' };
    await expect(run(remove)).rejects.toThrow(/is not what this run put there.*refusing to remove it \(left untouched\)/);
    expect(await readFile(path.join(restored, 'someone-elses'), 'utf8')).toBe('keep me');
    // Nothing of the private holding dir is left behind.
    expect(readdirSync(dir).sort()).toEqual(['appendonlydir', 'ours-moved']);
  });

  it('refuses to remove what it never recorded, and is fine when the path is already gone', async () => {
    const f = path.join(dir, 'dump.rdb');
    await writeFile(f, 'x');
    const remove: PlannedAction = { type: 'remove', paths: [{ path: f, expect: 'path.placed' }], purpose: 'remove' };
    await expect(run(remove)).rejects.toThrow(/did not create or move there \(it recorded nothing for that name\)/);
    expect(existsSync(f)).toBe(true);
    await run({ type: 'record-identity', paths: [{ path: f, recordAs: 'path.placed' }], purpose: 'placed' });
    expect(await run(remove)).toBe(`removed ${f}`);
    expect(await run(remove)).toBe('nothing to remove');
  });

  it('the pasteable form of a removal checks device:inode before rm, so pasted by hand it refuses a replacement too', async () => {
    const f = path.join(dir, 'dump.rdb');
    await writeFile(f, 'x');
    await run({ type: 'record-identity', paths: [{ path: f, recordAs: 'path.placed' }], purpose: 'placed' });
    const remove: PlannedAction = { type: 'remove', paths: [{ path: f, expect: 'path.placed' }], purpose: 'remove' };
    const replaced = path.join(dir, 'other');
    await writeFile(replaced, 'y');
    await rm(f);
    await rename(replaced, f);
    const line = pasteableAction(withKnownFacts(remove, facts), createRedactor());
    expect(() => execFileSync('sh', ['-c', line], { stdio: 'pipe' })).toThrow();
    expect(await readFile(f, 'utf8')).toBe('y');
    // The one the run recorded is removed.
    facts.clear();
    await run({ type: 'record-identity', paths: [{ path: f, recordAs: 'path.placed' }], purpose: 'placed' });
    execFileSync('sh', ['-c', pasteableAction(withKnownFacts(remove, facts), createRedactor())]);
    expect(existsSync(f)).toBe(false);
  });
});

describe('recorded before it is put there (a SIGKILL between the act and the record)', () => {
  /** The events carrying the fact, each with whether `at` existed when it was emitted. */
  function watching(at: string): { ctx: ActionContext; seen: Array<{ fact: string; existed: boolean }> } {
    const seen: Array<{ fact: string; existed: boolean }> = [];
    const c = ctx();
    c.emit = (e) => {
      events.push(e);
      if (e.type === 'log' && e.fact) seen.push({ fact: e.fact.name, existed: existsSync(at) });
    };
    return { ctx: c, seen };
  }

  it('a copy, a move, an AOF install and an extraction journal the identity before the name appears, and it is what lands there', async () => {
    const src = path.join(dir, 'backup.rdb');
    await writeFile(src, 'REDIS0011 backup bytes');
    const cases: Array<{ at: string; action: PlannedAction }> = [];
    const copyTo = path.join(dir, 'dump.rdb');
    cases.push({ at: copyTo, action: { type: 'copy-file', from: src, to: copyTo, purpose: 'copy', recordAs: 'f.copy' } });
    const moved = path.join(dir, 'moved.rdb');
    cases.push({ at: moved, action: { type: 'move', from: copyTo, to: moved, purpose: 'aside', recordAs: 'f.move' } });
    const aof = path.join(dir, 'appendonlydir');
    cases.push({
      at: aof,
      action: {
        type: 'install-aof',
        from: src,
        dir: aof,
        base: 'appendonly.aof.1.base.rdb',
        manifest: 'appendonly.aof.manifest',
        purpose: 'aof',
        recordAs: 'f.aof',
      },
    });
    const tree = path.join(dir, 'tree');
    await mkdir(tree);
    await writeFile(path.join(tree, 'meta.json'), '{}');
    const tgz = path.join(dir, 'data.tar.gz');
    execFileSync('tar', ['-czf', tgz, '-C', tree, '.']);
    const dest = path.join(dir, 'data');
    cases.push({ at: dest, action: { type: 'extract-tar', archive: tgz, dest, purpose: 'extract', recordAs: 'f.tar' } });
    for (const { at, action } of cases) {
      const { ctx: c, seen } = watching(at);
      await executeAction(action, c);
      const name = (action as { recordAs: string }).recordAs;
      // The staging dirs are journaled too (engine/run-temp.ts): made, then said gone once removed.
      const temp = (f: { fact: string }): boolean => f.fact.startsWith('run-temp-dir:');
      expect(
        seen.filter((f) => !temp(f)),
        name,
      ).toEqual([{ fact: name, existed: false }]);
      for (const f of seen.filter(temp)) {
        const last = events.filter((e) => e.type === 'log' && e.fact?.name === f.fact).at(-1);
        expect(last?.type === 'log' ? last.fact?.value : undefined, `${name}: ${f.fact}`).toBe('');
      }
      const id = decodeIdentity(facts.get(name));
      const { pathIdentity } = await import('../../source/engine/path-identity.js');
      const now = await pathIdentity(at);
      expect(id && now && id.dev === now.dev && id.ino === now.ino && id.realPath === now.realPath, name).toBe(true);
    }
  });
});

describe('what the service this run started rewrote (record-identity, rewrittenOnly)', () => {
  const adopt = (p: string): PlannedAction => ({
    type: 'record-identity',
    paths: [{ path: p, recordAs: 'path.placed' }],
    purpose: 'adopt',
    rewrittenOnly: true,
  });
  const remove = (p: string): PlannedAction => ({
    type: 'remove',
    paths: [{ path: p, expect: 'path.placed', doneIf: ['path.aside'] }],
    purpose: 'remove',
  });

  it('adopts a regular file that replaced the one the run put there (Redis saving its RDB), and removes it', async () => {
    const f = path.join(dir, 'dump.rdb');
    await writeFile(f, 'restored');
    await run({ type: 'record-identity', paths: [{ path: f, recordAs: 'path.placed' }], purpose: 'placed' });
    await writeFile(`${f}.tmp`, 'saved by redis');
    await rename(`${f}.tmp`, f);
    await run(adopt(f));
    expect(await run(remove(f))).toBe(`removed ${f}`);
  });

  it('never adopts a directory at a file name, nor a name the run put nothing at: both are refused and kept', async () => {
    const f = path.join(dir, 'dump.rdb');
    await writeFile(f, 'restored');
    await run({ type: 'record-identity', paths: [{ path: f, recordAs: 'path.placed' }], purpose: 'placed' });
    await rename(f, path.join(dir, 'kept'));
    await mkdir(f);
    await run(adopt(f));
    await expect(run(remove(f))).rejects.toThrow(/not what this run put there/);
    expect(existsSync(f)).toBe(true);
    const aof = path.join(dir, 'appendonlydir');
    await mkdir(aof);
    facts.clear();
    await run(adopt(aof));
    await expect(run(remove(aof))).rejects.toThrow(/recorded nothing for that name/);
    expect(existsSync(aof)).toBe(true);
  });

  it('leaves the previous data alone when it is already back at the name (a rollback run again)', async () => {
    const f = path.join(dir, 'dump.rdb');
    await writeFile(f, 'previous');
    await run({ type: 'move', from: f, to: `${f}.pre`, purpose: 'aside', recordAs: 'path.aside' });
    await writeFile(f, 'restored');
    await run({ type: 'record-identity', paths: [{ path: f, recordAs: 'path.placed' }], purpose: 'placed' });
    await run(remove(f));
    await run({ type: 'move', from: `${f}.pre`, to: f, purpose: 'back', ifExists: true, expect: 'path.aside' });
    expect(await run(remove(f))).toBe('nothing to remove');
    expect(await readFile(f, 'utf8')).toBe('previous');
    // Pasted by hand, the same.
    execFileSync('sh', ['-c', pasteableAction(withKnownFacts(remove(f), facts), createRedactor())], { stdio: 'pipe' });
    expect(await readFile(f, 'utf8')).toBe('previous');
  });
});

async function realDir(): Promise<string> {
  const { realpath } = await import('node:fs/promises');
  return realpath(dir);
}
