import { randomInt } from 'node:crypto';
import { targetText, type PitrTarget } from '../pitr/target.js';
import type { PitrBase } from '../pitr/window.js';
import { sanitizeText } from '../text/sanitize.js';

/**
 * `drill --pick` on a physical recipe: a base and a target. A drill of `latest` from the newest
 * base only ever proves the end of the newest window; picking a random second inside the window of
 * a base (a recent one at random, or the oldest kept) also proves that replay stops where it is
 * told, in the middle of the WAL, from bases the newest one would never exercise.
 */
export interface PickedPitr {
  base: PitrBase;
  target: PitrTarget;
  /** For the evidence: how the base and the target were chosen, from how many. */
  note: string;
}

export function pickPitrDrill(
  bases: PitrBase[],
  pick: 'random-recent' | 'oldest-retained',
  intervalDays: number,
  now: Date = new Date(),
  rand: (n: number) => number = (n) => randomInt(n),
): PickedPitr | undefined {
  const usable = bases.filter((b) => b.window).sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime));
  if (usable.length === 0) return undefined;
  let base: PitrBase;
  let how: string;
  if (pick === 'oldest-retained') {
    base = usable[usable.length - 1]!;
    how = `the oldest of ${usable.length} base${usable.length === 1 ? '' : 's'} with a restorable window`;
  } else {
    const cutoff = now.getTime() - intervalDays * 86_400_000;
    const recent = usable.filter((b) => Date.parse(b.startTime) >= cutoff);
    const pool = recent.length > 0 ? recent : usable.slice(0, 1);
    base = pool[rand(pool.length)]!;
    how =
      recent.length > 0
        ? `at random among ${pool.length} base${pool.length === 1 ? '' : 's'} taken in the last ${intervalDays} days`
        : `the newest (none was taken in the last ${intervalDays} days)`;
  }
  const w = base.window!;
  const from = Math.ceil(Date.parse(w.from) / 1000);
  const to = Math.floor(Date.parse(w.to) / 1000);
  // A whole second strictly inside the window when there is one; a window under two seconds: its end.
  const target: PitrTarget =
    to - from >= 2 ? { kind: 'time', time: new Date((from + 1 + rand(to - from - 1)) * 1000).toISOString() } : { kind: 'latest' };
  const id = sanitizeText(base.set.id, 80);
  const note =
    `--pick ${pick}: base ${id} (taken ${base.startTime}), ${how}; target ${targetText(target)}` +
    (target.kind === 'time'
      ? `, a second at random inside its window ${w.from} .. ${w.to} (replay must stop there, not only at the end)`
      : ` (its window ${w.from} .. ${w.to} is too short to pick a second inside)`);
  return { base, target, note };
}
