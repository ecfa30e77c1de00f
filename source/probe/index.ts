import { createReadStream } from 'node:fs';
import { raCommand } from '../text/next.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { statfs, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileIdentity, identityChange, sameIdentity } from '../catalog/identity.js';
import { type BackupSet, COMPONENT_KINDS, componentLabel, type VerifyReport } from '../catalog/types.js';
import { DEFAULT_HELPER_IMAGE, wrapArgv } from '../exec/context.js';
import { createRedactor, type Redactor } from '../exec/redact.js';
import { run, type RunResult } from '../exec/run.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { ExecContext, PostgresTarget, PrometheusTarget, RedisTarget } from '../recipe/schema.js';
import * as pg from '../targets/postgres.js';
import { redisCliArgv } from '../targets/redis.js';
import { offlineRedisFacts, type OfflineRedisFacts } from '../targets/redis-config.js';
import { restoreListDumpFacts, scanPlainDump, scanSqlStream } from './dump-scan.js';
import { splitStagingParent } from '../catalog/plain-sections.js';
import { copyRoomFacts } from './copy-room.js';
import type { DumpFacts, Plan, PlanOptions, TargetFacts } from '../plan/types.js';

/**
 * Read-only probing of the targets before planning: versions, whether the database exists, the
 * roles the dump needs that the server lacks, the Redis file layout, Prometheus readiness, free
 * disk. Nothing here changes any system. Every command goes through exec/run.ts with its
 * output redacted; passwords reach children only through their environment.
 */

export interface ProbeOptions {
  redact?: Redactor;
  signal?: AbortSignal;
  /** Where the recipe's passwordEnv names are looked up (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Per-command timeout (default 20 s). */
  timeoutMs?: number;
  /** Facts an earlier probe learned (the plan's): what they say of a backup file is used while the file is unchanged. */
  known?: TargetFacts;
  /** The preflight after the confirmation: read no backup file; what cannot be carried is reported (dump.notReread). */
  carryOnly?: boolean;
}

export interface PreflightProblem {
  code:
    | 'tool-missing'
    | 'client-too-old'
    | 'psql-restrict'
    | 'missing-roles'
    | 'owner-missing'
    | 'unreachable'
    | 'auth-failed'
    | 'disk-space'
    | 'server-older-than-dump'
    | 'redis-layout-unknown'
    | 'facts-changed'
    | 'not-ready'
    | 'container-missing'
    | 'container-stopped'
    | 'helper-image-missing'
    | 'unreadable';
  component?: 'postgres' | 'redis' | 'prometheus';
  severity: 'error' | 'warning';
  message: string;
  next?: string;
}

type Env = NodeJS.ProcessEnv;

function secretEnv(name: string | undefined, childName: string, env: Env): Record<string, string> {
  if (!name) return {};
  const value = env[name];
  return value === undefined ? {} : { [childName]: value };
}

function redactorFor(opts: ProbeOptions, env: Env, recipe: LoadedRecipe): Redactor {
  return recipeRedactor(recipe, env, opts.redact ?? createRedactor());
}

function firstError(r: RunResult): string {
  const line = [...r.stderrTail, ...r.stdoutTail].find((l) => l.trim() !== '') ?? '';
  if (r.exitCode === null && !r.timedOut) return line || 'could not be started';
  if (r.timedOut) return 'timed out';
  return line || `exited with code ${r.exitCode}`;
}

/** "psql (PostgreSQL) 15.12 (Debian ...)" -> "15.12"; "pg_restore (PostgreSQL) 17.6" -> "17.6". */
export function parseClientVersion(text: string): string | undefined {
  return /\(PostgreSQL\)\s+(\d+(?:\.\d+)?)/.exec(text)?.[1];
}

export function majorOf(version: string | undefined): number | undefined {
  if (!version) return undefined;
  const m = /^(\d+)(?:\.(\d+))?/.exec(version);
  if (!m) return undefined;
  const major = Number(m[1]);
  // Before 10 the major was two parts (9.6); nothing that old is supported, but keep it sortable.
  return major < 10 && m[2] !== undefined ? major + Number(m[2]) / 10 : major;
}

/** Minor version as a number ("15.14" -> 14). */
function minorOf(version: string | undefined): number {
  const m = /^\d+\.(\d+)/.exec(version ?? '');
  return m ? Number(m[1]) : 0;
}

/** The first psql release of each major that understands `\restrict` (CVE-2025-8714 fix). */
export const RESTRICT_MIN_MINOR: Readonly<Record<number, number>> = { 13: 22, 14: 19, 15: 14, 16: 10, 17: 6 };

/** Whether a psql of this version accepts a plain dump starting with `\restrict`. */
export function psqlAcceptsRestrict(psqlVersion: string): boolean {
  const major = majorOf(psqlVersion);
  if (major === undefined) return false;
  if (major >= 18) return true;
  const min = RESTRICT_MIN_MINOR[major];
  return min !== undefined && minorOf(psqlVersion) >= min;
}

/* ------------------------------------------------------------------ PostgreSQL */

/**
 * What is already known of the dump at `file`, while it is still the file it was learned from:
 * deep verification's scan (its one read: hash, meta-commands, roles), else the facts an earlier
 * probe recorded (`known`, the plan's facts). Only a stat: the dump is not read. `why` says why
 * nothing could be carried (the file is not the one the facts came from).
 */
async function carriedDumpFacts(
  file: string,
  verify: VerifyReport | undefined,
  known: TargetFacts['postgres'] | undefined,
): Promise<{ facts?: { dump: DumpFacts; referencedRoles?: string[] }; why?: string }> {
  const v = verify?.components.find((c) => c.kind === 'postgres' && c.path === file);
  const fromVerify = v?.identity && v.dumpScan ? v.identity : undefined;
  const fromProbe = known?.dump?.identity && known.referencedRoles ? known.dump.identity : undefined;
  if (!fromVerify && !fromProbe) return {};
  const now = await stat(file).then(fileIdentity, () => undefined);
  if (!now) return { why: `${file} is gone` };
  if (fromProbe && sameIdentity(fromProbe, now)) {
    const { notReread: _drop, ...dump } = known!.dump!;
    return { facts: { dump, referencedRoles: [...known!.referencedRoles!] } };
  }
  if (fromVerify && sameIdentity(fromVerify, now)) {
    const scan = v!.dumpScan!;
    return {
      facts: {
        dump: {
          restrict: scan.restrict,
          ...(scan.pgDumpVersion ? { pgDumpVersion: scan.pgDumpVersion } : {}),
          ...(scan.serverVersion ? { serverVersion: scan.serverVersion } : {}),
          identity: fromVerify,
          readBy: 'verification',
          ...(v!.sha256 ? { sha256: v!.sha256 } : {}),
        },
        referencedRoles: [...scan.roles],
      },
    };
  }
  return { why: `${file} is not the file it was read as before the confirmation: ${identityChange((fromProbe ?? fromVerify)!, now)}` };
}

