import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bootId, lockFileName } from '../../source/engine/lock.js';

/** A pid that is certainly not running any more. */
export function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** Writes a lock file for `key` into `lockDir` as another run would (this host and boot), with `content` over the defaults. */
export async function plantLock(lockDir: string, key: string, content: Record<string, unknown>): Promise<string> {
  await mkdir(lockDir, { recursive: true, mode: 0o755 });
  const file = path.join(lockDir, lockFileName(key));
  await writeFile(
    file,
    JSON.stringify({
      format: 'restore-assistant/lock@1',
      key,
      user: 'alice',
      uid: 1000,
      host: os.hostname(),
      bootId: bootId(),
      runId: 'crashed-run',
      startedAt: '2026-12-01T03:00:00.000Z',
      command: 'restore',
      ...content,
    }),
  );
  return file;
}
