/**
 * Redaction: every byte restore-assistant writes to a log, the screen or evidence passes through
 * a Redactor. It removes known secret values (e.g. the passwords read from the environment
 * variables a recipe names) and anything shaped like a credential.
 */
export interface Redactor {
  (text: string): string;
  /** The same redactor plus more secret values. */
  with(secrets: Iterable<string | undefined>): Redactor;
}

const MASK = '****';

const patterns: ReadonlyArray<[RegExp, string]> = [
  // scheme://user:password@host
  [/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, `$1${MASK}@`],
  // password=..., passwd: ..., secret=..., token=... (key=value, key: value, libpq strings)
  [/\b((?:[A-Za-z_]*_)?(?:password|passwd|pwd|secret|token|api[_-]?key|auth)\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)/gi, `$1${MASK}`],
  // redis-cli -a <password> / --pass <password>
  [/(\s(?:-a|--pass|--askpass-value)\s+)(\S+)/g, `$1${MASK}`],
  // Authorization: Bearer xyz
  [/(\bBearer\s+)[A-Za-z0-9._~+/=-]+/g, `$1${MASK}`],
];

export function createRedactor(secrets: Iterable<string | undefined> = []): Redactor {
  // Longest first, so a secret that contains another is masked whole. Very short values
  // (under 4 characters) would mask ordinary words; they are still masked when they appear
  // after a credential keyword (patterns above).
  const values = [...new Set([...secrets].filter((s): s is string => typeof s === 'string' && s.length >= 4))].sort(
    (a, b) => b.length - a.length,
  );
  const redact = ((text: string): string => {
    let out = text;
    for (const value of values) out = out.split(value).join(MASK);
    for (const [re, replacement] of patterns) out = out.replace(re, replacement);
    return out;
  }) as Redactor;
  redact.with = (more) => createRedactor([...values, ...more]);
  return redact;
}

/** Redact every string in a JSON-able value (objects, arrays, nested). */
export function redactDeep<T>(value: T, redact: Redactor): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, redact);
    return out as T;
  }
  return value;
}