async function probePostgres(
  t: PostgresTarget,
  set: BackupSet,
  verify: VerifyReport | undefined,
  env: Env,
  redact: Redactor,
  opts: ProbeOptions,
): Promise<NonNullable<TargetFacts['postgres']>> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const childEnv = secretEnv(t.passwordEnv, 'PGPASSWORD', env);
  const base = { redact, timeoutMs, env: childEnv, ...(opts.signal ? { signal: opts.signal } : {}) };
  const facts: NonNullable<TargetFacts['postgres']> = {};
  const missingTools: string[] = [];

  for (const tool of ['psql', 'pg_restore'] as const) {
    const argv = pg.clientVersionArgv(t, tool);
    const r = await run(argv, base);
    const v = r.ok ? parseClientVersion(r.stdout) : undefined;
    // The wrapper itself (docker) could not start: name it, not the tool inside the container.
    if (!v && r.exitCode === null && !r.timedOut && argv[0] !== tool && !argv[0]?.endsWith(`/${tool}`)) {
      if (!missingTools.includes(argv[0]!)) missingTools.push(argv[0]!);
    }
    if (!v) {
      missingTools.push(tool);
      (facts.toolErrors ??= {})[tool] = redact(firstError(r));
    } else if (tool === 'psql') facts.psqlVersion = v;
    else facts.pgRestoreVersion = v;
  }
  if (missingTools.length > 0) facts.missingTools = missingTools;
  const clientMajor = majorOf(facts.pgRestoreVersion ?? facts.psqlVersion);
  if (clientMajor !== undefined) facts.clientMajor = clientMajor;

  // Server: one read-only query returning one JSON line.
  const lit = pg.quoteLiteral;
  const owner = t.owner ?? t.user;
  const sql =
    `SELECT json_build_object(` +
    `'num', current_setting('server_version_num'), 'ver', current_setting('server_version'), ` +
    `'exists', EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = ${lit(t.database)}), ` +
    `'owner', EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${lit(owner)}), ` +
    `'size', (SELECT pg_catalog.pg_database_size(oid) FROM pg_catalog.pg_database WHERE datname = ${lit(t.database)} AND pg_catalog.has_database_privilege(oid, 'CONNECT')), ` +
    `'roles', (SELECT json_agg(rolname) FROM pg_catalog.pg_roles))`;
  const q = pg.psqlCommand(t, { purpose: 'probe', sql: [sql], tuplesOnly: true });
  let serverRoles: Set<string> | undefined;
  if (missingTools.includes('psql')) {
    facts.reachable = false;
    facts.error = 'psql is not available, so the server could not be asked';
  } else {
    const r = await run(q.argv, base);
    if (r.ok) {
      try {
        const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as {
          num: string;
          ver: string;
          exists: boolean;
          owner: boolean;
          size: number | null;
          roles: string[] | null;
        };
        facts.reachable = true;
        facts.serverVersionNum = Number(j.num);
        facts.serverVersion = j.ver.split(' ')[0] ?? j.ver;
        facts.serverMajor = Math.floor(Number(j.num) / 10000);
        facts.databaseExists = j.exists;
        facts.ownerExists = j.owner;
        if (typeof j.size === 'number') facts.databaseSize = j.size;
        serverRoles = new Set(j.roles ?? []);
      } catch {
        facts.reachable = false;
        facts.error = `unexpected answer from the server: ${redact(r.stdout.slice(0, 200))}`;
      }
    } else {
      facts.reachable = false;
      facts.error = firstError(r);
    }
  }

  // rename mode keeps the old database next to the new one on the server's own disk (issue 11:
  // a full one PANICked the server during the rollback's DROP DATABASE): learn where it is.
  if (facts.reachable && t.safetyCopy === 'rename') {
    const dsql =
      `SELECT CASE WHEN (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) ` +
      `OR pg_catalog.pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') ` +
      `THEN pg_catalog.current_setting('data_directory') ELSE '' END`;
    const d = await run(pg.psqlCommand(t, { purpose: 'probe', sql: [dsql], tuplesOnly: true }).argv, base);
    const dir = d.ok ? d.stdout.trim().split('\n').pop()?.trim() : undefined;
    if (dir) facts.dataDirectory = dir;
  }

  // The dump: version header and the roles it references. Read once, before the confirmation:
  // from deep verification's read when it made one (bound to the file it hashed), else here; the
  // preflight after the confirmation carries what was learned while the file is still that one.
  const comp = set.components.find((c) => c.kind === 'postgres');
  if (comp) {
    const vf = verify?.components.find((c) => c.kind === 'postgres')?.facts ?? {};
    let dump: DumpFacts = {};
    let referenced: string[] | undefined;
    const carried = await carriedDumpFacts(comp.path, verify, opts.known?.postgres);
    if (carried.facts) {
      dump = carried.facts.dump;
      referenced = carried.facts.referencedRoles;
    } else if (opts.carryOnly && carried.why) {
      dump.notReread = carried.why;
    } else if (opts.carryOnly && opts.known?.postgres?.dump && comp.format !== 'pg-directory') {
      // Nothing bound to a file identity was learned (the read failed): what was learned stands, unread again.
      dump = { ...opts.known.postgres.dump };
      if (opts.known.postgres.referencedRoles) referenced = [...opts.known.postgres.referencedRoles];
    } else {
      try {
        if (comp.format === 'pg-plain' || comp.format === 'pg-plain-gz') {
          const scan = await scanPlainDump(comp.path, comp.format === 'pg-plain-gz');
          dump.restrict = scan.restrict;
          if (scan.pgDumpVersion) dump.pgDumpVersion = scan.pgDumpVersion;
          if (scan.serverVersion) dump.serverVersion = scan.serverVersion;
          if (scan.identity) Object.assign(dump, { identity: scan.identity, readBy: 'probe' as const });
          referenced = scan.roles;
        } else if (!missingTools.includes('pg_restore')) {
          // In a container the archive is fed on stdin (custom format reads from a pipe); a
          // directory archive needs a path, so only the host can read it.
          const inCtx = t.exec.kind !== 'host';
          if (inCtx && comp.format === 'pg-directory') {
            dump.unreadable = 'a directory archive cannot be read through docker exec before it is copied in; roles not checked';
          } else {
            const before = comp.format === 'pg-directory' ? undefined : await stat(comp.path).then(fileIdentity, () => undefined);
            const pgRestore = t.bin ? path.posix.join(t.bin, 'pg_restore') : 'pg_restore';
            const listArgv = wrapArgv(t.exec, [pgRestore, '--list', ...(inCtx ? [] : [comp.path])], { interactive: inCtx });
            const list = await run(listArgv, {
              ...base,
              ...(inCtx ? { input: createReadStream(comp.path) } : {}),
              timeoutMs: Math.max(timeoutMs, 120_000),
            });
            if (!list.ok) {
              dump.unreadable = firstError(list);
            } else {
              const parsed = restoreListDumpFacts(list.stdout);
              dump.tocEntries = parsed.tocEntries;
              if (parsed.pgDumpVersion) dump.pgDumpVersion = parsed.pgDumpVersion;
              if (parsed.serverVersion) dump.serverVersion = parsed.serverVersion;
              if (parsed.database) dump.database = parsed.database;
              if (parsed.createdAt) dump.createdAt = parsed.createdAt;
              const schemaArgv = wrapArgv(t.exec, [pgRestore, '--schema-only', '-f', '-', ...(inCtx ? [] : [comp.path])], {
                interactive: inCtx,
              });
              const sqlScan = await scanCommandOutput(schemaArgv, inCtx ? comp.path : undefined, base);
              referenced = sqlScan.roles;
              const after = before ? await stat(comp.path).then(fileIdentity, () => undefined) : undefined;
              if (before && after && sameIdentity(before, after)) Object.assign(dump, { identity: before, readBy: 'probe' as const });
            }
          }
        }
      } catch (error) {
        dump.unreadable = error instanceof Error ? error.message : String(error);
      }
    }
    if (dump.tocEntries === undefined && typeof vf['tocEntries'] === 'number') dump.tocEntries = vf['tocEntries'];
    if (dump.pgDumpVersion === undefined && typeof vf['pgDumpVersion'] === 'string') dump.pgDumpVersion = vf['pgDumpVersion'];
    if (dump.database === undefined && typeof vf['dbname'] === 'string') dump.database = vf['dbname'];
    if (dump.createdAt === undefined && typeof vf['archiveCreatedAt'] === 'string') dump.createdAt = vf['archiveCreatedAt'];
    facts.dump = dump;
    if (referenced) facts.referencedRoles = referenced;
    if (serverRoles) {
      const needed = new Set([...(referenced ?? []), owner]);
      facts.missingRoles = [...needed].filter((r) => !serverRoles.has(r)).sort();
    }
  }
  return facts;
}

