import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEventBody } from '../../source/engine/events.js';
import {
  forgetRunTempDir,
  leftoverRunTempDirs,
  makeRunTempDir,
  removeRunTempDirs,
  RUN_TEMP_DIR_FACT,
} from '../../source/engine/run-temp.js';

/** engine/run-temp.ts on real directories: what a run journals, and what recover removes (by identity). */

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'run-temp-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The facts as the journal folds them (state.ts: the last value of a name wins). */
function journal(): { emit: (e: EngineEventBody) => void; facts: Map<string, string> } {
  const facts = new Map<string, string>();
  return {
    facts,
    emit: (e) => {
      if (e.type === 'log' && e.fact) facts.set(e.fact.name, e.fact.value);
    },
  };
}

describe('run temp dirs', () => {
  it('a made dir is journaled by identity the moment it exists, and forgotten once gone', async () => {
    const j = journal();
    const made = await makeRunTempDir(j.emit, 'step', dir, '.x.restore-');
    expect(path.basename(made)).toMatch(/^\.x\.restore-/);
    expect(JSON.parse(j.facts.get(`${RUN_TEMP_DIR_FACT}${made}`) ?? '{}')).toMatchObject({ type: 'dir', realPath: made });
    expect((await leftoverRunTempDirs(j.facts)).map((d) => d.path)).toEqual([made]);
    await rm(made, { recursive: true });
    forgetRunTempDir(j.emit, 'step', made);
    expect(await leftoverRunTempDirs(j.facts)).toEqual([]);
    expect((await removeRunTempDirs(j.facts)).lines).toEqual([]);
  });

  it("recover removes what a killed run left (with what is in it), and leaves alone a dir at that name that is not the run's", async () => {
    const j = journal();
    const left = await makeRunTempDir(j.emit, 'a', dir, '.db.restore-');
    await writeFile(path.join(left, 'dump.rdb'), 'partial');
    const swapped = await makeRunTempDir(j.emit, 'b', dir, '.db.extract-');
    // Someone replaced the run's dir with another one at the same name.
    await rename(swapped, `${swapped}.moved`);
    await mkdir(swapped);
    await writeFile(path.join(swapped, 'theirs'), 'keep');

    expect((await leftoverRunTempDirs(j.facts)).map((d) => d.path)).toEqual([left]);
    const r = await removeRunTempDirs(j.facts);
    expect(r.removed).toEqual([left]);
    expect(existsSync(left)).toBe(false);
    expect(existsSync(path.join(swapped, 'theirs'))).toBe(true);
    expect(r.lines[0]).toContain(`removed the dead run's private temp dir ${left}`);
    expect(r.lines[1]).toMatch(
      new RegExp(`^left the temp dir ${swapped.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} alone: .*not what this run put there`),
    );
    // Idempotent: a second recover finds nothing to do.
    expect((await removeRunTempDirs(j.facts)).removed).toEqual([]);
  });
});
