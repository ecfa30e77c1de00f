/**
 * Times as backups record them: in directory names, file names and metadata values.
 *
 * Assumption (documented in docs/architecture.md and the README): a time without a zone is UTC.
 * The audited scripts name backups with `date +%Y-%m-%d_%H-%M-%S` / `date +%Y%m%d_%H%M%S`, which
 * use the host's zone; the audited hosts run in UTC. A metadata value that carries a zone
 * (`Z`, `UTC`, `GMT`, `+02:00`, `+0200`) is honoured.
 */

/** story-portal set directory: 2026-01-18_01-45-13 */
export const STORY_PORTAL_DIR = /^(\d{4})-(\d{2})-(\d{2})_(\d{2})-(\d{2})-(\d{2})$/;
/** metachat PostgreSQL dump: <db>_20260118_014513.dump (also .sql, .sql.gz, or a -Fd directory) */
export const METACHAT_DUMP = /^(.+)_(\d{8}_\d{6})(\.dump|\.sql\.gz|\.sql)?$/;
/** metachat Redis dump: dump_20260118_014513.rdb */
export const METACHAT_RDB = /^dump_(\d{8}_\d{6})\.rdb$/;

function iso(y: number, mo: number, d: number, h: number, mi: number, s: number, ms = 0, offsetMinutes = 0): string | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const t = Date.UTC(y, mo - 1, d, h, mi, Math.min(s, 59), ms) - offsetMinutes * 60_000;
  const date = new Date(t);
  // Reject dates that roll over (2026-02-31).
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCDate() !== d || check.getUTCMonth() !== mo - 1) return undefined;
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** `20260118_014513` → ISO UTC, or undefined. */
export function parseCompactStamp(stamp: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(stamp);
  if (!m) return undefined;
  return iso(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

/** `2026-01-18_01-45-13` → ISO UTC, or undefined. */
export function parseDashedStamp(stamp: string): string | undefined {
  const m = STORY_PORTAL_DIR.exec(stamp);
  if (!m) return undefined;
  return iso(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

function zoneOffset(zone: string | undefined): number | undefined {
  if (zone === undefined || zone === '') return 0;
  const z = zone.trim();
  if (/^(z|utc|gmt)$/i.test(z)) return 0;
  const m = /^(?:utc|gmt)?([+-])(\d{2}):?(\d{2})?$/i.exec(z);
  if (m) return (m[1] === '-' ? -1 : 1) * (+m[2]! * 60 + +(m[3] ?? '0'));
  return undefined;
}

export interface ParsedTime {
  iso: string;
  /** The value named a zone we cannot convert (e.g. "CET"): the time was NOT used. */
  unknownZone?: string;
}

/**
 * A time written by a person or a script: `2026-01-18_01-45-13`, `20260118_014513`,
 * `2026-01-18 01:45:13[.123][ ]Z|UTC|+02:00`, `2026-01-18T01:45:13Z`, or `date` output
 * (`Sun Jan 18 01:45:13 UTC 2026`). Returns undefined when unparseable or when the zone is unknown.
 */
export function parseRecordedTime(value: string): string | undefined {
  const v = value.trim();
  if (v.length > 64) return undefined;
  const dashed = parseDashedStamp(v);
  if (dashed) return dashed;
  const compact = parseCompactStamp(v);
  if (compact) return compact;
  let m = /^(\d{4})-(\d{2})-(\d{2})[T _](\d{2})[:-](\d{2})[:-](\d{2})(?:\.(\d{1,6}))?\s*(Z|UTC|GMT|(?:UTC|GMT)?[+-]\d{2}:?\d{2})?$/i.exec(
    v,
  );
  if (m) {
    const off = zoneOffset(m[8]);
    if (off === undefined) return undefined;
    return iso(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!, Math.round(+`0.${m[7] ?? '0'}` * 1000), off);
  }
  // `date` default output: "Sun Jan 18 01:45:13 UTC 2026" (zone optional).
  m = /^(?:[A-Za-z]{3},?\s+)?([A-Za-z]{3})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+(?:([A-Za-z]{1,5}|[+-]\d{4})\s+)?(\d{4})$/.exec(v);
  if (m) {
    const mo = MONTHS.indexOf(m[1]!.toLowerCase()) + 1;
    const off = zoneOffset(m[6]);
    if (mo === 0 || off === undefined) return undefined;
    return iso(+m[7]!, mo, +m[2]!, +m[3]!, +m[4]!, +m[5]!, 0, off);
  }
  return undefined;
}

/** A YYYYMMDD_HHMMSS or YYYY-MM-DD_HH-MM-SS stamp anywhere in a name (flat layout files). */
export function stampInName(name: string): { stamp: string; iso: string } | undefined {
  const compact = /(?:^|[^\d])(\d{8}_\d{6})(?![\d])/.exec(name);
  if (compact) {
    const t = parseCompactStamp(compact[1]!);
    if (t) return { stamp: compact[1]!, iso: t };
  }
  const dashed = /(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})/.exec(name);
  if (dashed) {
    const t = parseDashedStamp(dashed[1]!);
    if (t) return { stamp: dashed[1]!, iso: t };
  }
  return undefined;
}

/** `2026-01-18T01:45:13.000Z` → `2026-01-18 01:45:13` (what the list shows, labelled UTC). */
export function formatUtc(isoTime: string): string {
  return isoTime
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, '')
    .replace(/Z$/, '');
}

/** The physical layout's directory of base backups (<root>/base/<stamp>/): layouts/physical.ts. */
export const PHYSICAL_BASE_DIR = 'base';
