import type { BackupSet } from '../catalog/types.js';
import { sanitizeText } from '../text/sanitize.js';

/**
 * Base backups with tablespaces. `pg_basebackup -Ft` writes base.tar for the data directory and one
 * `<oid>.tar` per tablespace, whose files belong at the tablespace's own location (base.tar's
 * tablespace_map names it; pg_tblspc/<oid> links to it). This tool extracts base.tar only, so a
 * restore of such a base would start a cluster whose tablespaces are missing or, worse, point at
 * the live tablespace directories of the cluster being replaced. It refuses before anything is
 * touched instead, saying what to do.
 */

/** The tablespace archives of a base (`16384.tar`, ...), empty when it has none. */
export function tablespaceTars(set: BackupSet): string[] {
  const v = set.metadata['tablespaceTars'];
  return typeof v === 'string' && v !== '' ? v.split(',') : [];
}

/** The refusal (what, why, what to do), or undefined when the base has no tablespaces. */
export function tablespaceRefusal(set: BackupSet): { what: string; why: string; next: string } | undefined {
  const tars = tablespaceTars(set);
  if (tars.length === 0) return undefined;
  const id = sanitizeText(set.id, 80);
  return {
    what: `base ${id} has ${tars.length} tablespace archive${tars.length === 1 ? '' : 's'} (${tars.join(', ')}) beside base.tar`,
    why: 'restore-assistant extracts base.tar into the data directory only; the tablespaces would be missing, or their pg_tblspc links would point at the live tablespace directories of the cluster being replaced (tablespace_map)',
    next: `restore this base by hand (extract base.tar into the data directory and each <oid>.tar into the location tablespace_map in base.tar names for it, or pg_basebackup's --tablespace-mapping semantics), or move the tables to pg_default (ALTER TABLE ... SET TABLESPACE pg_default) so later base backups have no tablespace archives`,
  };
}
