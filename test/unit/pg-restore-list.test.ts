import { describe, expect, it } from 'vitest';
import { parseRestoreList, versionOf } from '../../source/catalog/pg-restore-list.js';

describe('the one pg_restore --list parser', () => {
  const list = [
    ';',
    '; Archive created at 2026-01-18 01:45:13 UTC',
    ';     dbname: metachat',
    ';     TOC Entries: 3',
    ';     Compression: gzip',
    ';     Dump Version: 1.15-0',
    ';     Format: CUSTOM',
    ';     Dumped from database version: 15.12 (Debian 15.12-0+deb12u1)',
    ';     Dumped by pg_dump version: 15.12',
    ';',
    ';',
    '; Selected TOC Entries:',
    ';',
    '215; 1259 16385 TABLE public t postgres',
    '',
    '3370; 0 16385 TABLE DATA public t postgres',
    ';3371; 0 0 ACL - SCHEMA public pg_database_owner',
  ].join('\n');

  it('counts the entries pg_restore will process (not commented-out ones, not blank lines) and keeps the header count apart', () => {
    const parsed = parseRestoreList(list);
    expect(parsed.tocEntries).toBe(2);
    expect(parsed.tocHeaderEntries).toBe(3);
    expect(parsed.createdAt).toBe('2026-01-18 01:45:13 UTC');
    expect(parsed.headers).toMatchObject({
      dbname: 'metachat',
      Compression: 'gzip',
      Format: 'CUSTOM',
      'Dump Version': '1.15-0',
      'Dumped from database version': '15.12 (Debian 15.12-0+deb12u1)',
      'Dumped by pg_dump version': '15.12',
    });
    expect(versionOf(parsed.headers['Dumped from database version'])).toBe('15.12');
  });

  it('sanitises hostile header values (the archive names its own database)', () => {
    const parsed = parseRestoreList(';     dbname: evil\u001b[2Jname\n1; x');
    expect(parsed.headers['dbname']).not.toContain('\u001b');
    expect(parsed.tocEntries).toBe(1);
  });
});
