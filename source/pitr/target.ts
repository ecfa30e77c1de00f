import { UsageError } from '../errors.js';
import { sanitizeText } from '../text/sanitize.js';
import type { PitrBase } from './window.js';

/** Where a point-in-time restore stops: the end of the archived WAL, a time, or the base's consistent point. */
export type PitrTarget = { kind: 'latest' } | { kind: 'immediate' } | { kind: 'time'; time: string };

/**
 * `--to`: "latest", "immediate", or a time WITH its zone ("2026-12-01 03:12:00Z", "…+02:00",
 * "…UTC", ISO-8601). A time without a zone is refused: at 3 a.m. the host's zone, the operator's
 * and the server's may all differ.
 */
export function parseTarget(text: string | undefined): PitrTarget {
  const v = (text ?? 'latest').trim();
  if (v === '' || v === 'latest') return { kind: 'latest' };
  if (v === 'immediate') return { kind: 'immediate' };
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$/i.exec(v);
  if (!m?.[1] || !m[2] || !m[3]) {
    throw new UsageError(
      `--to takes "latest", "immediate" or a time with its zone, e.g. '2026-12-01 03:12:00Z' (got "${sanitizeText(v, 60)}"). A time without a zone is refused.`,
    );
  }
  const zone = /^(z|utc|gmt)$/i.test(m[3])
    ? 'Z'
    : m[3].length === 3
      ? `${m[3]}:00`
      : m[3].length === 5
        ? `${m[3].slice(0, 3)}:${m[3].slice(3)}`
        : m[3];
  const time = m[2].length === 5 ? `${m[2]}:00` : m[2];
  const ms = Date.parse(`${m[1]}T${time}${zone}`);
  if (!Number.isFinite(ms)) throw new UsageError(`--to: "${sanitizeText(v, 60)}" is not a valid time.`);
  return { kind: 'time', time: new Date(ms).toISOString() };
}

export function targetText(t: PitrTarget): string {
  return t.kind === 'time' ? `${t.time.replace('T', ' ').replace(/\.000Z$/, 'Z')}` : t.kind;
}

/** The newest base that can reach the target (for a time: whose window starts at or before it). */
export function chooseBase(bases: PitrBase[], target: PitrTarget): PitrBase | undefined {
  const usable = bases.filter((b) => b.window);
  const newestFirst = [...usable].sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime));
  if (target.kind !== 'time') return newestFirst[0];
  return newestFirst.find((b) => Date.parse(b.window!.from) <= Date.parse(target.time));
}

/** How the target lands in the base's window: 'ok', or why not, in words. */
export function targetProblem(base: PitrBase, target: PitrTarget): { code: string; message: string } | undefined {
  const w = base.window;
  if (!w) return { code: 'pitr-no-window', message: `base ${base.set.id} has no restorable window` };
  if (target.kind === 'latest') {
    const gap = base.problems.find((p) => p.code === 'pitr-wal-gap');
    return gap
      ? {
          code: 'pitr-wal-gap',
          message: `${gap.message}. Restore to a time inside the window (--to '${targetText({ kind: 'time', time: w.to })}') to accept that`,
        }
      : undefined;
  }
  if (target.kind === 'immediate') return undefined;
  const t = Date.parse(target.time);
  if (t < Date.parse(w.from))
    return {
      code: 'pitr-target-before-window',
      message: `${targetText(target)} is before the end of base ${base.set.id} (${targetText({ kind: 'time', time: w.from })}): an older base backup is needed`,
    };
  if (t > Date.parse(w.to)) {
    const gap = base.problems.find((p) => p.code === 'pitr-wal-gap');
    return {
      code: gap ? 'pitr-wal-gap' : 'pitr-target-after-window',
      message: `${targetText(target)} is after the window's end (${targetText({ kind: 'time', time: w.to })}, the last commit in the archived WAL)${gap ? `: ${gap.message}` : ''}`,
    };
  }
  return undefined;
}

/**
 * What recovery is told: a time strictly before the window's last commit stops there
 * (recovery_target_time); a time at the last commit replays to the end of the WAL (PostgreSQL stops
 * a time target only at a later commit, and fails when none follows).
 */
export function recoveryTarget(
  base: PitrBase,
  target: PitrTarget,
): { kind: 'time'; time: string } | { kind: 'end' } | { kind: 'immediate' } {
  if (target.kind === 'immediate') return { kind: 'immediate' };
  if (target.kind === 'latest') return { kind: 'end' };
  if (base.window && Date.parse(target.time) >= Date.parse(base.window.to)) return { kind: 'end' };
  return { kind: 'time', time: target.time };
}
