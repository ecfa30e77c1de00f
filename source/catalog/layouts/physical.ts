import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { parseLabel, parseLabelTime, parseLsn } from '../../pitr/wal.js';
import { sanitizeText } from '../../text/sanitize.js';
import { readSmallText } from '../checksums.js';
import { readEntries, type Entry } from '../files.js';
import { parseRecordedTime, PHYSICAL_BASE_DIR } from '../names.js';
import { checkTarEntry } from '../tar-safety.js';
import type { BackupComponent, BackupSet } from '../types.js';

/**
 * The physical layout: `pg_basebackup -Ft [-z] -D <root>/base/<stamp>` output, one directory per
 * base backup, holding `base.tar` or `base.tar.gz`, `backup_manifest`, and usually `pg_wal.tar[.gz]`.
 * The WAL archive (backups.walArchive) is read by source/pitr/; the catalog only lists the bases.
 *
 * Every name and field is data: the manifest is JSON read with a size cap and checked field by
 * field; the backup_label inside base.tar is read from the first entries only, and the entry
 * names are judged by tar-safety before anything is believed.
 */

export { PHYSICAL_BASE_DIR };
const BASE_TAR = /^base\.tar(\.gz)?$/;
const WAL_TAR = /^pg_wal\.tar(\.gz)?$/;
const TABLESPACE_TAR = /^\d+\.tar(\.gz)?$/;
const MANIFEST_MAX = 64 * 1024 * 1024;

export interface ManifestFacts {
  version: number;
  files: number;
  /** Sum of the file sizes the manifest lists (the extracted size of the base). */
  bytes: number;
  timeline?: number;
  startLsn?: string;
  endLsn?: string;
  systemIdentifier?: string;
}

/** The fields of a backup_manifest this tool uses, each checked; a problem string when it is not a manifest. */
export function parseManifest(text: string): ManifestFacts | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'is not JSON';
  }
  if (typeof json !== 'object' || json === null) return 'is not a JSON object';
  const m = json as Record<string, unknown>;
  const version = m['PostgreSQL-Backup-Manifest-Version'];
  if (version !== 1 && version !== 2) return 'has no PostgreSQL-Backup-Manifest-Version 1 or 2';
  const files = m['Files'];
  if (!Array.isArray(files)) return 'has no Files list';
  let bytes = 0;
  for (const f of files) {
    const size = (f as Record<string, unknown> | null)?.['Size'];
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return 'lists a file without a valid Size';
    bytes += size;
  }
  const facts: ManifestFacts = { version, files: files.length, bytes };
  const sysid = m['System-Identifier'];
  if (typeof sysid === 'number' || typeof sysid === 'string') facts.systemIdentifier = String(sysid).slice(0, 24);
  const ranges = m['WAL-Ranges'];
  if (Array.isArray(ranges) && ranges.length > 0) {
    const r = ranges[0] as Record<string, unknown>;
    const tl = r['Timeline'];
    const start = r['Start-LSN'];
    const end = r['End-LSN'];
    if (typeof tl === 'number' && Number.isInteger(tl) && tl > 0) facts.timeline = tl;
    if (typeof start === 'string' && parseLsn(start) !== undefined) facts.startLsn = start;
    if (typeof end === 'string' && parseLsn(end) !== undefined) facts.endLsn = end;
    if (ranges.length > 1) facts.timeline = undefined;
  }
  return facts;
}

