import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { restoreListDumpFacts, rolesInLine, scanSqlStream } from '../../source/probe/dump-scan.js';
import { majorOf, parseClientVersion, psqlAcceptsRestrict } from '../../source/probe/index.js';

describe('roles a dump references', () => {
  it('finds OWNER TO, GRANT/REVOKE lists, FOR ROLE, AUTHORIZATION, quoted names; skips PUBLIC and pg_ roles', () => {
    expect(rolesInLine('ALTER TABLE public.t OWNER TO ghost_role;')).toEqual(['ghost_role']);
    expect(rolesInLine('GRANT SELECT ON TABLE public.t TO reader, "Odd ""Name""" WITH GRANT OPTION;')).toEqual(['reader', 'Odd "Name"']);
    expect(rolesInLine('REVOKE ALL ON SCHEMA public FROM PUBLIC;')).toEqual([]);
    expect(rolesInLine('ALTER SCHEMA public OWNER TO pg_database_owner;')).toEqual([]);
    expect(rolesInLine('ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO app_reader;')).toEqual(
      expect.arrayContaining(['app_owner', 'app_reader']),
    );
    expect(rolesInLine('CREATE SCHEMA s AUTHORIZATION Schema_Owner;')).toEqual(['schema_owner']);
    expect(rolesInLine("SET SESSION AUTHORIZATION 'o''brien';")).toEqual(["o'brien"]);
    expect(rolesInLine('GRANT app_reader TO app_user;')).toEqual(['app_user']);
  });

  it('streams a script: header versions, \\restrict, COPY data skipped, wrapped statements joined', async () => {
    const sql = [
      '\\restrict AbCdEf123',
      '--',
      '-- PostgreSQL database dump',
      '-- Dumped from database version 17.6',
      '-- Dumped by pg_dump version 17.6',
      'CREATE TABLE public.t (id int, note text);',
      'ALTER TABLE public.t OWNER TO owner_a;',
      'COPY public.t (id, note) FROM stdin;',
      '1\tALTER TABLE x OWNER TO data_not_role;',
      '2\tGRANT ALL ON t TO data_not_role2;',
      '\\.',
      'GRANT SELECT ON TABLE public.t',
      '    TO wrapped_reader;',
      '\\unrestrict AbCdEf123',
    ].join('\n');
    const r = await scanSqlStream(Readable.from([sql]));
    expect(r.restrict).toBe(true);
    expect(r.pgDumpVersion).toBe('17.6');
    expect(r.serverVersion).toBe('17.6');
    expect(r.roles).toEqual(['owner_a', 'wrapped_reader']);
  });

  it('finds \\restrict after the header comment, where pg_dump 15.14+ writes it, and only there', async () => {
    const real = ['--', '-- PostgreSQL database dump', '--', '', '\\restrict AbCdEf123', '', 'SELECT 1;'].join('\n');
    expect((await scanSqlStream(Readable.from([real]))).restrict).toBe(true);
    const late = ['--', 'SELECT 1;', '\\restrict AbCdEf123'].join('\n');
    expect((await scanSqlStream(Readable.from([late]))).restrict).toBe(false);
  });

  it('parses pg_restore --list headers and counts TOC entries', () => {
    const list = [
      ';',
      '; Archive created at 2026-01-18 01:45:13 UTC',
      ';     dbname: metachat',
      ';     Dumped from database version: 15.12',
      ';     Dumped by pg_dump version: 15.12',
      ';',
      '215; 1259 16385 TABLE public t postgres',
      '3370; 0 16385 TABLE DATA public t postgres',
      ';3371; 0 0 ACL - SCHEMA public pg_database_owner',
    ].join('\n');
    expect(restoreListDumpFacts(list)).toEqual({
      tocEntries: 2,
      pgDumpVersion: '15.12',
      serverVersion: '15.12',
      database: 'metachat',
      createdAt: '2026-01-18 01:45:13 UTC',
    });
  });
});

describe('client versions and \\restrict', () => {
  it('parses client versions and majors', () => {
    expect(parseClientVersion('psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toBe('15.18');
    expect(parseClientVersion('pg_restore (PostgreSQL) 17.6')).toBe('17.6');
    expect(parseClientVersion('bash: psql: command not found')).toBeUndefined();
    expect(majorOf('16.10')).toBe(16);
    expect(majorOf(undefined)).toBeUndefined();
  });

  it('knows the first psql minor of each major that accepts \\restrict', () => {
    expect(psqlAcceptsRestrict('17.6')).toBe(true);
    expect(psqlAcceptsRestrict('17.5')).toBe(false);
    expect(psqlAcceptsRestrict('16.10')).toBe(true);
    expect(psqlAcceptsRestrict('16.9')).toBe(false);
    expect(psqlAcceptsRestrict('15.14')).toBe(true);
    expect(psqlAcceptsRestrict('15.13')).toBe(false);
    expect(psqlAcceptsRestrict('14.19')).toBe(true);
    expect(psqlAcceptsRestrict('13.22')).toBe(true);
    expect(psqlAcceptsRestrict('13.21')).toBe(false);
    expect(psqlAcceptsRestrict('12.22')).toBe(false);
    expect(psqlAcceptsRestrict('18.0')).toBe(true);
  });
});
