import { copyFile, constants as fsConstants, link, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { findBackupSet, listBackupSets } from '../catalog/index.js';
import { encryptedName, exists } from '../catalog/files.js';
import type { BackupSet, StagedObject } from '../catalog/types.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { Redactor } from '../exec/redact.js';
import { formatBytes } from '../output.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { raCommand } from '../text/next.js';
import { sanitizeText } from '../text/sanitize.js';
import { decryptFile } from './decrypt.js';
import { StagingRejection, withSet } from './rejection.js';
import { safeName, sha256File } from './staged-files.js';
import { freeBytes, prepareStagingRoot, privateDir } from './staging-dir.js';

/**
 * An encrypted set on local disk (components named `<name>.gpg` / `<name>.age`, any layout): the
 * ciphertext is hashed and checked against the checksum recorded for it (its `.gpg.sha256` sidecar
 * or a SHA256SUMS line naming it), then decrypted with the recipe's keys (backups.encryption) into
 *   <staging>/<recipe>/local-<set id>/set/<the set's own relative paths>
 * (directories 0700, plaintext 0600), where the local pipeline (catalog, sidecars of the plaintext,
 * SHA256SUMS, whole-stream checks, pg_restore --list, redis-check-rdb) reads it like any set. gpg
 * and age authenticate what they decrypt: a modified or truncated ciphertext, a wrong or missing
 * key, is a rejected set (exit 3, naming the key tried) before anything destructive. The plaintext
 * exists only there and only for the run: it is removed when the command ends (releaseStaged).
 * Plain files of the same set (metadata.txt, sums, unencrypted components) are hard-linked, or
 * copied when the staging directory is on another file system.
 */

export interface LocalStageOptions {
  env?: NodeJS.ProcessEnv;
  redact: Redactor;
  log: (line: string) => void;
}

export function isEncryptedSet(set: BackupSet): boolean {
  return !set.origin && set.components.some((c) => c.encryption !== undefined);
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  await privateDir(path.dirname(to));
  try {
    await link(from, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM') throw error;
    await copyFile(from, to, fsConstants.COPYFILE_EXCL);
  }
}

async function linkTree(from: string, to: string): Promise<void> {
  await privateDir(to);
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.isFile()) await linkOrCopy(path.join(from, e.name), path.join(to, e.name));
  }
}

const isSums = (name: string): boolean => /^sha256sums(\.txt)?$/i.test(name);

