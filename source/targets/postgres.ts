import path from 'node:path';
import { contextLabel, copyIntoArgv, wrapArgv } from '../exec/context.js';
import { factRef, pathFact, type PlannedAction, type PlannedCommand } from '../actions/types.js';
import type { PostgresTarget } from '../recipe/schema.js';

/**
 * What each PostgreSQL step runs, as argv in the component's exec context. Secrets only through
 * the environment (PGPASSWORD from the recipe's passwordEnv), never argv. Every psql runs with
 * -X (no psqlrc), ON_ERROR_STOP and --no-password (never waits for a prompt at 3 a.m.).
 * SQL that names the database takes the name as a quoted literal and builds identifiers
 * server-side with format('%I'), so hostile names are data, never SQL.
 */

/** PostgreSQL's NAMEDATALEN - 1: identifiers longer than this are truncated by the server. */
export const MAX_IDENTIFIER_BYTES = 63;

/** "name" with embedded quotes doubled (PostgreSQL quote_ident, always quoted). */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('identifier contains a NUL byte');
  return `"${name.replace(/"/g, '""')}"`;
}

/** 'text' with quotes doubled; E'' with doubled backslashes when it holds a backslash (quote_literal). */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('literal contains a NUL byte');
  const doubled = text.replace(/'/g, "''");
  return text.includes('\\') ? `E'${doubled.replace(/\\/g, '\\\\')}'` : `'${doubled}'`;
}

/** $tag$body$tag$ with a tag that does not occur in body. */
export function dollarQuote(body: string): string {
  let tag = 'ra';
  for (let i = 1; body.includes(`$${tag}$`); i++) tag = `ra${i}`;
  return `$${tag}$${body}$${tag}$`;
}

