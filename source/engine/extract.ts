import { chmod, lstat, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { list, extract } from 'tar';

/**
 * Safe extraction of a .tar.gz into a directory that must not exist yet. The archive is listed
 * first and refused when any entry could write outside the destination (absolute paths, `..`,
 * links pointing out, hard links to outside, device files, FIFOs). Only then is it extracted into a
 * fresh temp dir beside `dest` and renamed into place, so `dest` is either complete or absent.
 * GNU tar's `./`-prefixed entries (tar czf - -C dir .) are fine.
 */

export class UnsafeArchiveError extends Error {
  constructor(
    readonly archive: string,
    readonly problems: string[],
  ) {
    super(`refused to extract ${archive}: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`);
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

/** Problems that make the archive unsafe to extract (empty when it is safe). Reads the whole archive. */
export async function inspectTar(archive: string): Promise<{ entries: number; problems: string[] }> {
  const problems: string[] = [];
  let entries = 0;
  await list({
    file: archive,
    // Keep the raw names: we judge them, tar must not quietly rewrite them for us.
    preservePaths: true,
    strict: true,
    onReadEntry: (entry) => {
      entries++;
      const raw = entry.path;
      if (/^[A-Za-z]:|^\//.test(raw) || raw.startsWith('\\')) {
        problems.push(`absolute path: ${raw}`);
        return;
      }
      if (raw.split(/[\\/]/).includes('..')) {
        problems.push(`path with "..": ${raw}`);
        return;
      }
      if (!ALLOWED_TYPES.has(entry.type)) {
        problems.push(`${entry.type} entry: ${raw}`);
        return;
      }
      const norm = normalizeEntry(raw);
      if (entry.type === 'SymbolicLink') {
        const target = entry.linkpath ?? '';
        if (path.posix.isAbsolute(target) || escapes(path.posix.normalize(path.posix.join(path.posix.dirname(norm), target)))) {
          problems.push(`symlink pointing outside the archive: ${raw} -> ${target}`);
        }
      } else if (entry.type === 'Link') {
        const target = entry.linkpath ?? '';
        if (path.posix.isAbsolute(target) || escapes(normalizeEntry(target))) problems.push(`hard link to outside the archive: ${raw} -> ${target}`);
      }
    },
  });
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

export async function safeExtractTarGz(archive: string, dest: string, signal?: AbortSignal): Promise<{ entries: number }> {
  if (await exists(dest)) throw new Error(`${dest} already exists: extraction needs a fresh directory (move the old one aside first)`);
  const { entries, problems } = await inspectTar(archive);
  if (problems.length > 0) throw new UnsafeArchiveError(archive, problems);
  signal?.throwIfAborted();
  const tmp = await mkdtemp(path.join(path.dirname(dest), `.${path.basename(dest)}.extract-`));
  try {
    await chmod(tmp, 0o755);
    await extract({ file: archive, cwd: tmp, strict: true, preservePaths: false });
    signal?.throwIfAborted();
    await rename(tmp, dest);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  return { entries };
}
