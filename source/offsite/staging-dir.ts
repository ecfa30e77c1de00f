import { chmod, lstat, mkdir, realpath, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { checkDirSafe } from '../exec/safe-fs.js';
import { formatBytes } from '../output.js';
import { expandHome, type LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';

/**
 * The staging directory: where off-site sets are downloaded and encrypted sets decrypted (the
 * plaintext of a backup, as root). Default: "staging" beside the evidence directory. A recipe that
 * puts it somewhere unsafe is refused before anything is created or downloaded:
 *   - a world-writable directory itself (/tmp, /var/tmp, /dev/shm): other users see and can race
 *     names in it, and systemd-tmpfiles / a reboot empties it;
 *   - a tmpfs or ramfs: lost on reboot (an interrupted download cannot resume), and a large set
 *     competes with the databases for RAM;
 *   - a directory (or an ancestor) another user owns or may write without the sticky bit
 *     (exec/safe-fs.ts checkDirSafe).
 * A private subdirectory (root-owned, 0700) under a sticky world-writable directory is accepted
 * when it is on a disk: the sticky bit keeps other users from renaming or removing it.
 */

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const TEMP_DIRS = ['/tmp', '/var/tmp', '/dev/shm', '/run/shm'];

export function stagingRoot(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): string {
  const configured = stagingField(loaded);
  if (configured) return path.resolve(expandHome(configured.value));
  return path.join(path.dirname(evidenceDir(loaded.recipe, env)), 'staging');
}

/** The recipe field that sets the staging directory, if any. */
function stagingField(loaded: LoadedRecipe): { field: string; value: string } | undefined {
  const b = loaded.recipe.backups;
  if (b.offsite?.staging) return { field: 'backups.offsite.staging', value: b.offsite.staging };
  if (b.staging) return { field: 'backups.staging', value: b.staging };
  return undefined;
}

async function nearestExisting(dir: string): Promise<string> {
  let d = path.resolve(dir);
  for (;;) {
    try {
      await stat(d);
      return d;
    } catch {
      const up = path.dirname(d);
      if (up === d) return d;
      d = up;
    }
  }
}

/** Why `dir` must not be the staging directory, or undefined. Creates nothing. */
export async function stagingDirProblem(dir: string): Promise<{ problem: string; why: string; fix?: string } | undefined> {
  const abs = path.resolve(dir);
  const existing = await nearestExisting(abs);
  const real = await realpath(existing).catch(() => existing);
  const temp = new Set([...TEMP_DIRS, path.resolve(os.tmpdir())]);
  if (existing === abs && (temp.has(abs) || temp.has(real))) {
    return {
      problem: `${abs} is a shared temporary directory`,
      why: 'every user can see and race names in it, and it is emptied on reboot (an interrupted download cannot resume)',
    };
  }
  if (existing === abs) {
    const st = await lstat(real);
    if ((st.mode & 0o002) !== 0) {
      return {
        problem: `${abs} is writable by every user (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`,
        why: 'other users can see and race the names of the staged files (the plaintext of a backup)',
      };
    }
  }
  const fs = await statfs(real);
  if (fs.type === TMPFS_MAGIC || fs.type === RAMFS_MAGIC) {
    return {
      problem: `${abs} is on a ${fs.type === TMPFS_MAGIC ? 'tmpfs' : 'ramfs'} (memory, ${formatBytes(fs.bavail * fs.bsize)} free)`,
      why: 'it is lost on reboot (an interrupted download cannot resume) and a large set competes with the databases for RAM',
    };
  }
  const unsafe = await checkDirSafe(abs);
  if (unsafe)
    return { problem: unsafe.problem, why: 'another user could replace the staged files before they are restored', fix: unsafe.fix };
  return undefined;
}

/** Checks the staging directory (stagingDirProblem), then creates it (0700). Returns its path. */
export async function prepareStagingRoot(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const root = stagingRoot(loaded, env);
  const field = stagingField(loaded);
  const bad = await stagingDirProblem(root);
  if (bad) {
    throw new RestoreAssistantError(
      `The staging directory ${root} (${field ? `${field.field} in ${loaded.file}` : 'the default, beside the evidence directory'}) is refused: ${bad.problem}.`,
      ExitCode.preflightFailed,
      {
        problems: [`why: ${bad.why}`],
        untouched: 'Nothing was touched: nothing was created, downloaded or decrypted.',
        next: `${bad.fix ? `${bad.fix}, or s` : 'S'}et ${field?.field ?? 'backups.staging'} in ${loaded.file} to a directory on disk that only root can write (e.g. /var/lib/restore-assistant/staging), then run the command again.`,
      },
    );
  }
  await privateDir(root);
  return root;
}

/** mkdir -p with mode 0700 (and chmod: mkdir applies the umask, and an existing dir keeps its mode). */
export async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  await chmod(dir, 0o700);
}

/** Free bytes where `dir` is (it must exist). */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}
