import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { PlannedAction } from '../actions/types.js';
import type { Redactor } from '../exec/redact.js';
import { run } from '../exec/run.js';
import { ActionError, InterruptedError, type ActionContext } from './actions.js';

/**
 * The two engine actions of a point-in-time restore (source/pitr/plan.ts builds them):
 * `write-file` (the recovery settings, recovery.signal) and `follow-recovery` (replayed LSN against
 * the target, ETA, until the server leaves recovery).
 */

const { O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW } = fsConstants;

export async function writeFileAction(action: Extract<PlannedAction, { type: 'write-file' }>, ctx: ActionContext): Promise<string> {
  if (ctx.signal.aborted) throw new InterruptedError(`writing ${action.path}`);
  const flags = action.mode === 'create' ? O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW : O_WRONLY | O_APPEND | O_NOFOLLOW;
  let fh;
  try {
    fh = await open(action.path, flags, action.fileMode ?? 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ActionError(
      `${action.mode === 'create' ? 'creating' : 'appending to'} ${action.path} failed: ${code === 'ELOOP' ? 'it is a symbolic link (refused)' : code === 'EEXIST' ? 'something already has that name' : (error as Error).message}`,
    );
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.nlink !== 1) throw new ActionError(`${action.path} is not a plain file with one link: refused to write it`);
    await fh.write(action.content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return `${Buffer.byteLength(action.content)} bytes ${action.mode === 'create' ? 'written to' : 'appended to'} ${action.path}`;
}

function lsnValue(text: string | undefined): bigint | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec((text ?? '').trim());
  return m?.[1] && m[2] ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

export async function followRecoveryAction(
  action: Extract<PlannedAction, { type: 'follow-recovery' }>,
  ctx: ActionContext & { env: Record<string, string>; redact: Redactor },
): Promise<string> {
  const started = performance.now();
  const deadline = started + action.timeoutSeconds * 1000;
  const startLsn = lsnValue(action.startLsn) ?? 0n;
  const target = lsnValue(action.targetLsn);
  let answered = false;
  let lastAnswerAt = performance.now();
  let lastLine = '';
  let lastLog = 0;
  let lastReplay: bigint | undefined;
  let lastCommit = '';
  let lastError = '';
  for (;;) {
    if (ctx.signal.aborted) throw new InterruptedError('following recovery');
    const r = await run(action.command.argv, {
      env: ctx.env,
      signal: ctx.signal,
      redact: ctx.redact,
      timeoutMs: 10_000,
      okExitCodes: [0],
      streamLines: false,
    });
    const now = performance.now();
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const [inRecovery, replay, commit] = line.split('|');
    if (r.ok && (inRecovery === 't' || inRecovery === 'f')) {
      answered = true;
      lastAnswerAt = now;
      const lsn = lsnValue(replay);
      if (lsn !== undefined) lastReplay = lsn;
      if (commit) lastCommit = commit;
      if (inRecovery === 'f') {
        const atLeast = lsnValue(action.expectAtLeastLsn);
        if (atLeast !== undefined && lastReplay !== undefined && lastReplay < atLeast)
          throw new ActionError(
            `recovery ended at ${replay ?? '?'}, before the end of the verified WAL (${action.expectAtLeastLsn}): a segment could not be restored from the archive (see the server log); the server was promoted there`,
          );
        const detail = `out of recovery after ${Math.round((now - started) / 1000)}s${lastReplay !== undefined ? `; replayed to ${replay}` : ''}${lastCommit ? `; last replayed commit ${lastCommit}` : ''}`;
        ctx.emit({ type: 'log', stepId: ctx.stepId, level: 'info', message: ctx.redact(`recovery finished: ${detail}`) });
        return detail;
      }
      if (lastReplay !== undefined) {
        const done = Number(lastReplay > startLsn ? lastReplay - startLsn : 0n);
        const total = target !== undefined && target > startLsn ? Number(target - startLsn) : undefined;
        const elapsed = now - started;
        const etaMs = total !== undefined && done > 0 && done < total ? Math.round((elapsed / done) * (total - done)) : undefined;
        ctx.emit({
          type: 'progress',
          stepId: ctx.stepId,
          unit: 'bytes',
          done,
          ...(total !== undefined ? { total } : {}),
          ...(etaMs !== undefined ? { etaMs } : {}),
        });
        const text = `replayed ${replay}${action.targetLsn ? ` of ${action.targetLsn}` : ''}${lastCommit ? `, last commit ${lastCommit}` : ''}${etaMs !== undefined ? `, about ${Math.ceil(etaMs / 1000)}s left` : ''}`;
        if (text !== lastLine && now - lastLog > 5000) {
          lastLine = text;
          lastLog = now;
          ctx.emit({ type: 'log', stepId: ctx.stepId, level: 'info', message: ctx.redact(`recovery: ${text}`) });
          ctx.onOutput?.(text);
        }
      }
    } else {
      lastError = (r.stderrTail.at(-1) ?? r.stdoutTail.at(-1) ?? '').slice(0, 300);
      // The server answered before and has not for 30 s: it stopped (a FATAL in recovery).
      if (answered && now - lastAnswerAt > 30_000)
        throw new ActionError(
          `the server stopped answering during recovery (last: ${ctx.redact(lastError)}); its log says why (e.g. "recovery ended before configured recovery target was reached")`,
        );
    }
    if (now > deadline)
      throw new ActionError(
        `recovery did not finish within ${action.timeoutSeconds}s${lastReplay !== undefined ? ` (replayed to ${lastLine || 'an unknown LSN'})` : ''}${lastError ? `; last error: ${ctx.redact(lastError)}` : ''}`,
      );
    await sleep(1000, ctx.signal);
  }
}
