/** The data model of backups on disk. The catalog produces it; verify, plan and evidence read it. */

export type Layout = 'story-portal' | 'metachat' | 'flat' | 'physical';

/** Every component kind, in restore order. A new kind starts here (docs/architecture.md, "Adding a component kind"). */
export const COMPONENT_KINDS = ['postgres', 'redis', 'prometheus'] as const;

export type ComponentKind = (typeof COMPONENT_KINDS)[number];

/** How people read each kind (plans, screens, summaries, evidence). */
export const componentLabel: Record<ComponentKind, string> = { postgres: 'PostgreSQL', redis: 'Redis', prometheus: 'Prometheus' };

export type ComponentFormat =
  /** plain SQL from pg_dump */
  | 'pg-plain'
  /** plain SQL, gzip-compressed (pg_dump | gzip) */
  | 'pg-plain-gz'
  /** pg_dump -Fc */
  | 'pg-custom'
  /** pg_dump -Fd (a directory) */
  | 'pg-directory'
  /** Redis RDB snapshot */
  | 'redis-rdb'
  /** tar.gz of a Prometheus data dir (live dir or TSDB snapshot) */
  | 'prometheus-tar-gz'
  /** pg_basebackup -Ft base.tar or base.tar.gz (with backup_manifest; restored to a point in time with the WAL archive, source/pitr/) */
  | 'pg-base-tar';

export type ChecksumStatus =
  /** an expected checksum exists and the file matched it */
  | 'verified'
  /** an expected checksum exists and the file did NOT match */
  | 'mismatch'
  /** an expected checksum exists but has not been compared yet (list does not hash) */
  | 'present'
  /** no expected checksum recorded for this file */
  | 'absent';

export interface BackupComponent {
  kind: ComponentKind;
  format: ComponentFormat;
  /** Absolute path of the file (or directory for pg-directory). */
  path: string;
  /** Bytes on disk (sum of files for a directory). */
  size: number;
  /** Expected sha256 (hex) when a sidecar, SHA256SUMS or metadata records one. */
  expectedSha256?: string;
  checksumSource?: 'sidecar' | 'SHA256SUMS' | 'metadata';
  checksum: ChecksumStatus;
  /** Database name when the layout records one (metachat: from the file name). */
  database?: string;
  /** Time this component records (metachat files each carry their own). ISO-8601 UTC. */
  time?: string;
  /**
   * The file is encrypted (`<name>.gpg` / `<name>.age`): `format` is what its plain name says. It is
   * decrypted into the staging directory before it is verified or restored (source/offsite/local.ts).
   */
  encryption?: ComponentEncryption;
}

export type ComponentEncryption = 'gpg' | 'age';

export interface BackupSet {
  /** Stable id the operator types: story-portal: the directory name; metachat: YYYYMMDD_HHMMSS of the dump. */
  id: string;
  layout: Layout;
  /** The backup root it was found under. */
  root: string;
  /** The set's directory (story-portal) or the root (metachat). */
  location: string;
  /** When the backup was taken, as the backup records it (never file mtime). ISO-8601 UTC. */
  time: string;
  /** Where `time` came from. */
  timeSource: 'metadata' | 'name';
  components: BackupComponent[];
  /** Parsed metadata.txt (story-portal): keys to a value or an indented list. Data only, never run. */
  metadata: Record<string, string | string[]>;
  /** Problems noticed while cataloging (unreadable file, 0-byte file, unparseable metadata). */
  warnings: string[];
  /** Sum of component sizes. */
  totalSize: number;
  /** A set downloaded from an off-site bucket (source/offsite/): where its files came from. */
  origin?: OffsiteOrigin;
}

/** One object of an off-site set as it was staged: what the evidence records. */
export interface StagedObject {
  key: string;
  etag: string;
  versionId?: string;
  size: number;
  sha256: string;
  /** Bytes fetched by this run (less than size when an interrupted download was resumed). */
  fetchedBytes: number;
  /** Where this run resumed an earlier download from (bytes already on disk). */
  resumedFrom?: number;
  /** Decrypted with this tool into the staged set. */
  decryptedWith?: 'gpg' | 'age';
}

export interface OffsiteOrigin {
  /** s3://bucket/prefix, or the local directory of an encrypted local set (decrypted into staging). */
  url: string;
  /** Where the set was staged from: a bucket (default) or an encrypted set on local disk. */
  source?: 'offsite' | 'local';
  endpoint?: string;
  /** The staging directory of this set (download/ and set/ below it). */
  stagingDir: string;
  objects: StagedObject[];
  /** Removed after the run unless kept (backups.offsite.keepStaged). */
  keep: boolean;
}

export interface VerifyProblem {
  component?: ComponentKind;
  path?: string;
  /** A short machine-readable code, e.g. 'checksum-mismatch', 'gzip-truncated', 'tar-unsafe-path'. */
  code: string;
  message: string;
  /** The line of a plain dump the problem is on (psql meta-commands). */
  line?: number;
}

/**
 * What identifies the exact bytes of a file on this host without reading it again: any rename
 * over it changes dev/ino, any write changes size/mtime and ctime (which no unprivileged user can
 * set back). Recorded from the descriptor the verification hashed.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** What a plain dump's role scan learned (the roles it references, its header). */
export interface DumpScan {
  roles: string[];
  restrict: boolean;
  pgDumpVersion?: string;
  serverVersion?: string;
}

export interface ComponentVerification {
  kind: ComponentKind;
  path: string;
  checks: Array<{ name: string; ok: boolean; detail?: string; durationMs: number }>;
  sha256?: string;
  /** Identity of the file the sha256 was computed from (absent for directories and failed reads). */
  identity?: FileIdentity;
  ok: boolean;
  /** The component's format (as cataloged). */
  format?: ComponentFormat;
  /** Bytes on disk. */
  size?: number;
  /** Checksum outcome after verification: 'verified' / 'mismatch', or 'absent' when nothing was expected. */
  checksum?: ChecksumStatus;
  /**
   * Facts learned while verifying, for plan/engine/evidence. Known keys: tocEntries (number),
   * pgDumpVersion, pgServerVersion, dumpFormatVersion, archiveCreatedAt, dbname (custom/directory
   * dumps); plainDumpHasRestrictLine (boolean: psql older than 15.14/16.10/17.6 rejects `\restrict`);
   * redisKeys, redisExpires, rdbVersion, redisVersion, redisCtime; prometheusBlocks, hasWal,
   * hasChunksHead, tarEntries, uncompressedBytes; pgRestore (the binary used), tocHeaderEntries,
   * archiveFormat, compression; notChecked (string[]: what a quick verification left out).
   */
  facts?: Record<string, unknown>;
  /**
   * A plain dump's role scan (catalog/sql-roles.ts), made in the same read as `sha256` and bound
   * to `identity`: the probe and the preflight use it instead of reading the dump again while the
   * file is still that one.
   */
  dumpScan?: DumpScan;
}

export interface VerifyReport {
  setId: string;
  ok: boolean;
  /** 'quick': checksums and structure headers; 'deep': whole streams, pg_restore --list, redis-check-rdb, every tar entry. */
  depth: 'quick' | 'deep';
  components: ComponentVerification[];
  problems: VerifyProblem[];
  /** Things worth knowing that do not reject the set (odd metadata, cataloging notes). */
  warnings?: string[];
  startedAt: string;
  durationMs: number;
}
