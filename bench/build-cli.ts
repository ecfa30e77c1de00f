import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCli as buildShipped } from '../scripts/build.js';

/**
 * The CLI as it ships (scripts/build.ts: the esbuild bundle, plain `node dist/bin.js`), built into
 * a directory of the bench's own (never the checkout's dist/, which a running test may be
 * executing): start-up time is what these benches measure, and running through tsx would measure tsx.
 */

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Build into `<dir>/dist`; returns the path of bin.js. */
export async function buildCli(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
  if (!existsSync(path.join(dir, 'node_modules'))) await symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return (await buildShipped(path.join(dir, 'dist'))).bin;
}

/** The bench's CLI: $BENCH_CLI (an already built bin.js) or a fresh build in `dir`. */
export async function benchCli(dir: string): Promise<string> {
  const given = process.env['BENCH_CLI'];
  return given ? path.resolve(given) : buildCli(dir);
}

/** CPU seconds (user + system) a process has used so far, from /proc (undefined elsewhere). */
export async function processCpuMs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) in parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'} (${cpus.length} cores), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`;
}