/** Run a command and scan its stdout as SQL, streaming (pg_restore -f - can be large). */
async function scanCommandOutput(
  argv: string[],
  inputFile: string | undefined,
  base: Parameters<typeof run>[1],
): Promise<{ roles: string[] }> {
  const out = new PassThrough();
  const scanning = scanSqlStream(out);
  const r = await run(argv, { ...base, stdoutTo: out, ...(inputFile ? { input: createReadStream(inputFile) } : {}), timeoutMs: 600_000 });
  if (!out.writableEnded) out.end();
  const scan = await scanning;
  if (!r.ok) throw new Error(`could not read the archive's schema: ${firstError(r)}`);
  return { roles: scan.roles };
}

/* ------------------------------------------------------------------ Redis */

function parseConfigReply(text: string): Record<string, string> {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]!] = lines[i + 1]!;
  return out;
}

function isErrorReply(text: string): boolean {
  return /^(ERR|NOAUTH|WRONGPASS|NOPERM|LOADING|MISCONF|Could not connect|Error:)/m.test(text.trim());
}

async function probeRedis(
  t: RedisTarget,
  set: BackupSet,
  verify: VerifyReport | undefined,
  env: Env,
  redact: Redactor,
  opts: ProbeOptions,
): Promise<NonNullable<TargetFacts['redis']>> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const base = { redact, timeoutMs, env: secretEnv(t.passwordEnv, 'REDISCLI_AUTH', env), ...(opts.signal ? { signal: opts.signal } : {}) };
  const fromRecipe: NonNullable<TargetFacts['redis']> = {
    dir: t.dataDir ?? '',
    dbfilename: t.dbfilename ?? 'dump.rdb',
    appendonly: t.appendonly ?? false,
    appenddirname: t.appenddirname ?? 'appendonlydir',
    appendfilename: 'appendonly.aof',
    source: 'recipe',
  };
  const vf = verify?.components.find((c) => c.kind === 'redis')?.facts ?? {};
  if (typeof vf['redisKeys'] === 'number') fromRecipe.backupKeys = vf['redisKeys'];
  else if (opts.carryOnly) {
    // The preflight reads no backup file: the key count the plan's probe made (its check carries it already).
    if (opts.known?.redis?.backupKeys !== undefined) fromRecipe.backupKeys = opts.known.redis.backupKeys;
  } else {
    const rdb = set.components.find((c) => c.kind === 'redis');
    if (rdb) {
      const keys = await rdbKeyCount(rdb.path, { redact, timeoutMs: 60_000, ...(opts.signal ? { signal: opts.signal } : {}) });
      if (keys !== undefined) fromRecipe.backupKeys = keys;
    }
  }

  const info = await run(redisCliArgv(t, ['INFO', 'server']), base);
  if (!info.ok || isErrorReply(info.stdout)) {
    const error = info.ok ? (info.stdout.trim().split('\n')[0] ?? 'error reply') : firstError(info);
    return { ...withoutServer(t, fromRecipe, await offlineRedisFacts(t)), reachable: false, error: redact(error) };
  }
  const version = /^redis_version:(\S+)/m.exec(info.stdout)?.[1];
  const learned: Record<string, string> = {};
  let configError: string | undefined;
  for (const param of ['dir', 'dbfilename', 'appendonly', 'appenddirname', 'appendfilename']) {
    const r = await run(redisCliArgv(t, ['CONFIG', 'GET', param]), base);
    if (!r.ok || isErrorReply(r.stdout)) {
      configError = r.ok ? r.stdout.trim().split('\n')[0] : firstError(r);
      break;
    }
    Object.assign(learned, parseConfigReply(r.stdout.trim()));
  }
  const versionMajor = majorOf(version);
  const common = { reachable: true, ...(version ? { version } : {}), ...(versionMajor !== undefined ? { versionMajor } : {}) };
  if (configError !== undefined || learned['dir'] === undefined) {
    // CONFIG is often renamed or disabled: fall back to the recipe's values.
    return {
      ...withoutServer(t, fromRecipe, await offlineRedisFacts(t)),
      ...common,
      error: redact(`CONFIG GET failed (${configError ?? 'no dir'}); using the config file's or the recipe's values`),
    };
  }
  return {
    ...fromRecipe,
    ...common,
    dir: learned['dir'],
    dbfilename: learned['dbfilename'] ?? fromRecipe.dbfilename,
    appendonly: learned['appendonly'] === 'yes',
    appenddirname: learned['appenddirname'] ?? fromRecipe.appenddirname,
    appendfilename: learned['appendfilename'] ?? 'appendonly.aof',
    appendonlyFrom: 'server',
    source: 'server',
  };
}

