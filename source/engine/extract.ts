import { createHash } from 'node:crypto';
import { chmod, lstat, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, Unpack, type ReadEntry } from 'tar';
import { makePrivateTempDir, stagingParent } from '../exec/safe-fs.js';
import { fsCause } from '../exec/diagnose.js';

/**
 * Safe extraction of a .tar.gz into a directory that must not exist yet. The archive is opened
 * once; both passes read that descriptor (a swapped path cannot change what is extracted). The
 * first pass lists it and refuses it when any entry could write outside the destination (absolute
 * paths, `..`, links pointing out, hard links to outside, device files, FIFOs). The second pass
 * extracts into a temp dir the tool creates itself (mkdtemp, mode 0700, in the nearest ancestor
 * of `dest` that only root can write, see stagingParent), judging
 * every entry again, and hashes the bytes it consumes; only when they are the expected bytes is
 * the temp dir renamed into place, so `dest` is either complete or absent.
 * GNU tar's `./`-prefixed entries (tar czf - -C dir .) are fine.
 */

export class UnsafeArchiveError extends Error {
  constructor(
    readonly archive: string,
    readonly problems: string[],
  ) {
    super(
      `refused to extract ${archive}: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`,
    );
    this.name = 'UnsafeArchiveError';
  }
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

function normalizeEntry(p: string): string {
  return path.posix.normalize(p.replace(/\\/g, '/'));
}

function escapes(p: string): boolean {
  return p === '..' || p.startsWith('../') || path.posix.isAbsolute(p);
}

/** Why one entry is unsafe to extract (undefined when it is fine). */
function entryProblem(entry: ReadEntry): string | undefined {
  const raw = entry.path;
  if (/^[A-Za-z]:|^\//.test(raw) || raw.startsWith('\\')) return `absolute path: ${raw}`;
  if (raw.split(/[\\/]/).includes('..')) return `path with "..": ${raw}`;
  if (!ALLOWED_TYPES.has(entry.type)) return `${entry.type} entry: ${raw}`;
  const norm = normalizeEntry(raw);
  const target = entry.linkpath ?? '';
  if (entry.type === 'SymbolicLink') {
    if (path.posix.isAbsolute(target) || escapes(path.posix.normalize(path.posix.join(path.posix.dirname(norm), target)))) {
      return `symlink pointing outside the archive: ${raw} -> ${target}`;
    }
  } else if (entry.type === 'Link') {
    if (path.posix.isAbsolute(target) || escapes(normalizeEntry(target))) return `hard link to outside the archive: ${raw} -> ${target}`;
  }
  return undefined;
}

/** Hashes what passes through (the bytes the extraction consumed). */
class HashTap extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Problems that make the archive unsafe to extract (empty when it is safe). Reads the whole archive from `fh`. */
export async function inspectTar(fh: FileHandle): Promise<{ entries: number; problems: string[] }> {
  const problems: string[] = [];
  let entries = 0;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      entries++;
      // Keep the raw names: we judge them, tar must not quietly rewrite them for us.
      const problem = entryProblem(entry);
      if (problem) problems.push(problem);
      entry.resume();
    },
  });
  await pipeline(fh.createReadStream({ start: 0, autoClose: false }), parser as unknown as NodeJS.WritableStream);
  if (entries === 0) problems.push('the archive has no entries');
  return { entries, problems };
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** The archive's bytes were not the expected ones (it changed after verification). */
export class ArchiveChangedError extends Error {
  constructor(
    readonly archive: string,
    readonly consumedSha256: string,
    readonly expectedSha256: string,
    readonly bytes: number,
  ) {
    super(
      `the bytes read from ${archive} (sha256 ${consumedSha256.slice(0, 16)}…) are not the verified bytes (sha256 ${expectedSha256.slice(0, 16)}…): it changed after verification; nothing was put in place`,
    );
    this.name = 'ArchiveChangedError';
  }
}

/**
 * Extract `fh` (an open .tar.gz, `archive` is its name for messages) into `dest`. With
 * `expectedSha256`, the consumed bytes must hash to it, else nothing is put in place.
 * Returns the entry count and the sha256 of the bytes consumed.
 */
