import { sanitizeText } from '../text/sanitize.js';
import { metadataValue } from './metadata.js';
import type { BackupSet } from './types.js';

/**
 * Which database a backup set says it holds, from what it records about itself: the dump
 * (a custom/directory archive's TOC header `dbname:`, a plain dump's CREATE DATABASE) and
 * metadata.txt (`Database:` / `PostgreSQL Database:`, or "PostgreSQL (name ...)" under
 * Components). A restore into another database than the one named is refused unless the
 * operator says why (--allow-database-mismatch).
 */

export interface DatabaseClaim {
  /** Where the name comes from, for the operator: "the dump (archive TOC dbname)", "metadata.txt Database". */
  source: string;
  name: string;
}

/** The names the set records (none when it records none). `dumpDatabase` comes from verification or probing. */
export function databaseClaims(set: BackupSet, dumpDatabase: string | undefined, dumpSource = 'the dump'): DatabaseClaim[] {
  const claims: DatabaseClaim[] = [];
  if (dumpDatabase !== undefined && dumpDatabase !== '') claims.push({ source: dumpSource, name: dumpDatabase });
  const field = metadataValue(set.metadata, 'Database', 'PostgreSQL Database');
  if (typeof field === 'string' && field.trim() !== '') claims.push({ source: 'metadata.txt Database', name: field.trim() });
  else {
    const listed = set.components.find((c) => c.kind === 'postgres')?.database;
    if (listed) claims.push({ source: 'metadata.txt Components', name: listed });
  }
  return claims;
}

/** The claims naming another database than `target`. */
export function databaseMismatches(claims: readonly DatabaseClaim[], target: string): DatabaseClaim[] {
  return claims.filter((c) => c.name !== target);
}

/** One sentence per mismatch. */
export function describeMismatch(c: DatabaseClaim, target: string): string {
  return `${c.source} names database ${sanitizeText(c.name, 80)}, but the recipe restores into ${sanitizeText(target, 80)}`;
}