/**
 * The layout of a Redis the server could not tell (down, or CONFIG disabled): its config file's
 * settings win over the recipe's (Redis reads the file when it starts); `appendonly` comes from the
 * file, else the recipe, else an AOF found in the data dir; when none says, it stays unlearned
 * (no appendonlyFrom) and the plan installs the backup both ways (plan/build.ts redisLayout).
 */
function withoutServer(
  t: RedisTarget,
  fromRecipe: NonNullable<TargetFacts['redis']>,
  off: OfflineRedisFacts,
): NonNullable<TargetFacts['redis']> {
  const out: NonNullable<TargetFacts['redis']> = { ...fromRecipe };
  const c = off.conf;
  if (off.configFile) out.configFile = off.configFile;
  if (off.configError) out.configError = off.configError;
  if (off.aofFound !== undefined) out.aofFound = off.aofFound;
  if (c.dir) out.dir = c.dir;
  if (c.dbfilename) out.dbfilename = c.dbfilename;
  if (c.appenddirname) out.appenddirname = c.appenddirname;
  if (c.appendfilename) out.appendfilename = c.appendfilename;
  if (c.appendonly !== undefined) {
    out.appendonly = c.appendonly;
    out.appendonlyFrom = 'config-file';
  } else if (t.appendonly !== undefined) {
    out.appendonly = t.appendonly;
    out.appendonlyFrom = 'recipe';
  } else if (off.aofFound) {
    out.appendonly = true;
    out.appendonlyFrom = 'aof-dir';
  } else if (off.configFile && !off.configError) {
    // The file exists and does not set it: Redis's default, appendonly no.
    out.appendonly = false;
    out.appendonlyFrom = 'config-file';
  }
  return out;
}

/** Keys in an RDB according to redis-check-rdb (when it is installed on this host). */
export async function rdbKeyCount(
  file: string,
  opts: { redact: Redactor; timeoutMs: number; signal?: AbortSignal },
): Promise<number | undefined> {
  const r = await run(['redis-check-rdb', file], opts);
  if (!r.ok) return undefined;
  const m = /(\d+) keys read/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

/* ------------------------------------------------------------------ Prometheus */

async function probePrometheus(t: PrometheusTarget, opts: ProbeOptions): Promise<NonNullable<TargetFacts['prometheus']>> {
  const url = `${t.url.replace(/\/+$/, '')}/-/ready`;
  const timeout = AbortSignal.timeout(Math.min(opts.timeoutMs ?? 5000, 5000));
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const res = await fetch(url, { signal });
    await res.body?.cancel();
    return res.ok ? { ready: true } : { ready: false, error: `${url} answered HTTP ${res.status}` };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { ready: false, error: `${url}: ${cause ?? (error instanceof Error ? error.message : String(error))}` };
  }
}

/* ------------------------------------------------------------------ disk */

/** Free bytes on the file system holding `p` (or its nearest existing ancestor). */
export async function freeBytes(p: string): Promise<{ path: string; free: number } | undefined> {
  let cur = path.resolve(p);
  for (;;) {
    try {
      await stat(cur);
      const s = await statfs(cur);
      return { path: cur, free: Number(s.bavail) * Number(s.bsize) };
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return undefined;
      cur = parent;
    }
  }
}

/**
 * The staging spill of a parallel plain restore (engine/plain-split/: everything after pre-data,
 * in a private dir under splitStagingParent()): when verification read the dump's structure and
 * the splitter recognises it, the room it needs (at most the dump's uncompressed size) against the
 * free space there. Counted only when the plan restores in parallel (preflightProblems' `parallel`).
 * After the confirmation the need comes from the plan's facts when no verify report is at hand.
 */
async function splitStagingFact(
  set: BackupSet,
  verify: VerifyReport | undefined,
  known: TargetFacts | undefined,
  env: NodeJS.ProcessEnv,
): Promise<NonNullable<TargetFacts['disk']>[number] | undefined> {
  const comp = set.components.find((x) => x.kind === 'postgres');
  if (!comp || (comp.format !== 'pg-plain' && comp.format !== 'pg-plain-gz')) return undefined;
  const vf = verify?.components.find((x) => x.kind === 'postgres')?.facts;
  const sections = vf?.['plainSections'] as { recognised?: unknown } | undefined;
  let needed: number | undefined;
  if (vf) {
    if (sections?.recognised !== true) return undefined;
    needed = typeof vf['uncompressedBytes'] === 'number' ? vf['uncompressedBytes'] : undefined;
  } else needed = known?.disk?.find((d) => d.parallelOnly)?.neededBytes;
  if (needed === undefined) return undefined;
  const parent = splitStagingParent(env);
  const f = await freeBytes(parent);
  if (!f) return undefined;
  return {
    component: 'postgres',
    path: parent,
    freeBytes: f.free,
    neededBytes: needed,
    what: `the parallel restore's staging of the plain dump (everything after its pre-data, at most its ${needed} bytes of SQL) in a private directory created under ${parent}${f.path !== parent ? ` (on the file system of ${f.path})` : ''}`,
    parallelOnly: true,
  };
}