export async function safeExtractTarGz(
  archive: string,
  fh: FileHandle,
  dest: string,
  opts: {
    signal?: AbortSignal;
    expectedSha256?: string;
    /** Test hook: called with the staging dir before extraction. */ onStaging?: (dir: string) => void;
    /** Called with the finished staging dir just before it is renamed to `dest` (record its identity first). */
    beforePlace?: (staged: string) => Promise<void>;
    /** How the staging dir is made and said gone (engine/run-temp.ts: journaled by identity); default makePrivateTempDir. */
    tempDirs?: { make: (parent: string, prefix: string) => Promise<string>; gone: (dir: string) => void };
  } = {},
): Promise<{ entries: number; sha256: string; bytes: number }> {
  if (await exists(dest)) throw new Error(`${dest} already exists: extraction needs a fresh directory (move the old one aside first)`);
  const { entries, problems } = await inspectTar(fh);
  if (problems.length > 0) throw new UnsafeArchiveError(archive, problems);
  opts.signal?.throwIfAborted();
  // Staged where only root can write (tar extracts by path; see stagingParent), then renamed.
  const tmp = await (opts.tempDirs?.make ?? makePrivateTempDir)((await stagingParent(dest)).dir, `.${path.basename(dest)}.extract-`);
  opts.onStaging?.(tmp);
  let unpack: Unpack | undefined;
  try {
    const late: string[] = [];
    unpack = new Unpack({
      cwd: tmp,
      strict: true,
      preservePaths: false,
      filter: (_p, entry) => {
        // Judged again: this pass reads the bytes once more and must not trust the first one.
        const problem = 'type' in entry ? entryProblem(entry as ReadEntry) : undefined;
        if (problem) late.push(problem);
        return problem === undefined;
      },
    });
    const tap = new HashTap();
    await pipeline(
      fh.createReadStream({ start: 0, autoClose: false }),
      tap,
      unpack as unknown as NodeJS.WritableStream,
      ...(opts.signal ? [{ signal: opts.signal }] : []),
    );
    opts.signal?.throwIfAborted();
    if (late.length > 0) throw new UnsafeArchiveError(archive, late);
    const sha256 = tap.digest();
    if (opts.expectedSha256 && sha256 !== opts.expectedSha256)
      throw new ArchiveChangedError(archive, sha256, opts.expectedSha256, tap.bytes);
    await chmod(tmp, 0o755);
    await opts.beforePlace?.(tmp);
    // rename(2) never follows a symlink at `dest` (a planted one makes it fail: ENOTDIR).
    await rename(tmp, dest);
    opts.tempDirs?.gone(tmp);
    return { entries, sha256, bytes: tap.bytes };
  } catch (error) {
    // tar may still be writing (a full disk fails one write, not the others): wait for it to stop
    // before removing the staging dir, or rm races it (ENOTEMPTY) and the partial data stays.
    if (unpack) await settled(unpack);
    const left = await removeStaging(tmp);
    if (!left) opts.tempDirs?.gone(tmp);
    const cause = fsCause(error, dest);
    if (!cause && !left) throw error;
    const message = `${cause ? `${cause}: ` : ''}${(error as Error).message}; ${left ? `the partial extraction could NOT be removed: ${tmp} (${left}) — remove it by hand` : `the partial extraction (${tmp}) was removed`}`;
    const wrapped = new Error(message, { cause: error }) as NodeJS.ErrnoException;
    const code = (error as NodeJS.ErrnoException).code;
    if (code) wrapped.code = code;
    throw wrapped;
  }
}

/** Resolves once a failed Unpack has stopped writing (close/finish/end), or after 1 s (a failed Unpack may never end; removeStaging retries). */
function settled(stream: Unpack): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, 1000);
    const s = stream as unknown as NodeJS.EventEmitter & { writable?: boolean; emittedEnd?: boolean };
    if (s.emittedEnd) return done();
    for (const ev of ['close', 'finish', 'end']) s.once(ev, done);
    s.on('error', () => undefined);
  });
}

/** rm -r of the staging dir, retried while late writes land; the errno when it could not. */
async function removeStaging(dir: string): Promise<string | undefined> {
  let last: NodeJS.ErrnoException | undefined;
  for (let i = 0; i < 10; i++) {
    try {
      await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
      if (!(await exists(dir))) return undefined;
    } catch (error) {
      last = error as NodeJS.ErrnoException;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return last?.code ?? 'still present';
}
