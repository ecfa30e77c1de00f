import { sanitizeText } from '../text/sanitize.js';

/**
 * The one parser of `pg_restore --list` output (verification's facts, the probe's dump facts, the
 * engine's progress total). The archive is hostile: every value is sanitised and length-capped.
 */

export interface RestoreList {
  /** TOC entries pg_restore will process (`ID; ...` lines; `;ID; ...` lines are commented out). */
  tocEntries: number;
  /** The header's own "TOC Entries:" count (includes entries pg_restore skips). */
  tocHeaderEntries?: number;
  /** `; Archive created at ...`. */
  createdAt?: string;
  /** `;     key: value` header lines, by key ("dbname", "Dumped by pg_dump version", "Format", ...). */
  headers: Record<string, string>;
}

export function parseRestoreList(text: string): RestoreList {
  const headers: Record<string, string> = {};
  let createdAt: string | undefined;
  let tocEntries = 0;
  for (const line of text.split('\n')) {
    if (/^\d+;/.test(line)) {
      tocEntries++;
      continue;
    }
    const created = /^; Archive created at (.+)$/.exec(line);
    if (created) {
      createdAt ??= sanitizeText(created[1]!.trim(), 60);
      continue;
    }
    const header = /^;\s+([A-Za-z][A-Za-z_ ]*?):\s*(.+)$/.exec(line);
    if (header && !(header[1]! in headers)) headers[header[1]!] = sanitizeText(header[2]!.trim(), 120);
  }
  const toc = headers['TOC Entries'];
  return {
    tocEntries,
    ...(toc && /^\d+$/.test(toc) ? { tocHeaderEntries: Number(toc) } : {}),
    ...(createdAt ? { createdAt } : {}),
    headers,
  };
}

/** The first word of a version header ("15.12" of "15.12 (Debian 15.12-0+deb12u1)"). */
export function versionOf(header: string | undefined): string | undefined {
  return header ? /^\S+/.exec(header)?.[0] : undefined;
}