async function diskFacts(
  recipe: LoadedRecipe,
  set: BackupSet,
  facts: TargetFacts,
  verify: VerifyReport | undefined,
  safetyDir: string | undefined,
  known: TargetFacts | undefined,
  env: NodeJS.ProcessEnv,
): Promise<NonNullable<TargetFacts['disk']>> {
  const out: NonNullable<TargetFacts['disk']> = [];
  const c = recipe.recipe.components;
  const size = (kind: 'postgres' | 'redis' | 'prometheus'): number => set.components.find((x) => x.kind === kind)?.size ?? 0;
  if (c.postgres) {
    const staging = await splitStagingFact(set, verify, known, env);
    if (staging) out.push(staging);
  }
  if (c.redis && c.redis.exec.kind === 'host' && facts.redis?.dir && set.components.some((x) => x.kind === 'redis')) {
    const f = await freeBytes(facts.redis.dir);
    const needed = size('redis') * (facts.redis.appendonly ? 2 : 1);
    if (f)
      out.push({
        component: 'redis',
        path: f.path,
        freeBytes: f.free,
        neededBytes: needed,
        what: facts.redis.appendonly ? 'the restored RDB and its AOF base copy' : 'the restored RDB',
      });
  }
  if (c.prometheus && c.prometheus.exec.kind === 'host' && set.components.some((x) => x.kind === 'prometheus')) {
    const f = await freeBytes(path.dirname(c.prometheus.dataDir));
    const vf = verify?.components.find((x) => x.kind === 'prometheus')?.facts ?? {};
    const unpacked = typeof vf['uncompressedBytes'] === 'number' ? vf['uncompressedBytes'] : Math.ceil(size('prometheus') * 1.5);
    if (f)
      out.push({
        component: 'prometheus',
        path: f.path,
        freeBytes: f.free,
        neededBytes: unpacked,
        what: typeof vf['uncompressedBytes'] === 'number' ? 'the extracted TSDB' : 'the extracted TSDB (estimated 1.5x the tarball)',
      });
  }
  if (c.postgres?.safetyCopy === 'rename' && facts.postgres?.databaseExists && facts.postgres.databaseSize !== undefined) {
    const room = await postgresServerDisk(c.postgres, facts.postgres.dataDirectory);
    if (room.free) {
      out.push({
        component: 'postgres',
        path: room.free.path,
        freeBytes: room.free.free,
        neededBytes: facts.postgres.databaseSize,
        what: `the restored database next to the renamed safety copy on the PostgreSQL server's disk (estimated as the current database's ${facts.postgres.databaseSize} bytes)`,
      });
    } else {
      facts.postgres.diskUnchecked = room.why;
    }
  }
  if (c.postgres?.safetyCopy === 'dump' && facts.postgres?.databaseSize !== undefined) {
    const dir = safetyDir ?? path.join(recipe.recipe.evidence.dir ?? path.dirname(recipe.file), 'safety');
    const f = await freeBytes(dir);
    if (f)
      out.push({
        component: 'postgres',
        path: f.path,
        freeBytes: f.free,
        neededBytes: Math.ceil(facts.postgres.databaseSize / 2),
        what: 'the pg_dump safety copy (estimated half the database size)',
      });
  }
  return out;
}

/** The free space of a PostgreSQL server's data directory when it is on this host, else why it is not checkable. */
async function postgresServerDisk(
  t: PostgresTarget,
  dataDirectory: string | undefined,
): Promise<{ free?: { path: string; free: number }; why: string }> {
  const local = t.exec.kind === 'host' && (t.host.startsWith('/') || ['127.0.0.1', 'localhost', '::1'].includes(t.host));
  if (!local)
    return {
      why: `the server ${t.host} is ${t.exec.kind === 'host' ? 'remote' : `in a container (${t.exec.kind})`}: its disk cannot be checked from here; make sure it has room for a second copy of the database`,
    };
  if (!dataDirectory)
    return {
      why: `the server does not tell this role its data_directory (needs superuser or pg_read_all_settings): its disk was not checked`,
    };
  try {
    await stat(dataDirectory);
  } catch {
    return { why: `the server's data_directory ${dataDirectory} is not visible on this host: its disk was not checked` };
  }
  const free = await freeBytes(dataDirectory);
  return free ? { free, why: '' } : { why: `the free space of ${dataDirectory} could not be read` };
}

/* ------------------------------------------------------------------ containers */

/** Paths inside the container the restore writes to, per component (for the volume's free space). */
function containerDataPath(recipe: LoadedRecipe, kind: 'postgres' | 'redis' | 'prometheus', facts: TargetFacts): string | undefined {
  const c = recipe.recipe.components;
  if (kind === 'redis') return facts.redis?.dir || c.redis?.dataDir;
  if (kind === 'prometheus') return c.prometheus?.dataDir;
  return undefined;
}

/**
 * docker inspect of each container component: it exists, runs (or is stopped), its image; the
 * helper image (moves files inside stopped containers' volumes) is present locally, as nothing is
 * pulled at 3 a.m.; and the free space of the volume the restore writes to (df inside the running
 * container). Read-only.
 */
