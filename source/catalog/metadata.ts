/**
 * metadata.txt of the story-portal layout: free-form "Key: value" lines and indented "  - item"
 * lists under a "Key:" line. It is data written by a shell script and possibly by an attacker:
 * nothing in it is ever run, every line is capped, control characters (NUL, ESC, ...) are
 * stripped, and anything odd becomes a warning.
 */

import { sanitizeText } from '../text/sanitize.js';

/** Longest line kept (characters); the rest of a longer line is dropped with a warning. */
export const METADATA_MAX_LINE = 4096;
/** At most this many bytes of metadata.txt are read. */
export const METADATA_MAX_BYTES = 1024 * 1024;
/** At most this many keys are kept. */
const MAX_KEYS = 500;
/** At most this many items per list. */
const MAX_ITEMS = 1000;
/** At most this many individual warnings; then one summary line. */
const MAX_WARNINGS = 20;

export interface ParsedMetadata {
  metadata: Record<string, string | string[]>;
  warnings: string[];
}

// C0 controls except TAB, DEL, and C1 controls (ESC sequences would repaint an operator's terminal).
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;
// Shell syntax that has no business in a metadata value: worth a warning (it is never run).
const SHELL_SYNTAX = /\$\(|`|\$\{|;|&&|\|\||[|<>]/;

/** Parse metadata.txt text. Never throws; odd content becomes warnings. */
export function parseMetadata(text: string, fileLabel = 'metadata.txt'): ParsedMetadata {
  const metadata: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  const warnings: string[] = [];
  let suppressed = 0;
  const warn = (message: string): void => {
    if (warnings.length < MAX_WARNINGS) warnings.push(message);
    else suppressed++;
  };

  if (text.includes('\u0000')) warn(`${fileLabel} contains NUL bytes (removed); it may be corrupt or not a text file`);
  let controlWarned = false;
  let listKey: string | undefined;
  let keyCount = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i] ?? '';
    if (line.length > METADATA_MAX_LINE) {
      warn(`${fileLabel} line ${lineNo} is ${line.length} characters long; only the first ${METADATA_MAX_LINE} were read`);
      line = line.slice(0, METADATA_MAX_LINE);
    }
    const withoutNul = line.replace(/\u0000/g, '');
    const stripped = withoutNul.replace(CONTROL, '');
    if (stripped !== withoutNul && !controlWarned) {
      warn(`${fileLabel} line ${lineNo} contains control characters (removed)`);
      controlWarned = true;
    }
    line = stripped;
    if (line.trim() === '') continue;

    const item = /^\s+[-*]\s?(.*)$/.exec(line);
    if (item) {
      const value = (item[1] ?? '').trim();
      if (listKey === undefined) {
        warn(`${fileLabel} line ${lineNo}: list item outside a "Key:" list (ignored)`);
        continue;
      }
      const current = metadata[listKey];
      const list = Array.isArray(current) ? current : [];
      if (list.length < MAX_ITEMS) list.push(value);
      metadata[listKey] = list;
      checkShell(value, listKey, lineNo);
      continue;
    }
    const kv = /^([^\s:][^:]{0,199}):\s*(.*)$/.exec(line);
    if (kv) {
      const key = (kv[1] ?? '').trim();
      const value = (kv[2] ?? '').trim();
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
        warn(`${fileLabel} line ${lineNo}: key "${key}" ignored`);
        listKey = undefined;
        continue;
      }
      if (!(key in metadata)) {
        if (keyCount >= MAX_KEYS) {
          warn(`${fileLabel} has more than ${MAX_KEYS} keys; the rest were ignored`);
          break;
        }
        keyCount++;
      } else {
        warn(`${fileLabel} line ${lineNo}: key "${key}" appears more than once (the last one is kept)`);
      }
      if (value === '') {
        metadata[key] = [];
        listKey = key;
      } else {
        metadata[key] = value;
        listKey = undefined;
        checkShell(value, key, lineNo);
      }
      continue;
    }
    if (/^\s/.test(line) && listKey !== undefined) {
      // An indented continuation without a dash: keep it as a list item.
      const value = line.trim();
      const current = metadata[listKey];
      const list = Array.isArray(current) ? current : [];
      if (list.length < MAX_ITEMS) list.push(value);
      metadata[listKey] = list;
      checkShell(value, listKey, lineNo);
      continue;
    }
    // "Backup Size:" followed by an unindented "12M" (du output): the value of the empty key.
    const pending = listKey !== undefined ? metadata[listKey] : undefined;
    if (listKey !== undefined && Array.isArray(pending) && pending.length === 0) {
      metadata[listKey] = line.trim();
      checkShell(line.trim(), listKey, lineNo);
      listKey = undefined;
      continue;
    }
    // Free text (a title, a separator): kept out of the parsed keys, flagged only when it looks like code.
    listKey = undefined;
    if (SHELL_SYNTAX.test(line)) warn(`${fileLabel} line ${lineNo} contains shell syntax; it is treated as text and never run`);
  }
  if (suppressed > 0) warnings.push(`${fileLabel}: ${suppressed} more warning${suppressed === 1 ? '' : 's'} not shown`);
  // A plain object for JSON output (the null prototype only guards parsing).
  return { metadata: { ...metadata }, warnings };

  function checkShell(value: string, key: string, lineNo: number): void {
    if (SHELL_SYNTAX.test(value)) {
      warn(
        `${fileLabel} line ${lineNo}: the value of "${sanitizeText(key, 60)}" contains shell syntax; it is treated as text and never run`,
      );
    }
  }
}

/** Look a key up case-insensitively, ignoring spaces, dashes and underscores ("Backup Date" = "backup_date"). */
export function metadataValue(metadata: Record<string, string | string[]>, ...names: string[]): string | string[] | undefined {
  const norm = (k: string): string => k.toLowerCase().replace(/[\s_-]+/g, '');
  const wanted = new Set(names.map(norm));
  for (const [k, v] of Object.entries(metadata)) if (wanted.has(norm(k))) return v;
  return undefined;
}
