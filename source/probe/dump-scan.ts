import { open } from 'node:fs/promises';
import { parseRestoreList, versionOf } from '../catalog/pg-restore-list.js';
import { fileIdentity, sameIdentity } from '../catalog/identity.js';
import { SqlRoleScanner, type SqlScanResult } from '../catalog/sql-roles.js';
import type { FileIdentity } from '../catalog/types.js';
import { createGunzip } from 'node:zlib';

/** The role scan lives in catalog/sql-roles.ts (deep verification runs it in its one read of the file). */
export { rolesInLine, scanSqlStream, type SqlScanResult } from '../catalog/sql-roles.js';

/**
 * Scan a plain dump file (.sql, or .sql.gz through gunzip). A corrupt .gz rejects. `identity`
 * names the file that was read (one descriptor, unchanged from the first byte to the last),
 * so what was learned can be carried to the preflight instead of reading the file again.
 */
export async function scanPlainDump(file: string, gzip: boolean): Promise<SqlScanResult & { identity?: FileIdentity }> {
  const fh = await open(file, 'r');
  try {
    const before = fileIdentity(await fh.stat());
    const raw = fh.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 });
    const scanner = new SqlRoleScanner();
    await new Promise<void>((resolve, reject) => {
      raw.on('error', reject);
      scanner.on('error', reject);
      scanner.on('finish', resolve);
      if (gzip) {
        const gunzip = createGunzip();
        gunzip.on('error', reject);
        raw.pipe(gunzip).pipe(scanner);
      } else raw.pipe(scanner);
    });
    const after = fileIdentity(await fh.stat());
    return { ...scanner.result!, ...(sameIdentity(before, after) ? { identity: before } : {}) };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** The probe's dump facts from `pg_restore --list` (catalog/pg-restore-list.ts parses it). */
export function restoreListDumpFacts(text: string): {
  pgDumpVersion?: string;
  serverVersion?: string;
  tocEntries: number;
  database?: string;
  createdAt?: string;
} {
  const list = parseRestoreList(text);
  const pgDumpVersion = versionOf(list.headers['Dumped by pg_dump version']);
  const serverVersion = versionOf(list.headers['Dumped from database version']);
  const database = list.headers['dbname'];
  const createdAt = list.createdAt;
  return {
    tocEntries: list.tocEntries,
    ...(pgDumpVersion ? { pgDumpVersion } : {}),
    ...(serverVersion ? { serverVersion } : {}),
    ...(database ? { database } : {}),
    ...(createdAt ? { createdAt } : {}),
  };
}