/** The staged (decrypted) copy of an encrypted local set; other sets are returned as they are. */
export async function stageEncryptedLocal(loaded: LoadedRecipe, set: BackupSet, o: LocalStageOptions): Promise<BackupSet> {
  if (!isEncryptedSet(set)) return set;
  const env = o.env ?? process.env;
  const r = loaded.recipe;
  const rels = new Map<string, string>(); // relative path in the set root → source file
  const relOf = (file: string): string => {
    const rel = path.relative(set.root, file);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel))
      throw new RestoreAssistantError(`${file} is outside the backup root ${set.root}; it is not staged.`, ExitCode.usage, {
        untouched: 'Nothing was touched.',
        next: 'Name the set by its id, as the list command shows it.',
      });
    return rel;
  };
  const encrypted = set.components.filter((c) => c.encryption);
  // Free space first: the plaintext is about the ciphertext's size (gpg may compress: a margin), plus
  // plain components in case they must be copied (another file system).
  const root = await prepareStagingRoot(loaded, env);
  const setDir = path.join(root, safeName(r.name), `local-${safeName(set.id)}`);
  const setRoot = path.join(setDir, 'set');
  await rm(setDir, { recursive: true, force: true });
  await privateDir(setDir);
  const need = set.components.reduce((s, c) => s + c.size, 0) + 64 * 1024 * 1024;
  const free = await freeBytes(setDir);
  if (free < need) {
    await rm(setDir, { recursive: true, force: true });
    throw new RestoreAssistantError(
      `Not enough free space to decrypt set ${sanitizeText(set.id, 80)} in ${setDir}: ${formatBytes(need)} needed (the set's ${formatBytes(need - 64 * 1024 * 1024)}, 64 MiB margin), ${formatBytes(free)} free.`,
      ExitCode.preflightFailed,
      {
        untouched: 'Nothing was touched and nothing was decrypted.',
        next: `Free space there, or set backups.staging in ${loaded.file} to a larger disk, then run the command again.`,
      },
    );
  }
  o.log(
    `Decrypting set ${sanitizeText(set.id, 80)} (${encrypted.length} encrypted file${encrypted.length === 1 ? '' : 's'}) into ${setDir}`,
  );
  const objects: StagedObject[] = [];
  try {
    await privateDir(setRoot);
    const dirs = new Set<string>([set.location, ...set.components.map((c) => path.dirname(c.path))]);
    for (const dir of dirs) {
      if (path.relative(set.root, dir).startsWith('..')) continue;
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (!e.isFile()) continue;
        if (isSums(e.name) || e.name.toLowerCase() === 'metadata.txt') rels.set(relOf(path.join(dir, e.name)), path.join(dir, e.name));
      }
    }
    for (const c of set.components) {
      const rel = relOf(c.path);
      if (!c.encryption) {
        if ((await stat(c.path)).isDirectory()) await linkTree(c.path, path.join(setRoot, rel));
        else rels.set(rel, c.path);
        if (await exists(`${c.path}.sha256`)) rels.set(`${rel}.sha256`, `${c.path}.sha256`);
        continue;
      }
      const label = sanitizeText(rel, 120);
      const plainRel = encryptedName(rel).plain;
      const plainSidecar = path.join(path.dirname(c.path), `${path.basename(plainRel)}.sha256`);
      if (await exists(plainSidecar)) rels.set(`${plainRel}.sha256`, plainSidecar);
      const st = await stat(c.path);
      const sha256 = await sha256File(c.path);
      const obj: StagedObject = { key: c.path, etag: '', size: st.size, sha256, fetchedBytes: 0 };
      objects.push(obj);
      if (c.expectedSha256 && c.expectedSha256.toLowerCase() !== sha256) {
        throw new StagingRejection(
          'checksum-mismatch',
          `Set ${sanitizeText(set.id, 80)} is rejected: ${label} does not match its checksum.`,
          {
            problems: [
              `sha256 ${sha256}, ${c.checksumSource === 'SHA256SUMS' ? 'SHA256SUMS' : `${label}.sha256`} says ${c.expectedSha256}`,
            ],
            next: `Pick another set (\`${raCommand('list', '--recipe', loaded.file)}\`), or restore this file from a good copy.`,
            file: c.path,
          },
        );
      }
      o.log(`  decrypting ${label} (${c.encryption})`);
      await privateDir(path.dirname(path.join(setRoot, plainRel)));
      const res = await decryptFile(c.encryption!, c.path, path.join(setRoot, plainRel), {
        keys: r.backups.encryption,
        stagingDir: setDir,
        env,
        redact: o.redact,
        label,
      });
      obj.decryptedWith = c.encryption!;
      o.log(`  decrypted ${label} with ${res.keyUsed}`);
    }
    for (const [rel, from] of rels) await linkOrCopy(from, path.join(setRoot, rel));
  } catch (error) {
    await rm(setDir, { recursive: true, force: true });
    throw withSet(error, set, objects);
  }
  const listed = await listBackupSets({
    root: setRoot,
    layout: set.layout,
    ...(r.backups.database ? { database: r.backups.database } : {}),
    pairWindowMinutes: r.backups.pairWindowMinutes,
  });
  // A flat root that is one set (its metadata.txt) is named after the root: the staged root is not.
  const staged =
    listed.sets.length === 1 && !listed.sets.some((s) => s.id === set.id) ? listed.sets[0]! : findBackupSet(listed.sets, set.id);
  staged.id = set.id;
  staged.warnings.push(...set.warnings.filter((w) => !staged.warnings.includes(w)));
  staged.origin = { url: set.location, source: 'local', stagingDir: setDir, objects, keep: false };
  return staged;
}
