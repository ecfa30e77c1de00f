import type { PlannedAction } from '../actions/types.js';
import type { ComponentFormat, ComponentKind, FileIdentity, Layout } from '../catalog/types.js';

/**
 * A plan is pure data: everything a restore will do, decided before anything is touched.
 * `plan` prints it, the confirm screen shows it, evidence records it, the engine runs it.
 */

export type Phase = 'preflight' | 'quiesce' | 'postgres' | 'redis' | 'prometheus' | 'start' | 'health' | 'cleanup';

/** Lanes let independent steps run concurrently (Redis and Prometheus while PostgreSQL restores). */
export type Lane = 'main' | 'postgres' | 'redis' | 'prometheus';

export interface SafetyCopy {
  component: ComponentKind | 'services';
  kind: 'rename' | 'dump' | 'move' | 'none';
  /** Where it is kept: a database name, a directory, a file. */
  location: string;
  description: string;
}

export interface PlanStep {
  id: string;
  /** Imperative title shown while planned/running: "Restore PostgreSQL database app". */
  title: string;
  /** Past-participle title once done: "PostgreSQL database app restored". */
  doneTitle: string;
  phase: Phase;
  lane: Lane;
  component?: ComponentKind | 'services';
  destructive: boolean;
  /** What this step destroys, in words (for the confirm screen). */
  destroys?: string;
  safetyCopy?: SafetyCopy;
  actions: PlannedAction[];
  /** How this step is undone, in reverse order of steps, on failure or interrupt. */
  undo?: { title: string; actions: PlannedAction[] };
  /** Step ids that must finish first. */
  dependsOn: string[];
}

export interface PlanBackup {
  id: string;
  time: string;
  layout: Layout;
  location: string;
  /**
   * `sha256`: the digest the set records (sidecar, SHA256SUMS); `verifiedSha256` and `identity`: what
   * verification hashed and the file it hashed. The engine restores only those bytes (docs/architecture.md).
   */
  components: Array<{
    kind: ComponentKind;
    format: ComponentFormat;
    path: string;
    size: number;
    sha256?: string;
    verifiedSha256?: string;
    identity?: FileIdentity;
  }>;
}

/** Facts learned read-only from the running targets before planning (or taken from the recipe). */
export interface TargetFacts {
  postgres?: {
    serverVersion?: string;
    serverMajor?: number;
    clientMajor?: number;
    missingRoles?: string[];
    databaseExists?: boolean;
    /** server_version_num, e.g. 150012. */
    serverVersionNum?: number;
    /** Client versions as `pg_restore --version` / `psql --version` print them ("15.12"). */
    pgRestoreVersion?: string;
    psqlVersion?: string;
    /** Client tools that could not be run (in the component's exec context). */
    missingTools?: string[];
    /** Why each missing tool could not be run (first error line, redacted). */
    toolErrors?: Record<string, string>;
    /** Whether the server answered with the recipe's credentials; the error when it did not. */
    reachable?: boolean;
    error?: string;
    /** Roles the dump references (OWNER TO, GRANT ... TO, REVOKE ... FROM, SET ROLE). */
    referencedRoles?: string[];
    /** Whether the recipe's owner role exists on the server. */
    ownerExists?: boolean;
    /** Size of the current database in bytes (for a dump safety copy). */
    databaseSize?: number;
    /** The server's data_directory (rename mode, when this role may read it), for its disk room. */
    dataDirectory?: string;
    /** Why the server's own disk room was not checked (remote, container, no privilege). */
    diskUnchecked?: string;
    /** What the dump says about itself. */
    dump?: DumpFacts;
  };
  redis?: {
    dir: string;
    dbfilename: string;
    appendonly: boolean;
    appenddirname: string;
    version?: string;
    source: 'server' | 'recipe';
    /** Redis 7+ AOF base name (CONFIG GET appendfilename), default appendonly.aof. */
    appendfilename?: string;
    /** Major version when known (7 uses a multi-part AOF directory, < 7 a single appendonly.aof). */
    versionMajor?: number;
    reachable?: boolean;
    error?: string;
    /** Keys in the backup RDB (from verification or redis-check-rdb), for the key-count check. */
    backupKeys?: number;
    /** Where `appendonly` came from when the server did not say (issue 11); absent: not learned. */
    appendonlyFrom?: 'server' | 'config-file' | 'recipe' | 'aof-dir';
    /** The redis.conf read while the server was down, and why it could not be read. */
    configFile?: string;
    configError?: string;
    /** An AOF (dir or file) exists in the data dir (checked while the server was down). */
    aofFound?: boolean;
  };
  prometheus?: { ready?: boolean; error?: string };
  /** Free bytes where safety copies and restored files go, keyed by the directory that was measured. */
  disk?: Array<{
    component: 'postgres' | 'redis' | 'prometheus';
    path: string;
    freeBytes: number;
    neededBytes: number;
    what: string;
    /** Needed only when the plain dump is restored in parallel (the splitter's staging spill, engine/plain-split/). */
    parallelOnly?: boolean;
  }>;
  /** Safety copies earlier restores left on a disk that falls short (probe/copy-room.ts), for the refusal to name. */
  keptCopies?: Array<{ component: 'postgres' | 'redis' | 'prometheus'; location: string; bytes: number }>;
  /** Live data a rename cannot move aside (a mount point: its device differs from its parent's). */
  moveAside?: Array<{ component: 'postgres' | 'redis' | 'prometheus'; path: string }>;
  /** Containers of docker/compose components (docker inspect), and the helper images they need. */
  containers?: Array<{
    component: 'postgres' | 'redis' | 'prometheus';
    name: string;
    exists: boolean;
    running?: boolean;
    /** Image the container runs (as named when it was created). */
    image?: string;
    /** Set when docker itself could not be run or answered with an error other than "no such container". */
    error?: string;
    helperImage?: { image: string; present: boolean; error?: string };
  }>;
  /** When the facts were probed (ISO-8601 UTC); absent with --offline. */
  probedAt?: string;
}