/** Truncate to at most `max` UTF-8 bytes without splitting a character. */
export function truncateBytes(text: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** `<db>__pre_restore_<stamp>`, the database name shortened so the whole fits 63 bytes. */
export function safetyDatabaseName(database: string, stamp: string): string {
  const suffix = `__pre_restore_${stamp}`;
  return truncateBytes(database, MAX_IDENTIFIER_BYTES - Buffer.byteLength(suffix, 'utf8')) + suffix;
}

/** A DO block that runs body (PL/pgSQL statements). */
export function doBlock(body: string): string {
  return `DO ${dollarQuote(` BEGIN ${body} END `)}`;
}

function dbExists(db: string): string {
  return `EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(db)})`;
}

function bin(target: PostgresTarget, tool: string): string {
  // Paths inside a container are POSIX; on the host too (Linux).
  return target.bin ? path.posix.join(target.bin, tool) : tool;
}

function connection(target: PostgresTarget, database: string): string[] {
  return ['-h', target.host, '-p', String(target.port), '-U', target.user, '-d', database];
}

function envFrom(target: PostgresTarget): Pick<PlannedCommand, 'envFrom'> {
  return target.passwordEnv ? { envFrom: { PGPASSWORD: target.passwordEnv } } : {};
}

function envNames(target: PostgresTarget): string[] {
  return target.passwordEnv ? ['PGPASSWORD'] : [];
}

/** psql with the safe flags, connected to `database`. */
export function psqlBase(target: PostgresTarget, database: string): string[] {
  return [bin(target, 'psql'), '-X', '-v', 'ON_ERROR_STOP=1', '--no-psqlrc', '--no-password', ...connection(target, database)];
}

/** A planned psql command running each SQL statement with its own -c (separate transactions). */
export function psqlCommand(
  target: PostgresTarget,
  opts: { database?: string; sql: string[]; purpose: string; tuplesOnly?: boolean; timeoutSeconds?: number },
): PlannedCommand {
  const argv = [
    ...psqlBase(target, opts.database ?? target.maintenanceDatabase),
    ...(opts.tuplesOnly ? ['-At'] : []),
    ...opts.sql.flatMap((s) => ['-c', s]),
  ];
  return {
    argv: wrapArgv(target.exec, argv, { env: envNames(target) }),
    purpose: opts.purpose,
    runsIn: contextLabel(target.exec),
    ...envFrom(target),
    ...(opts.timeoutSeconds ? { timeoutSeconds: opts.timeoutSeconds } : {}),
  };
}

function exec(cmd: PlannedCommand): PlannedAction {
  return { type: 'exec', ...cmd };
}

/** Refuse new connections, then end the other sessions on the database, then wait until they are gone. */
export function terminateActions(target: PostgresTarget): PlannedAction[] {
  const db = target.database;
  return [
    exec(
      psqlCommand(target, {
        purpose: `Refuse new connections to ${db} and end its other sessions`,
        sql: [
          doBlock(`IF ${dbExists(db)} THEN EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS false', ${quoteLiteral(db)}); END IF;`),
          `SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE datname = ${quoteLiteral(db)} AND pid <> pg_catalog.pg_backend_pid()`,
        ],
        timeoutSeconds: 60,
      }),
    ),
    {
      type: 'wait-command',
      purpose: `Wait until no session is connected to ${db}`,
      untilExit: 'zero',
      timeoutSeconds: 60,
      command: psqlCommand(target, {
        purpose: `Fail while sessions are connected to ${db}`,
        sql: [
          doBlock(
            `IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE datname = ${quoteLiteral(db)} AND pid <> pg_catalog.pg_backend_pid()) THEN RAISE EXCEPTION 'sessions still connected'; END IF;`,
          ),
        ],
        timeoutSeconds: 30,
      }),
    },
  ];
}

/** Undo of terminate: allow connections again (to whatever database now has the name). */
export function allowConnectionsActions(target: PostgresTarget, database = target.database): PlannedAction[] {
  return [
    exec(
      psqlCommand(target, {
        purpose: `Allow connections to ${database} again`,
        sql: [
          doBlock(
            `IF ${dbExists(database)} THEN EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS true', ${quoteLiteral(database)}); END IF;`,
          ),
        ],
        timeoutSeconds: 60,
      }),
    ),
  ];
}

/** Rename the database aside (when it exists); refuses when the aside name is taken. */
/** The OID of the database renamed aside (the safety copy), or `none`: `safety-copies drop` drops only that database. */
export const ASIDE_OID_FACT = 'postgres.asideOid';
/** The identity of the pg_dump safety copy file (engine/path-identity.ts). */
export const SAFETY_DUMP_FACT = pathFact('postgres.safety-dump');

export function renameAsideActions(target: PostgresTarget, aside: string): PlannedAction[] {
  const db = target.database;
  return [
    exec(
      psqlCommand(target, {
        purpose: `Rename ${db} to ${aside} (the safety copy)`,
        sql: [
          doBlock(
            `IF ${dbExists(db)} THEN IF ${dbExists(aside)} THEN RAISE EXCEPTION 'database % already exists; not overwriting it', ${quoteLiteral(aside)}; END IF; ` +
              `EXECUTE format('ALTER DATABASE %I RENAME TO %I', ${quoteLiteral(db)}, ${quoteLiteral(aside)}); END IF;`,
          ),
        ],
        timeoutSeconds: 120,
      }),
    ),
    exec({
      ...psqlCommand(target, {
        purpose: `Record the OID of ${aside} (the safety copy: it is dropped later only if it is still that database)`,
        sql: [`SELECT COALESCE((SELECT oid::text FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(aside)}), 'none')`],
        tuplesOnly: true,
        timeoutSeconds: 60,
      }),
      record: { fact: ASIDE_OID_FACT, pattern: '^([0-9]+|none)$', what: `the OID of the safety copy ${aside}` },
    }),
  ];
}

/** Undo of the rename: put the safety copy back under its name (refuses when that name is taken). */
export function renameBackActions(target: PostgresTarget, aside: string): PlannedAction[] {
  const db = target.database;
  return [
    exec(
      psqlCommand(target, {
        purpose: `Rename ${aside} back to ${db}`,
        sql: [
          doBlock(
            `IF ${dbExists(aside)} THEN IF ${dbExists(db)} THEN RAISE EXCEPTION 'database % exists; drop it by hand before renaming % back', ${quoteLiteral(db)}, ${quoteLiteral(aside)}; END IF; ` +
              `EXECUTE format('ALTER DATABASE %I RENAME TO %I', ${quoteLiteral(aside)}, ${quoteLiteral(db)}); END IF;`,
          ),
        ],
        timeoutSeconds: 120,
      }),
    ),
  ];
}

/** End sessions and drop the database (IF EXISTS). */
export function dropDatabaseActions(target: PostgresTarget, purpose: string): PlannedAction[] {
  const db = target.database;
  return [
    exec(
      psqlCommand(target, {
        purpose,
        sql: [
          `SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE datname = ${quoteLiteral(db)} AND pid <> pg_catalog.pg_backend_pid()`,
          `DROP DATABASE IF EXISTS ${quoteIdent(db)}`,
        ],
        timeoutSeconds: 300,
      }),
    ),
  ];
}

/** CREATE DATABASE with owner, encoding, locale and template from the recipe. */
export function createDatabaseSql(target: PostgresTarget): string {
  const owner = target.owner ?? target.user;
  const parts = [
    `CREATE DATABASE ${quoteIdent(target.database)}`,
    `OWNER ${quoteIdent(owner)}`,
    `ENCODING ${quoteLiteral(target.encoding)}`,
    `TEMPLATE ${quoteIdent(target.template)}`,
  ];
  if (target.locale) parts.push(`LC_COLLATE ${quoteLiteral(target.locale)}`, `LC_CTYPE ${quoteLiteral(target.locale)}`);
  return parts.join(' ');
}

export function createDatabaseActions(target: PostgresTarget): PlannedAction[] {
  return [
    exec(psqlCommand(target, { purpose: `Create database ${target.database}`, sql: [createDatabaseSql(target)], timeoutSeconds: 300 })),
  ];
}

/** The run facts of undo by identity: the OID of the database this run created, and the highest database OID before it. */
export const CREATED_OID_FACT = 'postgres.createdOid';
export const OID_WATERMARK_FACT = 'postgres.oidWatermark';

/**
 * The create step: record the highest database OID, CREATE DATABASE, record the new database's
 * OID. Its undo drops only that database; when the run died between the CREATE and the record,
 * only a database under the name with an OID above the watermark (made after this run's create
 * began; the locks keep other restores out) counts as this run's.
 */
export function createDatabaseRecordedActions(target: PostgresTarget): PlannedAction[] {
  const record = (purpose: string, sql: string, fact: string, what: string): PlannedAction =>
    exec({
      ...psqlCommand(target, { purpose, sql: [sql], tuplesOnly: true, timeoutSeconds: 60 }),
      record: { fact, pattern: '^[0-9]+$', what },
    });
  return [
    record(
      `Record the highest database OID before creating ${target.database}`,
      'SELECT COALESCE(max(oid), 0) FROM pg_catalog.pg_database',
      OID_WATERMARK_FACT,
      'the highest database OID before the create',
    ),
    ...createDatabaseActions(target),
    record(
      `Record the OID of the new database ${target.database} (the rollback drops only that database)`,
      `SELECT oid FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(target.database)}`,
      CREATED_OID_FACT,
      `the OID of database ${target.database} created by this run`,
    ),
  ];
}

/**
 * Undo of the create, by identity: the database with the OID this run recorded (or, when the run
 * died before recording it, the one under the name created after the watermark), only while it is
 * still named `database`. None: nothing to do. Renamed: refused with the exact state. Connections
 * are refused and ended by OID, then it is renamed to a name of this run before the DROP (which
 * cannot run in a transaction, so cannot check the OID itself).
 */
export function dropCreatedDatabaseActions(target: PostgresTarget, stamp: string): PlannedAction[] {
  const db = target.database;
  const ours = `COALESCE(${factRef(CREATED_OID_FACT, { orNull: true })}::oid, (SELECT oid FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(db)} AND oid > ${factRef(OID_WATERMARK_FACT, { orNull: true })}::oid))`;
  const suffix = `__undo_${stamp}`;
  const doomed = truncateBytes(db, MAX_IDENTIFIER_BYTES - Buffer.byteLength(suffix, 'utf8')) + suffix;
  const check =
    `DECLARE o oid := ${ours}; n name; BEGIN IF o IS NULL THEN RAISE NOTICE 'this run created no database %', ${quoteLiteral(db)}; RETURN; END IF; ` +
    `SELECT datname INTO n FROM pg_catalog.pg_database WHERE oid = o; ` +
    `IF n IS NULL THEN RAISE NOTICE 'the database this run created (OID %) is gone already', o; RETURN; END IF; ` +
    `IF n <> ${quoteLiteral(db)} THEN RAISE EXCEPTION 'the database this run created (OID %) is now named %, not %: not dropping it (drop it by hand once you know what it holds)', o, n, ${quoteLiteral(db)}; END IF; `;
  return [
    exec(
      psqlCommand(target, {
        purpose: `Drop the database this run created (${db}, by its OID), only if it is still that database`,
        sql: [
          `DO ${dollarQuote(` ${check}EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS false', n); END `)}`,
          `SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE datid = ${ours} AND pid <> pg_catalog.pg_backend_pid()`,
          `DO ${dollarQuote(` ${check}IF ${dbExists(doomed)} THEN RAISE EXCEPTION 'database % exists; not dropping anything', ${quoteLiteral(doomed)}; END IF; EXECUTE format('ALTER DATABASE %I RENAME TO %I', n, ${quoteLiteral(doomed)}); END `)}`,
          `DROP DATABASE IF EXISTS ${quoteIdent(doomed)}`,
        ],
        timeoutSeconds: 300,
      }),
    ),
  ];
}

/** Refuse (with the exact state) when a database named `database` exists: this run created none under that name any more. */
export function assertNoDatabaseActions(target: PostgresTarget, why: string): PlannedAction[] {
  const db = target.database;
  return [
    exec(
      psqlCommand(target, {
        purpose: `Check that no database is named ${db} (${why})`,
        sql: [
          `DO ${dollarQuote(` DECLARE o oid; BEGIN SELECT oid INTO o FROM pg_catalog.pg_database WHERE datname = ${quoteLiteral(db)}; IF o IS NOT NULL THEN RAISE EXCEPTION 'a database named % exists (OID %) that this run did not create, or that it never dropped: not dropping it; if it is the database as it was, nothing needs to be put back', ${quoteLiteral(db)}, o; END IF; END `)}`,
        ],
        timeoutSeconds: 60,
      }),
    ),
  ];
}

/** CREATE ROLE ... NOLOGIN for each role the dump needs (skipped when it exists by then). */
export function createRolesActions(target: PostgresTarget, roles: readonly string[]): PlannedAction[] {
  if (roles.length === 0) return [];
  return [
    exec(
      psqlCommand(target, {
        purpose: `Create missing roles (NOLOGIN): ${roles.join(', ')}`,
        sql: roles.map((r) =>
          doBlock(
            `IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(r)}) THEN EXECUTE format('CREATE ROLE %I NOLOGIN', ${quoteLiteral(r)}); END IF;`,
          ),
        ),
        timeoutSeconds: 60,
      }),
    ),
  ];
}

export function dropRolesActions(target: PostgresTarget, roles: readonly string[]): PlannedAction[] {
  if (roles.length === 0) return [];
  return [
    exec(
      psqlCommand(target, {
        purpose: `Drop the roles this restore created: ${roles.join(', ')}`,
        sql: roles.map((r) => `DROP ROLE IF EXISTS ${quoteIdent(r)}`),
        timeoutSeconds: 60,
      }),
    ),
  ];
}

/**
 * Stream a plain (.sql / .sql.gz) dump from the host into psql (through Node's gunzip; no temp
 * file), in psql's restricted mode with a per-run key: no meta-command in the dump ever runs.
 */
export function plainRestoreAction(
  target: PostgresTarget,
  file: string,
  opts: { gunzip: boolean; skipOwnership: boolean; parallel?: { jobs: number; entries?: number; truncateBeforeCopy?: boolean } },
): PlannedAction {
  const argv = psqlBase(target, target.database);
  const how = opts.parallel
    ? `psql on ${opts.parallel.jobs} connections (split at pg_dump's section markers: pre-data on one, table data, then indexes and constraints, then foreign keys on ${opts.parallel.jobs}, the rest in dump order; each connection ON_ERROR_STOP, restricted: no meta-commands${opts.parallel.truncateBeforeCopy ? "; each table loaded in one transaction that truncates it first: no WAL on the scratch cluster's wal_level minimal" : ''})`
    : 'psql (ON_ERROR_STOP, restricted: no meta-commands)';
  return {
    type: 'exec',
    argv: wrapArgv(target.exec, argv, { interactive: true, env: envNames(target) }),
    purpose: `Restore ${path.basename(file)} into ${target.database} with ${how}${opts.skipOwnership ? ', without ownership and grants' : ''}`,
    runsIn: contextLabel(target.exec),
    ...envFrom(target),
    input: {
      file,
      ...(opts.gunzip ? { gunzip: true } : {}),
      ...(opts.skipOwnership ? { filter: 'strip-ownership-and-acl' as const } : {}),
      psqlRestrict: true,
      ...(opts.parallel ? { parallel: opts.parallel } : {}),
    },
    progress: 'input-bytes',
  };
}

/**
 * pg_restore of a custom/directory archive. In a container, the archive is first copied in with
 * `docker cp` (pg_restore --jobs needs a seekable file; stdin would force one job) and removed
 * afterwards; the container is running at this point (PostgreSQL is never stopped).
 */
export function archiveRestoreActions(
  target: PostgresTarget,
  file: string,
  opts: { jobs: number; skipOwnership: boolean; tocEntries?: number; ctxTempPath: string },
): { actions: PlannedAction[]; cleanup: PlannedAction[] } {
  const inCtx = copyIntoArgv(target.exec, file, opts.ctxTempPath);
  const source = inCtx ? opts.ctxTempPath : file;
  const argv = [
    bin(target, 'pg_restore'),
    '--jobs',
    String(opts.jobs),
    '--exit-on-error',
    '--no-password',
    '--verbose',
    ...connection(target, target.database),
    ...(opts.skipOwnership ? ['--no-owner', '--no-acl'] : []),
    source,
  ];
  const cleanup: PlannedAction[] = inCtx
    ? [
        {
          type: 'exec',
          argv: wrapArgv(target.exec, ['rm', '-rf', '--', opts.ctxTempPath]),
          purpose: `Remove the copy of the archive from the container`,
          runsIn: contextLabel(target.exec),
        },
      ]
    : [];
  const actions: PlannedAction[] = [];
  if (inCtx)
    actions.push({
      type: 'exec',
      argv: inCtx,
      purpose: `Copy ${path.basename(file)} into the container (pg_restore --jobs needs a file)`,
      runsIn: 'host',
    });
  actions.push({
    type: 'exec',
    argv: wrapArgv(target.exec, argv, { env: envNames(target) }),
    purpose: `Restore ${path.basename(file)} into ${target.database} with pg_restore --jobs ${opts.jobs}${opts.skipOwnership ? ' --no-owner --no-acl' : ''}`,
    runsIn: contextLabel(target.exec),
    ...envFrom(target),
    progress: 'pg-restore-items',
    ...(opts.tocEntries !== undefined ? { progressTotal: opts.tocEntries } : {}),
  });
  actions.push(...cleanup);
  return { actions, cleanup };
}

/** pg_dump -Fc of the current database to a host file (via the container and docker cp when needed). */
export function dumpSafetyCopyActions(target: PostgresTarget, hostFile: string, ctxTempPath: string): PlannedAction[] {
  const inContainer = target.exec.kind !== 'host';
  const out = inContainer ? ctxTempPath : hostFile;
  const argv = [bin(target, 'pg_dump'), '--format=custom', '--no-password', ...connection(target, target.database), '--file', out];
  const actions: PlannedAction[] = [
    { type: 'exec', argv: ['mkdir', '-p', '--', path.dirname(hostFile)], purpose: 'Create the safety-copy directory', runsIn: 'host' },
    {
      type: 'exec',
      argv: wrapArgv(target.exec, argv, { env: envNames(target) }),
      purpose: `Dump ${target.database} to ${out} (the safety copy)`,
      runsIn: contextLabel(target.exec),
      ...envFrom(target),
    },
  ];
  const record: PlannedAction = {
    type: 'record-identity',
    paths: [{ path: hostFile, recordAs: SAFETY_DUMP_FACT }],
    purpose: `Record the safety dump ${hostFile} (it is removed later only if it is still that file)`,
  };
  if (inContainer && target.exec.kind !== 'host') {
    actions.push(
      {
        type: 'exec',
        argv: ['docker', 'cp', `${target.exec.container}:${ctxTempPath}`, hostFile],
        purpose: 'Copy the safety dump out of the container',
        runsIn: 'host',
      },
      {
        type: 'exec',
        argv: wrapArgv(target.exec, ['rm', '-f', '--', ctxTempPath]),
        purpose: 'Remove the safety dump from the container',
        runsIn: contextLabel(target.exec),
      },
    );
  }
  actions.push(record);
  return actions;
}

export function analyzeActions(target: PostgresTarget): PlannedAction[] {
  return [
    exec(
      psqlCommand(target, {
        database: target.database,
        purpose: `Update planner statistics of ${target.database} (ANALYZE)`,
        sql: ['ANALYZE'],
      }),
    ),
  ];
}

/** Read-only probe commands. */
export function serverVersionCommand(target: PostgresTarget): PlannedCommand {
  return psqlCommand(target, {
    purpose: 'Read the server version',
    sql: ['SHOW server_version_num', 'SHOW server_version'],
    tuplesOnly: true,
    timeoutSeconds: 15,
  });
}

export function clientVersionArgv(target: PostgresTarget, tool: 'psql' | 'pg_restore' | 'pg_dump'): string[] {
  return wrapArgv(target.exec, [bin(target, tool), '--version']);
}

export function postgresEnvNames(target: PostgresTarget): string[] {
  return envNames(target);
}
