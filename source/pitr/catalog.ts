import { stat } from 'node:fs/promises';
import path from 'node:path';
import { listBackupSets } from '../catalog/index.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { Redactor } from '../exec/redact.js';
import { expandHome } from '../recipe/load.js';
import type { Recipe } from '../recipe/schema.js';
import { scanArchive, type WalArchive } from './wal.js';
import { describeBase, type PitrBase } from './window.js';

/** The physical layout's bases with their windows over the WAL archive, newest first. */
export interface PitrCatalog {
  root: string;
  archiveDir: string;
  archive: WalArchive;
  bases: PitrBase[];
  warnings: string[];
}

/** backups.walArchive, else `<root>/wal_archive`. */
export function archiveDirOf(root: string, recipe?: Recipe): string {
  const configured = recipe?.backups.walArchive;
  return path.resolve(expandHome(configured ?? path.join(root, 'wal_archive')));
}

export function clusterBinDir(recipe?: Recipe): string | undefined {
  return recipe?.components.postgres?.cluster?.bin ?? recipe?.components.postgres?.bin;
}

export async function loadPitrCatalog(
  root: string,
  opts: { recipe?: Recipe; redact?: Redactor; signal?: AbortSignal } = {},
): Promise<PitrCatalog> {
  const listed = await listBackupSets({ root, layout: 'physical' });
  const archiveDir = archiveDirOf(root, opts.recipe);
  let archive: WalArchive;
  try {
    const s = await stat(archiveDir);
    if (!s.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    archive = await scanArchive(archiveDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new RestoreAssistantError(
      `The WAL archive ${archiveDir} ${code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code})`}.`,
      ExitCode.usage,
      {
        untouched: 'Nothing was touched.',
        next: "Set backups.walArchive in the recipe to the directory archive_command copies to (archive_command = 'cp %p <dir>/%f').",
      },
    );
  }
  const bases: PitrBase[] = [];
  const binDir = clusterBinDir(opts.recipe);
  for (const set of listed.sets) {
    bases.push(
      await describeBase(set, archive, {
        ...(binDir ? { binDir } : {}),
        ...(opts.redact ? { redact: opts.redact } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    );
  }
  return { root: path.resolve(root), archiveDir, archive, bases, warnings: [...listed.warnings, ...archive.warnings] };
}