/** What a PostgreSQL dump records about itself (header lines, archive TOC). */
export interface DumpFacts {
  /** "17.6" from "Dumped by pg_dump version 17.6" (plain) or the archive header (custom). */
  pgDumpVersion?: string;
  /** Server version the dump was taken from. */
  serverVersion?: string;
  /** Plain dumps from pg_dump 17.6 / 16.10 / 15.14 / 14.19 / 13.22 on start with `\restrict KEY`. */
  restrict?: boolean;
  /** The database the dump was taken from (archive TOC `dbname:`; a plain dump's CREATE DATABASE). Plain dumps without --create do not record it. */
  database?: string;
  /** When pg_dump wrote it (archive TOC "Archive created at"); plain dumps do not record it. */
  createdAt?: string;
  /** Custom/directory archives: number of TOC entries (`pg_restore --list`), for progress. */
  tocEntries?: number;
  /** When the client could not read the archive header (e.g. a newer archive version). */
  unreadable?: string;
  /**
   * The file these facts (and the postgres facts' referencedRoles) were read from, unchanged from
   * the first byte read to the last; absent for a directory archive or when it changed meanwhile.
   * The preflight after the confirmation uses them while the file is still this one, and reads
   * nothing of the dump (issue 14).
   */
  identity?: FileIdentity;
  /** Who read the dump for them: deep verification (in its one read, `sha256` its digest) or the probe. */
  readBy?: 'verification' | 'probe';
  sha256?: string;
  /** Preflight only: why the dump was not read again (it is not the file the plan's facts came from). */
  notReread?: string;
}

export interface PlanOptions {
  yes: boolean;
  rollbackOnUnhealthy: boolean;
  dropSafetyCopies: boolean;
  /** What to do with roles the dump references that the server lacks. */
  missingRoles: 'create' | 'skip-ownership' | 'fail';
  /** Components to restore (default: all the recipe and the set both have). */
  only?: ComponentKind[];
  parallel: boolean;
  jobs: number;
  /** Recorded when the operator chose a set that failed verification. */
  overrideRejected?: string;
  /** Recorded when the operator restores a set naming another database (--allow-database-mismatch): the reason. */
  allowDatabaseMismatch?: string;
  /** Host directory for safety copies that are files (a pg_dump safety copy). Default: beside the evidence dir. */
  safetyDir?: string;
}

export interface Plan {
  version: 1;
  mode: 'restore' | 'drill';
  createdAt: string;
  /** A short unique id, used for safety-copy names and the run directory. */
  stamp: string;
  recipe: { name: string; file: string; digest: string };
  backup: PlanBackup;
  /** Human descriptions of the targets: "PostgreSQL app on 127.0.0.1:5432 (host)". */
  targets: Partial<Record<ComponentKind, string>>;
  steps: PlanStep[];
  /** The targets this plan locks (engine/target-identity.ts `identityLockKeys`, by the session): taken before verify and probe, held until the run ends. */
  lockKeys: string[];
  options: PlanOptions;
  facts: TargetFacts;
  warnings: string[];
  objectives: { rtoMinutes?: number; rpoMinutes?: number };
}
