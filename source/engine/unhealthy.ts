import type { Plan } from '../plan/types.js';
import type { ExecuteOptions, UnhealthyDecision } from './options.js';

/**
 * Asks the injected hook whether to keep the restored state or roll back, and records the answer.
 * No hook (or a drill): keep, as before. An interrupt while the question is open wins.
 */
export async function askUnhealthy(
  plan: Plan,
  opts: ExecuteOptions,
  checks: string[],
  state: string[],
): Promise<UnhealthyDecision | 'interrupted'> {
  const ask = opts.onUnhealthy;
  if (!ask || plan.mode === 'drill') return 'keep';
  const { bus, redact } = opts;
  const log = (level: 'info' | 'warn', message: string): void => {
    bus.emit({ type: 'log', level, message: redact(message) });
  };
  const signal = opts.signal;
  if (signal?.aborted) {
    log('warn', 'interrupted before the operator was asked about failed health checks: rolling back');
    return 'interrupted';
  }
  log('info', `health checks failed (${checks.join(', ')}): asking the operator whether to keep the restored state or roll back`);
  let onAbort: (() => void) | undefined;
  const interrupted = new Promise<'interrupted'>((resolve) => {
    onAbort = () => resolve('interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  let answer: UnhealthyDecision | 'interrupted' | 'failed';
  let failure = '';
  try {
    answer = await Promise.race([
      Promise.resolve()
        .then(() => ask({ checks: [...checks], state: [...state] }))
        .then((a): UnhealthyDecision | 'failed' => {
          if (a === 'keep' || a === 'rollback') return a;
          failure = `unexpected answer ${JSON.stringify(a)}`;
          return 'failed';
        }),
      interrupted,
    ]);
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
    answer = 'failed';
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
  if (answer === 'interrupted' || signal?.aborted) {
    log('warn', 'interrupted while the operator was asked about failed health checks: rolling back');
    return 'interrupted';
  }
  if (answer === 'failed') {
    log('warn', `the question about failed health checks got no answer (${failure}): the restored state is kept`);
    return 'keep';
  }
  log(
    'info',
    answer === 'rollback'
      ? 'operator chose to roll back after failed health checks'
      : 'operator chose to keep the restored state after failed health checks',
  );
  return answer;
}
