import type { EncryptionKeys } from '../recipe/schema.js';
import { parseTarget, type PitrTarget } from '../pitr/target.js';
import { sanitizeText } from '../text/sanitize.js';
import type { BackupSet } from '../catalog/types.js';
import type { PitrBaseView, SetWhere } from './types.js';

/**
 * Pure text for the point-in-time and off-site parts of the guide (tested in
 * test/unit/ui-pitr-offsite.test.tsx): the restorable window of a base backup, the target the
 * operator types (parsed strictly, with its zone, checked against the window), where a set lives and
 * which key decrypts an encrypted component (the key's name or file, never the key).
 */

/** "2026-12-01 03:12:07 UTC" (seconds matter for a point in time; milliseconds shown only when there are any). */
export function utcSeconds(iso: string): string {
  const d = new Date(iso);
  if (!Number.isFinite(d.getTime())) return sanitizeText(iso, 40);
  const s = d.toISOString();
  const ms = s.slice(20, 23);
  return `${s.slice(0, 10)} ${s.slice(11, 19)}${ms === '000' ? '' : `.${ms}`} UTC`;
}

/** "restorable from T1 to T2 UTC; changes after T2 lost" (or why there is no window). */
export function windowLine(base: PitrBaseView): string {
  const w = base.window;
  if (!w) return 'no restorable window: this base cannot be restored';
  return `restorable from ${utcSeconds(w.from)} to ${utcSeconds(w.to)}; changes after ${utcSeconds(w.to)} lost`;
}

/** Where the window ends early: the gaps (a missing WAL segment) and other problems, named. */
export function windowProblems(base: PitrBaseView): string[] {
  return base.problems.map((p) => sanitizeText(p, 300));
}

export type TargetChoice = 'latest' | 'immediate' | 'time';
export const TARGET_CHOICES: readonly TargetChoice[] = ['latest', 'immediate', 'time'];

/** The target screen's rows, in words. */
export function targetChoiceLine(choice: TargetChoice, base: PitrBaseView): string {
  const w = base.window;
  switch (choice) {
    case 'latest':
      return w ? `Latest: to the last archived commit, ${utcSeconds(w.to)}` : 'Latest: to the last archived commit';
    case 'immediate':
      return w ? `Immediately consistent: the end of the base, ${utcSeconds(w.from)}` : 'Immediately consistent: the end of the base';
    case 'time':
      return 'A time inside the window (typed, with its zone)';
  }
}

/** How a typed target reads back: the instant in UTC, and the zone it was typed in. */
export function targetLabel(target: PitrTarget, typed?: string): string {
  if (target.kind === 'latest') return 'latest (the end of the archived WAL)';
  if (target.kind === 'immediate') return 'immediately consistent (the end of the base backup)';
  const utc = utcSeconds(target.time);
  const zone = typed ? /(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)\s*$/i.exec(typed.trim())?.[1] : undefined;
  return zone && !/^(z|utc|gmt|[+-]00(:?00)?)$/i.test(zone) ? `${utc} (typed as ${sanitizeText(typed!.trim(), 40)})` : utc;
}

export type TypedTargetCheck = { ok: true; target: PitrTarget; label: string } | { ok: false; problem: string };

/**
 * A time the operator typed: parsed strictly (a date, a time, and a zone: Z, UTC, +02:00; nothing
 * else), then checked against the base's window. Out of the window: refused, with the window.
 */
export function checkTypedTarget(text: string, base: PitrBaseView): TypedTargetCheck {
  const typed = text.trim();
  const w = base.window;
  if (!w) return { ok: false, problem: 'This base has no restorable window: choose another base backup.' };
  if (typed === '') return { ok: false, problem: 'Type a time with its zone, e.g. 2026-12-01 03:12:00Z (UTC).' };
  let target: PitrTarget;
  try {
    target = parseTarget(typed);
  } catch {
    return {
      ok: false,
      problem: `"${sanitizeText(typed, 60)}" is not a time with its zone. Type e.g. ${utcSeconds(w.to).replace(' UTC', 'Z')} (UTC) or 2026-12-01 04:12:00+01:00; a time without a zone is refused.`,
    };
  }
  if (target.kind !== 'time') return { ok: true, target, label: targetLabel(target) };
  const t = Date.parse(target.time);
  const window = `the window is ${utcSeconds(w.from)} .. ${utcSeconds(w.to)}`;
  if (t < Date.parse(w.from))
    return {
      ok: false,
      problem: `${utcSeconds(target.time)} is before the end of this base backup: ${window}. An older base backup is needed for that time.`,
    };
  if (t > Date.parse(w.to)) {
    const gap = base.problems[0];
    return {
      ok: false,
      problem: `${utcSeconds(target.time)} is after the last archived commit: ${window}${gap ? ` (${sanitizeText(gap, 200)})` : ''}.`,
    };
  }
  return { ok: true, target, label: targetLabel(target, typed) };
}

/** The target as the plan and confirmation name it. */
export function targetShort(target: PitrTarget): string {
  return target.kind === 'time' ? utcSeconds(target.time) : target.kind === 'latest' ? 'latest' : 'immediately consistent';
}

export const whereLabel: Record<SetWhere, string> = { local: 'local', 'off-site': 'off-site', both: 'both' };

/** How an encrypted component is encrypted (its name ends .gpg / .age), or undefined. */
export function encryptionOfPath(p: string): 'gpg' | 'age' | undefined {
  const m = /\.(gpg|age)$/i.exec(p);
  return m?.[1] ? (m[1].toLowerCase() as 'gpg' | 'age') : undefined;
}

/** Which key the recipe names for an encryption (the env variable or the key file: never the key). */
export function keyLabel(enc: 'gpg' | 'age', keys: EncryptionKeys | undefined): string {
  if (enc === 'age') {
    const id = keys?.age?.identityFile;
    return id ? `age identity ${sanitizeText(id, 120)}` : 'no age identity in the recipe (backups.encryption.age.identityFile)';
  }
  const g = keys?.gpg;
  const parts = [
    ...(g?.secretKeyFile ? [`secret key ${sanitizeText(g.secretKeyFile, 120)}`] : []),
    ...(g?.passphraseEnv ? [`passphrase from $${sanitizeText(g.passphraseEnv, 60)}`] : []),
  ];
  return parts.length > 0 ? parts.join(' + ') : 'no gpg key in the recipe (backups.encryption.gpg)';
}

/** One line per encrypted component of a set: "postgres: gpg, decrypted with secret key /etc/…". */
export function encryptionLines(set: BackupSet, keys: EncryptionKeys | undefined): string[] {
  const out: string[] = [];
  for (const c of set.components) {
    const enc = c.encryption ?? encryptionOfPath(c.path);
    if (enc) out.push(`${c.kind}: ${enc}-encrypted, decrypted with ${keyLabel(enc, keys)}`);
  }
  return out;
}