/** backup_label from the first entries of base.tar (pg_basebackup writes it first); stops reading once found. */
export async function readBackupLabel(tarFile: string, maxEntries = 8): Promise<Record<string, string> | string> {
  return new Promise((resolve) => {
    let seen = 0;
    let done = false;
    const input = createReadStream(tarFile);
    const finish = (value: Record<string, string> | string): void => {
      if (done) return;
      done = true;
      input.destroy();
      resolve(value);
    };
    const parser = new Parser({
      onReadEntry: (entry: ReadEntry) => {
        seen++;
        const problem = checkTarEntry({ path: entry.path, type: entry.type, ...(entry.linkpath ? { linkpath: entry.linkpath } : {}) });
        if (problem) {
          finish(problem.message);
          return;
        }
        if (entry.path.replace(/^\.\//, '') === 'backup_label' && entry.type === 'File' && entry.size <= 64 * 1024) {
          const chunks: Buffer[] = [];
          entry.on('data', (c: Buffer) => chunks.push(c));
          entry.on('end', () => finish(parseLabel(Buffer.concat(chunks).toString('utf8'))));
          return;
        }
        entry.resume();
        if (seen >= maxEntries) finish(`no backup_label among the first ${maxEntries} entries`);
      },
    });
    parser.on('error', (e: Error) => finish(`cannot be read as tar (${e.message})`));
    parser.on('end', () => finish('has no backup_label'));
    input.on('error', (e: NodeJS.ErrnoException) => finish(`cannot be read (${e.code ?? e.message})`));
    input.pipe(parser as unknown as NodeJS.WritableStream);
  });
}

/** One base backup directory as a set (undefined when it holds no base.tar). */
async function baseSet(root: string, dir: Entry, warnings: string[]): Promise<BackupSet | undefined> {
  const rel = `base/${sanitizeText(dir.name, 80)}/`;
  const entries = await readEntries(dir.full).catch(() => [] as Entry[]);
  const base = entries.find((e) => e.isFile && BASE_TAR.test(e.name));
  if (!base) {
    warnings.push(`${rel} has no base.tar or base.tar.gz (ignored)`);
    return undefined;
  }
  const setWarnings: string[] = [];
  const metadata: Record<string, string> = {};
  const tablespaces = entries.filter((e) => TABLESPACE_TAR.test(e.name));
  if (tablespaces.length > 0) {
    // pg_basebackup -Ft writes one <oid>.tar per tablespace; restores refuse these bases (pitr/tablespaces.ts).
    metadata['tablespaceTars'] = tablespaces.map((t) => sanitizeText(t.name, 40)).join(',');
    setWarnings.push(
      `${rel} has tablespace archives (${tablespaces.map((t) => sanitizeText(t.name, 40)).join(', ')}): restore-assistant cannot restore tablespaces; a restore of this base refuses in preflight`,
    );
  }
  const wal = entries.find((e) => e.isFile && WAL_TAR.test(e.name));
  if (wal) metadata['pgWalTar'] = wal.full;
  const manifestEntry = entries.find((e) => e.name === 'backup_manifest');
  if (!manifestEntry?.isFile) setWarnings.push(`${rel}backup_manifest is missing: the base cannot be verified`);
  else {
    metadata['manifest'] = manifestEntry.full;
    try {
      const { text } = await readSmallText(manifestEntry.full, MANIFEST_MAX);
      const facts = parseManifest(text);
      if (typeof facts === 'string') setWarnings.push(`${rel}backup_manifest ${facts}`);
      else {
        metadata['manifestFiles'] = String(facts.files);
        metadata['extractedBytes'] = String(facts.bytes);
        if (facts.timeline !== undefined) metadata['timeline'] = String(facts.timeline);
        if (facts.startLsn) metadata['startLsn'] = facts.startLsn;
        if (facts.endLsn) metadata['endLsn'] = facts.endLsn;
        if (facts.systemIdentifier) metadata['systemIdentifier'] = facts.systemIdentifier;
      }
    } catch (error) {
      setWarnings.push(`${rel}backup_manifest cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  }
  let time: string | undefined;
  const label = await readBackupLabel(base.full);
  if (typeof label === 'string') setWarnings.push(`${rel}${base.name} ${sanitizeText(label, 200)}`);
  else {
    time = parseLabelTime(label['START TIME']);
    if (label['LABEL']) metadata['label'] = sanitizeText(label['LABEL'], 120);
    if (label['START TIME']) metadata['startTime'] = sanitizeText(label['START TIME'], 60);
    const loc = /^([0-9A-F]{1,8}\/[0-9A-F]{1,8})/i.exec(label['START WAL LOCATION'] ?? '');
    if (loc?.[1] && !metadata['startLsn']) metadata['startLsn'] = loc[1];
    if (label['START TIMELINE'] && /^\d{1,9}$/.test(label['START TIMELINE']) && !metadata['timeline'])
      metadata['timeline'] = label['START TIMELINE'];
  }
  const nameTime = parseRecordedTime(dir.name);
  if (!time && !nameTime) {
    warnings.push(`${rel} records no start time (no readable backup_label, no time in its name): ignored`);
    return undefined;
  }
  const size = (await lstat(base.full)).size;
  const component: BackupComponent = {
    kind: 'postgres',
    format: 'pg-base-tar',
    path: base.full,
    size,
    checksum: 'absent',
    time: time ?? nameTime ?? '',
  };
  return {
    id: dir.name,
    layout: 'physical',
    root,
    location: dir.full,
    time: (time ?? nameTime)!,
    timeSource: time ? 'metadata' : 'name',
    components: [component],
    metadata,
    warnings: setWarnings,
    totalSize: size + (wal ? (await lstat(wal.full)).size : 0),
  };
}

/** Every base backup under `<root>/base/`. */
export async function listPhysical(root: string, entries: Entry[], warnings: string[]): Promise<BackupSet[]> {
  const baseDir = entries.find((e) => e.isDir && e.name === PHYSICAL_BASE_DIR);
  if (!baseDir) {
    warnings.push(`${root} has no base/ directory (pg_basebackup -Ft -D ${path.join(root, 'base', '<stamp>')})`);
    return [];
  }
  const sets: BackupSet[] = [];
  for (const e of await readEntries(baseDir.full)) {
    if (!e.isDir) continue;
    const set = await baseSet(root, e, warnings);
    if (set) sets.push(set);
  }
  return sets;
}
