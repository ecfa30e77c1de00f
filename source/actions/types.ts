import type { Check } from '../recipe/schema.js';

/**
 * The action vocabulary: everything a plan step can do, as data. The target modules (targets/)
 * build these, plan/ arranges them into steps, the engine (engine/actions.ts) performs them, and
 * actions/describe.ts is the one place that says them to people.
 */

/** Maps a child-process env var to the operator's env var that holds the secret (names only, never values). */
export type EnvFrom = Record<string, string>;

/** A command exactly as it will run (argv, after the exec context wrapped it). */
export interface PlannedCommand {
  argv: string[];
  /** One line: what this command does. */
  purpose: string;
  /** Where it runs, e.g. "host" or "docker exec story-portal-postgres". */
  runsIn: string;
  /**
   * Stream a file into stdin (decompressed with Node's gunzip when gunzip is set). `psqlRestrict`:
   * the engine sends `\restrict <key>` (a key it makes at run time, recorded nowhere) before the
   * file's bytes and drops pg_dump's own `\restrict`/`\unrestrict` pair (engine/psql-guard.ts), so
   * psql refuses every meta-command in the file.
   */
  input?: {
    file: string;
    gunzip?: boolean;
    filter?: 'strip-ownership-and-acl';
    psqlRestrict?: boolean;
    /**
     * A plain dump restored in parallel (issue 14, engine/plain-split/): one pass over the file cuts
     * it at pg_dump's section markers (catalog/plain-sections.ts); pre-data runs on one psql, table
     * data and then indexes/constraints and foreign keys on `jobs` psql connections (this argv, each
     * restricted with the run's key), the rest in dump order on one. `entries`: the TOC entries
     * verification counted (the progress total). Run by hand, the same command with the file on
     * stdin gives the same database (the single stream). `truncateBeforeCopy` (throwaway scratch
     * clusters only, with wal_level minimal: drills): each table's data loads in one transaction
     * that first truncates the (new, empty) table, so the load writes no WAL.
     */
    parallel?: { jobs: number; entries?: number; truncateBeforeCopy?: boolean };
  };
  /** Child env var name -> operator env var name holding the value. */
  envFrom?: EnvFrom;
  okExitCodes?: number[];
  timeoutSeconds?: number;
  /** How progress is measured for this command. */
  progress?: 'input-bytes' | 'pg-restore-items';
  /** Total items for pg-restore-items progress (TOC entries). */
  progressTotal?: number;
  /**
   * Record a run fact from this command's output once it succeeds: the last non-empty stdout line,
   * which must match `pattern` (the new database's OID). Later commands of the run name it in their
   * argv as `{{fact:NAME}}`; a command naming a fact the run has not recorded is refused, not run
   * (undo by identity: drop only the database this run created); `{{fact?:NAME}}` reads SQL NULL
   * instead. Facts are in the run's events and journal.
   */
  record?: { fact: string; pattern: string; what: string };
}

/** The placeholder for a run fact in an argv element (see PlannedCommand.record). */
/** The run fact holding the identity of a file or directory the run created or moved (engine/path-identity.ts). */
export function pathFact(name: string): string {
  return `path.${name}`;
}

export function factRef(name: string, opts: { orNull?: boolean } = {}): string {
  return opts.orNull ? `{{fact?:${name}}}` : `{{fact:${name}}}`;
}

/** A non-command action the engine performs itself (still fully described here). */
export type PlannedAction =
  | ({ type: 'exec' } & PlannedCommand)
  /** `until: 'down'` waits until the port refuses connections ("really stopped"); default 'up'. */
  | { type: 'wait-tcp'; host: string; port: number; timeoutSeconds: number; purpose: string; until?: 'up' | 'down' }
  /** `until: 'down'` waits until the URL no longer answers (connection refused / reset); default 'up'. */
  | { type: 'wait-http'; url: string; timeoutSeconds: number; purpose: string; expectStatus?: number; until?: 'up' | 'down' }
  | { type: 'wait-command'; command: PlannedCommand; timeoutSeconds: number; untilExit: 'zero' | 'non-zero'; purpose: string }
  | { type: 'extract-tar'; archive: string; dest: string; purpose: string; recordAs?: string }
  | {
      type: 'move';
      from: string;
      to: string;
      purpose: string;
      ifExists?: boolean;
      displaceTo?: string;
      /** Undo by identity: `from` must be what this run recorded under this fact (else refused, nothing moved). */
      expect?: string;
      /** Already done (skipped) when `from` holds the object recorded under one of these facts. */
      doneIf?: string[];
      /** Record what was moved, at `to`, under this fact. */
      recordAs?: string;
    }
  /** Redis 7 AOF dir DIR holding FROM as BASE and a MANIFEST naming it, built in staging and renamed into place. */
  | { type: 'install-aof'; from: string; dir: string; base: string; manifest: string; purpose: string; recordAs?: string }
  | { type: 'copy-file'; from: string; to: string; purpose: string; recordAs?: string }
  /**
   * Remove each path only if it is what this run recorded under `expect` (absent: nothing to do;
   * holding the object recorded under one of `doneIf`, e.g. the previous data already put back: left alone).
   */
  | { type: 'remove'; paths: Array<{ path: string; expect: string; doneIf?: string[] }>; purpose: string }
  /**
   * Record what is at each path now under `recordAs`. `rewrittenOnly`: only where this run had
   * recorded a regular file and a regular file is there now (the service it started rewrote it
   * after it stopped, e.g. Redis saving its RDB); a directory, a link, or a name it never put
   * anything at is never adopted.
   */
  | { type: 'record-identity'; paths: Array<{ path: string; recordAs: string }>; purpose: string; rewrittenOnly?: boolean }
  /**
   * Write `content` to `path` on the host: `create` makes a new file (O_CREAT|O_EXCL|O_NOFOLLOW, fails
   * if anything has the name); `append` adds to an existing regular file opened O_APPEND|O_NOFOLLOW
   * (a symlink or a hard-linked file is refused). Used for a restored cluster's recovery settings.
   */
  | { type: 'write-file'; path: string; content: string; mode: 'create' | 'append'; fileMode?: number; purpose: string }
  /**
   * Follow a PostgreSQL server recovering from WAL: `command` (psql -At) prints
   * `in_recovery|replay_lsn|last_replayed_commit` every second; progress is the replayed LSN against
   * `targetLsn` (the end of the WAL it will replay) from `startLsn`, with an ETA. Done when the server
   * has left recovery; fails after `timeoutSeconds`, or when the server stops answering after it had.
   */
  | {
      type: 'follow-recovery';
      command: PlannedCommand;
      startLsn: string;
      targetLsn?: string;
      /** Recovery that ends (promotes) before this LSN stopped early (a segment could not be restored): fails. */
      expectAtLeastLsn?: string;
      timeoutSeconds: number;
      purpose: string;
    }
  | { type: 'check'; check: Check; purpose: string }
  | { type: 'note'; purpose: string };
