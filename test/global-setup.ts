import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { buildCli } from '../scripts/build.js';

/**
 * Builds the CLI once per test run into .test-build/ (git-ignored), so tests that run the real
 * binary test the current sources without each file compiling its own copy. Tests get the path
 * with `inject('cliBin')` (see test/support/cli.ts).
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  // One dir per run: several runs (developers, CI) may share the checkout.
  const out = path.join(repo, '.test-build', String(process.pid));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  copyFileSync(path.join(repo, 'package.json'), path.join(out, 'package.json'));
  symlinkSync(path.join(repo, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  // The shipped build (scripts/build.ts, as `npm run build`): the tests run what ships. One more
  // entry of the same bundle, dist/engine/lock.js, for test/unit/locks.test.ts (the lock module
  // run as another OS user in a child process).
  const built = await buildCli(path.join(out, 'dist'), { extraEntries: { 'engine/lock': 'source/engine/lock.ts' } });
  // Which sources and packages each chunk holds (test/integration/bundle.test.ts).
  writeFileSync(path.join(out, 'build-meta.json'), JSON.stringify(built.metafile));
  project.provide('cliBin', path.join(out, 'dist', 'bin.js'));
  // The seal-signing key (source/evidence/signing.ts) lives in the machine-wide state dir,
  // /var/lib/restore-assistant as root: tests keep theirs in the run's own dir. Workers and the
  // CLIs they start inherit it (test/support/cli.ts passes it on).
  process.env['RESTORE_ASSISTANT_STATE_DIR'] ??= path.join(out, 'state');
  // The machine-wide lock dir (/run/restore-assistant/locks) likewise: one per test run.
  process.env['RESTORE_ASSISTANT_LOCK_DIR'] ??= path.join(out, 'locks');
  return () => rmSync(out, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    cliBin: string;
  }
}
