import { readdirSync, readFileSync } from 'node:fs';

/** Test helpers for "did anything leak?" checks (Linux /proc). */

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export interface ProcessInfo {
  pid: number;
  cmdline: string;
}

/** Live (non-zombie) processes whose command line mentions `needle` (e.g. a temp dir or ":<port>"). */
export function processesMentioning(needle: string): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(needle) && pidAlive(pid)) found.push({ pid, cmdline });
  }
  return found;
}

/** Real uid of a process (from /proc/<pid>/status). */
export function processUid(pid: number): number | undefined {
  try {
    const match = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}
