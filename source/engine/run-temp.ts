import { makePrivateTempDir } from '../exec/safe-fs.js';
import type { EngineEventBody } from './events.js';
import { decodeIdentity, describeIdentity, encodeIdentity, pathIdentity, removeIfOwn, type PathIdentity } from './path-identity.js';

/**
 * The private temp dirs a run makes while it works (a copy's staging `.X.restore-*`, an archive's
 * `.X.extract-*`, the parallel plain restore's `restore-assistant-split-*`), journaled by identity
 * (docs/architecture.md, "The restore journal and recovery"): each one is a run fact
 * `run-temp-dir:<path>` holding its identity, written the moment it exists; its removal is a fact
 * too (the same name, empty). A run killed with SIGKILL leaves the ones still recorded, and
 * `recover` removes exactly those, by identity (removeIfOwn: a directory that is not the one the
 * run made is left alone and said). The next restore's preflight lists them (read-only).
 *
 * The window that cannot be closed: between mkdtemp(2) and the journal line (microseconds) the dir
 * exists unrecorded; a kill there leaves an empty 0700 dir that nothing will name.
 */

export const RUN_TEMP_DIR_FACT = 'run-temp-dir:';

type Emit = (body: EngineEventBody) => void;

function record(emit: Emit, stepId: string | undefined, dir: string, value: string, message: string): void {
  emit({ type: 'log', ...(stepId ? { stepId } : {}), level: 'info', message, fact: { name: `${RUN_TEMP_DIR_FACT}${dir}`, value } });
}

/** makePrivateTempDir, and its identity journaled at once. */
export async function makeRunTempDir(emit: Emit, stepId: string | undefined, parent: string, prefix: string): Promise<string> {
  const dir = await makePrivateTempDir(parent, prefix);
  const id = await pathIdentity(dir);
  if (id) record(emit, stepId, dir, encodeIdentity(id), `made the private temp dir ${dir} (recorded: ${describeIdentity(id)})`);
  return dir;
}

/** The temp dir is gone (removed, or renamed into place as the result): nothing to clean up after a crash. */
export function forgetRunTempDir(emit: Emit, stepId: string | undefined, dir: string): void {
  record(emit, stepId, dir, '', `the private temp dir ${dir} is gone`);
}

export interface RunTempDir {
  path: string;
  identity: PathIdentity;
}

/** The temp dirs the run facts still record (made, never forgotten). */
export function recordedRunTempDirs(facts: ReadonlyMap<string, string>): RunTempDir[] {
  const out: RunTempDir[] = [];
  for (const [name, value] of facts) {
    if (!name.startsWith(RUN_TEMP_DIR_FACT)) continue;
    const identity = decodeIdentity(value);
    if (identity && identity.type === 'dir') out.push({ path: identity.realPath, identity });
  }
  return out;
}

/** Of the recorded temp dirs, those still there and still the same directory (read-only). */
export async function leftoverRunTempDirs(facts: ReadonlyMap<string, string>): Promise<RunTempDir[]> {
  const left: RunTempDir[] = [];
  for (const d of recordedRunTempDirs(facts)) {
    const now = await pathIdentity(d.path).catch(() => undefined);
    if (now && now.dev === d.identity.dev && now.ino === d.identity.ino && now.type === 'dir') left.push(d);
  }
  return left;
}

/**
 * Remove the temp dirs a dead run left (by identity). One line a dir, for the operator and the
 * evidence: removed, already gone, or left alone (not the directory the run made, or not removable).
 */
export async function removeRunTempDirs(facts: ReadonlyMap<string, string>): Promise<{ removed: string[]; lines: string[] }> {
  const removed: string[] = [];
  const lines: string[] = [];
  for (const d of recordedRunTempDirs(facts)) {
    try {
      const r = await removeIfOwn(d.path, d.identity);
      if (r === 'removed') {
        removed.push(d.path);
        lines.push(`removed the dead run's private temp dir ${d.path} (by identity: ${describeIdentity(d.identity)})`);
      }
    } catch (error) {
      lines.push(`left the temp dir ${d.path} alone: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { removed, lines };
}