async function containerFacts(
  recipe: LoadedRecipe,
  set: BackupSet,
  facts: TargetFacts,
  verify: VerifyReport | undefined,
  opts: ProbeOptions,
): Promise<{ containers: NonNullable<TargetFacts['containers']>; disk: NonNullable<TargetFacts['disk']> }> {
  const c = recipe.recipe.components;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const base = { timeoutMs, ...(opts.redact ? { redact: opts.redact } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  const containers: NonNullable<TargetFacts['containers']> = [];
  const disk: NonNullable<TargetFacts['disk']> = [];
  const size = (kind: 'postgres' | 'redis' | 'prometheus'): number => set.components.find((x) => x.kind === kind)?.size ?? 0;
  for (const kind of COMPONENT_KINDS) {
    const exec: ExecContext | undefined = c[kind]?.exec;
    if (!exec || exec.kind === 'host' || !set.components.some((x) => x.kind === kind)) continue;
    const name = exec.container;
    const r = await run(['docker', 'inspect', '--type', 'container', '--format', '{{.State.Running}} {{.Config.Image}}', name], base);
    const entry: NonNullable<TargetFacts['containers']>[number] = { component: kind, name, exists: false };
    if (r.ok) {
      const [running, ...image] = r.stdout.trim().split(' ');
      entry.exists = true;
      entry.running = running === 'true';
      if (image.length > 0) entry.image = image.join(' ');
    } else if (!/no such (container|object)/i.test([...r.stderrTail, ...r.stdoutTail].join('\n'))) {
      entry.error = firstError(r);
    }
    // Redis and Prometheus files are moved by a helper container while the component is stopped.
    if (kind !== 'postgres') {
      const image = exec.helperImage ?? DEFAULT_HELPER_IMAGE;
      const h = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', image], base);
      entry.helperImage = { image, present: h.ok };
      if (!h.ok && !/no such image/i.test([...h.stderrTail, ...h.stdoutTail].join('\n'))) entry.helperImage.error = firstError(h);
    }
    const dataPath = containerDataPath(recipe, kind, facts);
    if (entry.running && dataPath) {
      const df = await run(wrapArgv(exec, ['df', '-Pk', dataPath]), base);
      const line = df.ok ? df.stdout.trim().split('\n').pop() : undefined;
      const avail = line ? Number(line.split(/\s+/)[3]) : Number.NaN;
      if (Number.isFinite(avail)) {
        const vf = verify?.components.find((x) => x.kind === kind)?.facts ?? {};
        const needed =
          kind === 'redis'
            ? size('redis') * (facts.redis?.appendonly ? 2 : 1)
            : typeof vf['uncompressedBytes'] === 'number'
              ? vf['uncompressedBytes']
              : Math.ceil(size('prometheus') * 1.5);
        disk.push({
          component: kind,
          path: `${dataPath} in ${name}`,
          freeBytes: avail * 1024,
          neededBytes: needed,
          what: kind === 'redis' ? 'the restored RDB' : 'the extracted TSDB',
        });
      }
    }
    containers.push(entry);
  }
  return { containers, disk };
}

/* ------------------------------------------------------------------ public API */

/** Facts from the recipe alone (`plan --offline`). */
export function recipeFacts(recipe: LoadedRecipe): TargetFacts {
  const r = recipe.recipe.components.redis;
  return r
    ? {
        redis: {
          dir: r.dataDir ?? '',
          dbfilename: r.dbfilename ?? 'dump.rdb',
          appendonly: r.appendonly ?? false,
          appenddirname: r.appenddirname ?? 'appendonlydir',
          appendfilename: 'appendonly.aof',
          source: 'recipe',
        },
      }
    : {};
}

/** Probe every component the recipe and the set share. Read-only. */
export async function probeFacts(
  recipe: LoadedRecipe,
  set: BackupSet,
  verify: VerifyReport | undefined,
  opts: ProbeOptions & { now?: () => Date; safetyDir?: string } = {},
): Promise<TargetFacts> {
  const env = opts.env ?? process.env;
  const redact = redactorFor(opts, env, recipe);
  const c = recipe.recipe.components;
  const has = (k: 'postgres' | 'redis' | 'prometheus'): boolean => set.components.some((x) => x.kind === k);
  const [postgres, redis, prometheus] = await Promise.all([
    c.postgres && has('postgres') ? probePostgres(c.postgres, set, verify, env, redact, opts) : undefined,
    c.redis && has('redis') ? probeRedis(c.redis, set, verify, env, redact, opts) : undefined,
    c.prometheus && has('prometheus') ? probePrometheus(c.prometheus, opts) : undefined,
  ]);
  const facts: TargetFacts = {
    ...(postgres ? { postgres } : {}),
    ...(redis ? { redis } : {}),
    ...(prometheus ? { prometheus } : {}),
    probedAt: (opts.now?.() ?? new Date()).toISOString(),
  };
  const disk = await diskFacts(recipe, set, facts, verify, opts.safetyDir, opts.known, env);
  const inContainers = await containerFacts(recipe, set, facts, verify, { ...opts, redact });
  disk.push(...inContainers.disk);
  if (disk.length > 0) facts.disk = disk;
  if (inContainers.containers.length > 0) facts.containers = inContainers.containers;
  Object.assign(
    facts,
    await copyRoomFacts(recipe, facts, {
      env,
      redact,
      safetyDir: opts.safetyDir ?? path.join(recipe.recipe.evidence.dir ?? path.dirname(recipe.file), 'safety'),
    }),
  );
  return facts;
}

/** Blocking problems (severity error) and warnings, from the facts. Pure. */
export function preflightProblems(
  recipe: LoadedRecipe,
  set: BackupSet,
  facts: TargetFacts,
  options: Pick<PlanOptions, 'missingRoles'> & {
    only?: PlanOptions['only'];
    /** The plain dump is restored in parallel: its staging spill counts (disk facts marked parallelOnly). */
    parallel?: boolean;
  } = { missingRoles: 'fail' },
): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  const c = recipe.recipe.components;
  const wants = (k: 'postgres' | 'redis' | 'prometheus'): boolean =>
    set.components.some((x) => x.kind === k) && (!options.only || options.only.includes(k)) && c[k] !== undefined;

  if (wants('postgres') && c.postgres && facts.postgres) {
    const t = c.postgres;
    const f = facts.postgres;
    const comp = set.components.find((x) => x.kind === 'postgres')!;
    const plain = comp.format === 'pg-plain' || comp.format === 'pg-plain-gz';
    const tool = plain ? 'psql' : 'pg_restore';
    const where = t.exec.kind === 'host' ? 'on this host' : `in ${t.exec.container}`;
    const wrapperMissing = (f.missingTools ?? []).find((m) => m !== 'psql' && m !== 'pg_restore');
    if (wrapperMissing) {
      problems.push({
        code: 'tool-missing',
        component: 'postgres',
        severity: 'error',
        message: `${wrapperMissing} is not available on this host (needed to reach ${where}).`,
        next: `Install ${wrapperMissing}, or run restore-assistant where ${where.replace(/^in /, '')} can be reached.`,
      });
    }
    for (const m of wrapperMissing ? [] : (f.missingTools ?? [])) {
      if (m === tool || m === 'psql') {
        const why = f.toolErrors?.[m];
        problems.push({
          code: 'tool-missing',
          component: 'postgres',
          severity: 'error',
          message: `${m} is not available ${where}${why ? ` (${why})` : ''}.`,
          next: `Install the PostgreSQL client ${where}${t.bin ? ` (recipe bin: ${t.bin})` : ''}, or set components.postgres.bin.`,
        });
      }
    }
    if (f.reachable === false && !(f.missingTools ?? []).some((m) => m !== 'pg_restore')) {
      problems.push({
        code: /password|authentication/i.test(f.error ?? '') ? 'auth-failed' : 'unreachable',
        component: 'postgres',
        severity: 'error',
        message: `PostgreSQL at ${t.host}:${t.port} (user ${t.user}) could not be queried: ${f.error ?? 'no answer'}.`,
        next: t.passwordEnv
          ? `Check that ${t.passwordEnv} holds the password of ${t.user} and that the server runs.`
          : `Check that the server runs and accepts ${t.user}; set passwordEnv in the recipe if it needs a password.`,
      });
    }
    const dump = f.dump;
    const dumpMajor = majorOf(dump?.pgDumpVersion);
    if (!plain) {
      if (dump?.unreadable && /unsupported version|newer|not a valid archive|did not find magic/i.test(dump.unreadable)) {
        problems.push({
          code: 'client-too-old',
          component: 'postgres',
          severity: 'error',
          message: `pg_restore ${f.pgRestoreVersion ?? ''} cannot read the archive: ${dump.unreadable}`,
          next: 'Use a pg_restore at least as new as the pg_dump that wrote the archive (components.postgres.bin).',
        });
      } else if (dumpMajor !== undefined && f.pgRestoreVersion && dumpMajor > (majorOf(f.pgRestoreVersion) ?? 0)) {
        problems.push({
          code: 'client-too-old',
          component: 'postgres',
          severity: 'error',
          message: `The archive was written by pg_dump ${dump?.pgDumpVersion}; pg_restore ${f.pgRestoreVersion} cannot read dumps from a newer major.`,
          next: `Install the PostgreSQL ${dumpMajor} client and point components.postgres.bin at it.`,
        });
      }
    } else if (f.psqlVersion && !psqlAcceptsRestrict(f.psqlVersion)) {
      // Every plain dump goes through psql's restricted mode (engine/psql-guard.ts): without it a
      // backslash command in the backup (\! shell, \o |pipe, \connect) would run as this user.
      problems.push({
        code: 'psql-restrict',
        component: 'postgres',
        severity: 'error',
        message:
          `psql ${f.psqlVersion} ${where} has no restricted mode (\\restrict, added in 17.6 / 16.10 / 15.14 / 14.19 / 13.22); a plain dump is only restored through it, ` +
          `so that no psql meta-command in the backup can run${dump?.restrict ? ` (this dump also begins with \\restrict, which psql ${f.psqlVersion} rejects)` : ''}.`,
        next: 'Use psql 17.6, 16.10, 15.14, 14.19, 13.22 or later (point components.postgres.bin at it), or restore from a custom-format dump (pg_dump -Fc), which needs no psql.',
      });
    }
    if (dumpMajor !== undefined && f.serverMajor !== undefined && dumpMajor > f.serverMajor) {
      problems.push({
        code: 'server-older-than-dump',
        component: 'postgres',
        severity: 'warning',
        message: `The dump comes from pg_dump ${dump?.pgDumpVersion}; the server is ${f.serverVersion}. Statements newer servers accept may fail.`,
      });
    }
    const missing = f.missingRoles ?? [];
    const owner = t.owner ?? t.user;
    if (missing.length > 0 && options.missingRoles === 'fail') {
      problems.push({
        code: 'missing-roles',
        component: 'postgres',
        severity: 'error',
        message: `The dump references roles the server lacks: ${missing.join(', ')}.`,
        next: 'Re-run with --missing-roles create (creates them NOLOGIN) or --missing-roles skip-ownership (restores without ownership and grants).',
      });
    } else if (options.missingRoles === 'skip-ownership' && missing.includes(owner)) {
      problems.push({
        code: 'owner-missing',
        component: 'postgres',
        severity: 'error',
        message: `The database owner ${owner} (recipe owner) does not exist on the server.`,
        next: `Create role ${owner}, choose --missing-roles create, or set components.postgres.owner to an existing role.`,
      });
    }
  }

  if (wants('redis') && c.redis && facts.redis) {
    const t = c.redis;
    const f = facts.redis;
    if (f.reachable === false) {
      const auth = /NOAUTH|WRONGPASS|AUTH/i.test(f.error ?? '');
      const noLayout = !t.dataDir;
      problems.push({
        code: auth ? 'auth-failed' : noLayout ? 'redis-layout-unknown' : 'unreachable',
        component: 'redis',
        severity: auth || noLayout ? 'error' : 'warning',
        message: auth
          ? `Redis at ${t.host}:${t.port} refused the credentials: ${f.error}.`
          : `Redis at ${t.host}:${t.port} did not answer (${f.error ?? 'no answer'}); ${noLayout ? 'its data directory is unknown' : `using the recipe's dir ${t.dataDir}`}.`,
        next: auth
          ? `Check that ${t.passwordEnv ?? 'the recipe passwordEnv'} holds the Redis password.`
          : noLayout
            ? 'Set components.redis.dataDir (and dbfilename, appendonly) in the recipe.'
            : 'A stopped Redis is fine; the recipe values are used.',
      });
    }
  }

  if (wants('prometheus') && c.prometheus && facts.prometheus?.ready === false) {
    problems.push({
      code: 'not-ready',
      component: 'prometheus',
      severity: 'warning',
      message: `Prometheus is not ready: ${facts.prometheus.error ?? 'no answer'} (a stopped Prometheus is fine).`,
    });
  }

  for (const ct of facts.containers ?? []) {
    if (!wants(ct.component)) continue;
    const label = componentLabel[ct.component];
    if (ct.error) {
      problems.push({
        code: 'tool-missing',
        component: ct.component,
        severity: 'error',
        message: `docker inspect ${ct.name} failed on this host: ${ct.error}.`,
        next: 'Install the docker client (Debian: docker.io) and check that it reaches the daemon (DOCKER_HOST), then re-run.',
      });
    } else if (!ct.exists) {
      problems.push({
        code: 'container-missing',
        component: ct.component,
        severity: 'error',
        message: `Container ${ct.name} (${label}) does not exist.`,
        next: `Create it (docker compose up -d), or set components.${ct.component}.exec.container to the right name (docker ps -a lists them).`,
      });
    } else if (!ct.running && ct.component === 'postgres') {
      // PostgreSQL is restored into the running server; the plan never starts it.
      problems.push({
        code: 'container-stopped',
        component: ct.component,
        severity: 'error',
        message: `Container ${ct.name} (PostgreSQL) is not running: the restore runs psql inside it.`,
        next: `Start it (docker start ${ct.name}) and re-run.`,
      });
    } else if (!ct.running) {
      problems.push({
        code: 'container-stopped',
        component: ct.component,
        severity: 'warning',
        message: `Container ${ct.name} (${label}) is stopped; the plan starts it after the restore.`,
      });
    }
    if (ct.helperImage && !ct.helperImage.present) {
      problems.push({
        code: 'helper-image-missing',
        component: ct.component,
        severity: 'error',
        message: `Image ${ct.helperImage.image} is not on this host${ct.helperImage.error ? ` (${ct.helperImage.error})` : ''}: the helper container that moves ${label} files inside ${ct.name}'s volumes cannot start, and nothing is pulled mid-restore.`,
        next: `Set components.${ct.component}.exec.helperImage to an image that is here and has sh (the production image works${ct.image ? `: ${ct.image}` : ''}), or docker pull ${ct.helperImage.image} beforehand.`,
      });
    }
  }

  if (wants('postgres') && facts.postgres?.diskUnchecked) {
    problems.push({
      code: 'disk-space',
      component: 'postgres',
      severity: 'warning',
      message: `PostgreSQL disk room not checked: ${facts.postgres.diskUnchecked}.`,
    });
  }
  for (const d of facts.disk ?? []) {
    if (d.parallelOnly && (!options.parallel || !wants(d.component))) continue;
    if (d.parallelOnly && d.freeBytes < d.neededBytes) {
      problems.push({
        code: 'disk-space',
        component: d.component,
        severity: 'error',
        message: `Not enough free disk at ${d.path} for ${d.what}: ${d.freeBytes} bytes free, ${d.neededBytes} needed.`,
        next: `Free space on the file system holding ${d.path}, or point TMPDIR at a directory with room, then re-run; or restore on one connection, which stages nothing: \`${raCommand('restore', '--recipe', recipe.file, '--backup', set.id, '--jobs', '1')}\``,
      });
      continue;
    }
    if (d.freeBytes < d.neededBytes) {
      // Safety copies earlier restores left on that disk: what could be dropped, and how (by identity).
      const kept = (facts.keptCopies ?? []).filter((k) => k.component === d.component);
      const keptBytes = kept.reduce((n, k) => n + k.bytes, 0);
      problems.push({
        code: 'disk-space',
        component: d.component,
        severity: 'error',
        message:
          `Not enough free disk at ${d.path} for ${d.what}: ${d.freeBytes} bytes free, ${d.neededBytes} needed.` +
          (kept.length > 0
            ? ` Safety copies earlier restores kept there (${keptBytes} bytes): ${kept.map((k) => `${k.location} (${k.bytes} bytes)`).join(', ')}.`
            : ''),
        next:
          kept.length > 0
            ? `Drop the copies you no longer need (by identity; one an unfinished run needs is refused): restore-assistant safety-copies drop --recipe ${recipe.file} ${kept[0]!.location}${kept.length > 1 ? ` (list them all: restore-assistant safety-copies --recipe ${recipe.file})` : ''}; or free space on the file system holding ${d.path}, then re-run.`
            : `Free space on the file system holding ${d.path}, then re-run.`,
      });
    }
  }
  for (const m of facts.moveAside ?? []) {
    if (!wants(m.component)) continue;
    problems.push({
      code: 'disk-space',
      component: m.component,
      severity: 'error',
      message: `${m.path} is a mount point (another file system than its parent): the safety copy, a rename beside it, cannot move it aside, and a copy to another file system is not what the restore does.`,
      next: `Keep ${m.component === 'redis' ? "Redis's" : "Prometheus's"} data in a directory inside that file system (for example ${m.path}/data, with the service's configuration and the recipe's components.${m.component}.dataDir pointing there), so the rename stays on one file system, then re-run.`,
    });
  }
  return problems;
}

/** A BackupSet good enough for probing, rebuilt from what a plan records. */
export function setFromPlan(plan: Plan): BackupSet {
  return {
    id: plan.backup.id,
    layout: plan.backup.layout,
    root: plan.backup.location,
    location: plan.backup.location,
    time: plan.backup.time,
    timeSource: 'metadata',
    components: plan.backup.components.map((c) => ({
      kind: c.kind,
      format: c.format,
      path: c.path,
      size: c.size,
      checksum: 'absent' as const,
    })),
    metadata: {},
    warnings: [],
    totalSize: plan.backup.components.reduce((a, c) => a + c.size, 0),
  };
}

/**
 * The engine's preflight: probe again (read-only) right before the first step, and return the
 * problems, including facts that changed since the plan was built (re-plan then).
 */
export async function runPreflight(
  plan: Plan,
  recipe: LoadedRecipe,
  opts: ProbeOptions & { verify?: VerifyReport } = {},
): Promise<PreflightProblem[]> {
  const set = setFromPlan(plan);
  // After the confirmation: the servers are asked again, the backup files are not read again
  // (issue 14). What verification and the plan's probe learned of them is carried while each
  // file is still the one it was learned from (a stat); a file that is not is refused here, and
  // one swapped later is refused by the verified-bytes guard when a step consumes it.
  const facts = await probeFacts(recipe, set, opts.verify, {
    ...opts,
    known: plan.facts,
    carryOnly: true,
    ...(plan.options.safetyDir ? { safetyDir: plan.options.safetyDir } : {}),
  });
  const problems = preflightProblems(recipe, set, facts, {
    missingRoles: plan.options.missingRoles,
    ...(plan.options.only ? { only: plan.options.only } : {}),
    parallel: plan.steps.some((st) => st.actions.some((a) => a.type === 'exec' && a.input?.parallel !== undefined)),
  });
  const before = plan.facts;
  const changed: string[] = [];
  if (before.redis && facts.redis && before.redis.source === 'server' && facts.redis.source === 'server') {
    for (const k of ['dir', 'dbfilename', 'appendonly', 'appenddirname', 'appendfilename'] as const) {
      if (before.redis[k] !== facts.redis[k]) changed.push(`Redis ${k} was ${String(before.redis[k])}, now ${String(facts.redis[k])}`);
    }
  }
  if (before.postgres?.missingRoles && facts.postgres?.missingRoles) {
    const a = before.postgres.missingRoles.join(',');
    const b = facts.postgres.missingRoles.join(',');
    if (a !== b) changed.push(`roles missing on the server were [${a}], now [${b}]`);
  }
  for (const comp of plan.backup.components) {
    try {
      const s = await stat(comp.path);
      if (s.isFile() && s.size !== comp.size) changed.push(`${comp.path} was ${comp.size} bytes, now ${s.size}`);
      else if (s.isFile() && comp.identity && !sameIdentity(comp.identity, fileIdentity(s)))
        changed.push(`${comp.path} is not the file that was verified: ${identityChange(comp.identity, fileIdentity(s))}`);
    } catch {
      changed.push(`${comp.path} is gone`);
    }
  }
  const notReread = facts.postgres?.dump?.notReread;
  const pgPath = plan.backup.components.find((c) => c.kind === 'postgres')?.path;
  if (notReread && !(pgPath && changed.some((c) => c.startsWith(`${pgPath} `)))) changed.push(notReread);
  if (changed.length > 0) {
    problems.push({
      code: 'facts-changed',
      severity: 'error',
      message: `The targets changed since the plan was built: ${changed.join('; ')}.`,
      next: `Build the plan again (\`${raCommand('plan', '--recipe', plan.recipe.file, '--backup', plan.backup.id)}\`) and re-confirm.`,
    });
  }
  return problems;
}
