import { execFile } from 'node:child_process';
import { inject } from 'vitest';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Path of the CLI built once for this test run (test/global-setup.ts). */
export function cliBin(): string {
  return inject('cliBin');
}

/**
 * Runs the real built CLI with argv (no shell, no TTY), a minimal environment plus `env`, and
 * NO_COLOR. Never rejects: the exit code is the result.
 */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const base: Record<string, string> = { NO_COLOR: '1' };
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'RESTORE_ASSISTANT_STATE_DIR', 'RESTORE_ASSISTANT_LOCK_DIR']) {
    const v = process.env[k];
    if (v) base[k] = v;
  }
  const env: Record<string, string> = { ...base };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliBin(), ...args],
      { env, cwd: opts.cwd ?? process.cwd(), timeout: opts.timeoutMs ?? 240_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
      },
    );
  });
}
