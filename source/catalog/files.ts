import type { Dirent } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { assertRegularFile } from './checksums.js';
import type { ComponentEncryption, ComponentFormat, ComponentKind } from './types.js';

/**
 * Reading a backup root: directory entries, what kind of component a file is (by its name and its
 * first bytes), sizes. Every layout (layouts/) builds on these.
 */

export interface Entry {
  name: string;
  full: string;
  isDir: boolean;
  isFile: boolean;
}

export async function readEntries(dir: string): Promise<Entry[]> {
  const dirents: Dirent[] = await readdir(dir, { withFileTypes: true });
  const out: Entry[] = [];
  for (const d of dirents) {
    const full = path.join(dir, d.name);
    let isDir = d.isDirectory();
    let isFile = d.isFile();
    if (d.isSymbolicLink()) {
      try {
        const s = await stat(full);
        isDir = s.isDirectory();
        isFile = s.isFile();
      } catch {
        // a dangling link: neither
      }
    }
    out.push({ name: d.name, full, isDir, isFile });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function rootError(root: string, error: unknown): RestoreAssistantError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  const why =
    code === 'ENOENT'
      ? 'does not exist'
      : code === 'ENOTDIR'
        ? 'is not a directory'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read (permission denied)'
          : `cannot be read (${code})`;
  return new RestoreAssistantError(`Backup root ${root} ${why}.`, ExitCode.usage, {
    untouched: 'Nothing was touched.',
    next:
      code === 'EACCES' || code === 'EPERM'
        ? 'Run as a user that can read the backups (e.g. with sudo), or fix the permissions.'
        : 'Check the path (--root DIR, or backups.root in the recipe).',
  });
}

async function sniff(file: string, n = 8): Promise<Buffer> {
  await assertRegularFile(file);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A component name's encryption (`.gpg`, `.age`) and the name without it. */
export function encryptedName(name: string): { plain: string; encryption?: ComponentEncryption } {
  const lower = name.toLowerCase();
  if (lower.endsWith('.gpg')) return { plain: name.slice(0, -4), encryption: 'gpg' };
  if (lower.endsWith('.age')) return { plain: name.slice(0, -4), encryption: 'age' };
  return { plain: name };
}

/**
 * What kind of backup file a name is, or undefined. Reads at most a few bytes (to tell custom from plain).
 * An encrypted file (`<name>.gpg`, `<name>.age`) is classified by its plain name alone (its bytes
 * are ciphertext); the decrypted copy is classified again when it is staged (source/offsite/local.ts).
 */
export async function classifyPath(
  full: string,
  isDir: boolean,
  strictNames = false,
): Promise<{ kind: ComponentKind; format: ComponentFormat; encryption?: ComponentEncryption } | undefined> {
  if (!isDir) {
    const { plain, encryption } = encryptedName(path.basename(full));
    if (encryption) {
      const n = plain.toLowerCase();
      if (n.endsWith('.sql.gz')) return { kind: 'postgres', format: 'pg-plain-gz', encryption };
      if (n.endsWith('.sql')) return { kind: 'postgres', format: 'pg-plain', encryption };
      if (n.endsWith('.dump') || n.endsWith('.backup') || n.endsWith('.pgdump'))
        return { kind: 'postgres', format: 'pg-custom', encryption };
      if (n.endsWith('.rdb')) return { kind: 'redis', format: 'redis-rdb', encryption };
      if ((n.endsWith('.tar.gz') || n.endsWith('.tgz')) && (!strictNames || n.includes('prom')))
        return { kind: 'prometheus', format: 'prometheus-tar-gz', encryption };
      return undefined;
    }
  }
  const name = path.basename(full).toLowerCase();
  if (isDir) {
    return (await exists(path.join(full, 'toc.dat'))) ? { kind: 'postgres', format: 'pg-directory' } : undefined;
  }
  if (name.endsWith('.sql.gz')) return { kind: 'postgres', format: 'pg-plain-gz' };
  if (name.endsWith('.sql')) return { kind: 'postgres', format: 'pg-plain' };
  if (name.endsWith('.dump') || name.endsWith('.backup') || name.endsWith('.pgdump')) {
    let head: Buffer = Buffer.alloc(0);
    try {
      head = await sniff(full, 5);
    } catch {
      // unreadable: reported by the size check
    }
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return { kind: 'postgres', format: 'pg-plain-gz' };
    if (head.length === 0 || head.toString('latin1') === 'PGDMP') return { kind: 'postgres', format: 'pg-custom' };
    return { kind: 'postgres', format: 'pg-plain' };
  }
  if (name.endsWith('.rdb')) return { kind: 'redis', format: 'redis-rdb' };
  if ((name.endsWith('.tar.gz') || name.endsWith('.tgz')) && (!strictNames || name.includes('prom'))) {
    return { kind: 'prometheus', format: 'prometheus-tar-gz' };
  }
  return undefined;
}

export async function sizeOf(full: string, isDir: boolean): Promise<number> {
  if (!isDir) return (await stat(full)).size;
  let total = 0;
  for (const e of await readdir(full, { withFileTypes: true })) {
    if (e.isFile()) total += (await stat(path.join(full, e.name))).size;
  }
  return total;
}
