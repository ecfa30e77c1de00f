import path from 'node:path';
import {
  MKDIR_SCRIPT,
  MOVE_IF_EXISTS_SCRIPT,
  REMOVE_PLACED_SCRIPT,
  WRITE_AOF_MANIFEST_SCRIPT,
  contextLabel,
  copyIntoArgv,
  helperLabel,
  shScript,
  volumeHelperArgv,
  wrapArgv,
} from '../exec/context.js';
import { UsageError } from '../errors.js';
import { pathFact, type PlannedAction, type PlannedCommand } from '../actions/types.js';
import type { Check, RedisTarget } from '../recipe/schema.js';

/**
 * What each Redis step runs. redis-cli gets the password through REDISCLI_AUTH (from the recipe's
 * passwordEnv), never `-a`. Files of a stopped Redis: host actions (move, copy-file) on the host;
 * `docker cp` and a helper container over the stopped container's volumes otherwise.
 */

/** Where the restored files go, as learned from the server (or the recipe). */
export interface RedisLayout {
  dir: string;
  dbfilename: string;
  appendonly: boolean;
  appenddirname: string;
  appendfilename: string;
  /** 7 and later: multi-part AOF in a directory with a manifest. */
  multiPartAof: boolean;
}

function envFrom(target: RedisTarget): Pick<PlannedCommand, 'envFrom'> {
  return target.passwordEnv ? { envFrom: { REDISCLI_AUTH: target.passwordEnv } } : {};
}

function envNames(target: RedisTarget): string[] {
  return target.passwordEnv ? ['REDISCLI_AUTH'] : [];
}

export function redisCliArgv(target: RedisTarget, args: readonly string[], db?: number): string[] {
  return wrapArgv(target.exec, ['redis-cli', '-h', target.host, '-p', String(target.port), ...(db ? ['-n', String(db)] : []), ...args], {
    env: envNames(target),
  });
}

export function redisCliCommand(target: RedisTarget, args: readonly string[], purpose: string, db?: number): PlannedCommand {
  return { argv: redisCliArgv(target, args, db), purpose, runsIn: contextLabel(target.exec), ...envFrom(target), timeoutSeconds: 15 };
}

/**
 * Exits 0 only when Redis answers PING with PONG: while it loads the dataset it answers
 * "LOADING ..." (and redis-cli exits 0 even on error replies, so the reply text is compared).
 */
export function pongCommand(target: RedisTarget): PlannedCommand {
  const argv = shScript('[ "$(redis-cli "$@" PING 2>/dev/null)" = PONG ]', ['-h', target.host, '-p', String(target.port)]);
  return {
    argv: wrapArgv(target.exec, argv, { env: envNames(target) }),
    purpose: 'Answers PONG (not LOADING)',
    runsIn: contextLabel(target.exec),
    ...envFrom(target),
    timeoutSeconds: 10,
  };
}

function hostExec(argv: string[], purpose: string): PlannedAction {
  return { type: 'exec', argv, purpose, runsIn: 'host' };
}

function j(...parts: string[]): string {
  return path.posix.join(...parts);
}

/** Paths of the live files this restore replaces, and where each goes aside. */
export function redisFiles(layout: RedisLayout, stamp: string): Array<{ key: 'rdb' | 'aof'; path: string; aside: string; what: string }> {
  const files: Array<{ key: 'rdb' | 'aof'; path: string; aside: string; what: string }> = [
    {
      key: 'rdb',
      path: j(layout.dir, layout.dbfilename),
      aside: j(layout.dir, `${layout.dbfilename}.pre_restore_${stamp}`),
      what: 'RDB file',
    },
  ];
  if (layout.multiPartAof) {
    files.push({
      key: 'aof',
      path: j(layout.dir, layout.appenddirname),
      aside: j(layout.dir, `${layout.appenddirname}.pre_restore_${stamp}`),
      what: 'AOF directory',
    });
  } else {
    files.push({
      key: 'aof',
      path: j(layout.dir, layout.appendfilename),
      aside: j(layout.dir, `${layout.appendfilename}.pre_restore_${stamp}`),
      what: 'AOF file',
    });
  }
  return files;
}

/**
 * Run facts of undo by identity (engine/path-identity.ts): what the safety copy moved aside, and
 * what the restore (or the Redis it started) put at the live names.
 */
export const asideFact = (key: 'rdb' | 'aof'): string => pathFact(`redis.aside.${key}`);
export const placedFact = (key: 'rdb' | 'aof'): string => pathFact(`redis.placed.${key}`);

function moveAction(target: RedisTarget, from: string, to: string, purpose: string, recordAs?: string): PlannedAction {
  if (target.exec.kind === 'host') return { type: 'move', from, to, purpose, ifExists: true, ...(recordAs ? { recordAs } : {}) };
  return {
    type: 'exec',
    argv: volumeHelperArgv(target.exec, shScript(MOVE_IF_EXISTS_SCRIPT, [from, to])),
    purpose,
    runsIn: helperLabel(target.exec),
  };
}

/** Move the current RDB and AOF aside (when they exist). */
export function safetyMoveActions(target: RedisTarget, layout: RedisLayout, stamp: string): PlannedAction[] {
  return redisFiles(layout, stamp).map((f) =>
    moveAction(target, f.path, f.aside, `Move the current ${f.what} aside to ${f.aside}`, asideFact(f.key)),
  );
}

/**
 * Undo: put the moved files back (after the restored ones were removed). On the host, whatever is
 * at a name by then (an AOF Redis created when it started on the restored data, say) is moved to
 * `<name>.failed_restore_<stamp>` first instead of blocking the move, so the undo and its pasted
 * form (`describeAction`) both work. The caller stops Redis first (the undo's first actions).
 */
export function safetyMoveBackActions(target: RedisTarget, layout: RedisLayout, stamp: string): PlannedAction[] {
  return redisFiles(layout, stamp).map((f): PlannedAction => {
    const purpose = `Put the previous ${f.what} back`;
    if (target.exec.kind === 'host')
      return {
        type: 'move',
        from: f.aside,
        to: f.path,
        purpose,
        ifExists: true,
        displaceTo: `${f.path}.failed_restore_${stamp}`,
        expect: asideFact(f.key),
      };
    return moveAction(target, f.aside, f.path, purpose);
  });
}

/**
 * Files this restore creates (for the undo): the RDB and the AOF (dir or file). The AOF is
 * listed even when appendonly is off: what is at its name after the restore (moved aside before)
 * was created by this restore or by the Redis it started, never the pre-restore data.
 */
export function placedPaths(layout: RedisLayout): string[] {
  return placedFiles(layout).map((f) => f.path);
}

function placedFiles(layout: RedisLayout): Array<{ key: 'rdb' | 'aof'; path: string }> {
  return [
    { key: 'rdb', path: j(layout.dir, layout.dbfilename) },
    { key: 'aof', path: layout.multiPartAof ? j(layout.dir, layout.appenddirname) : j(layout.dir, layout.appendfilename) },
  ];
}

/**
 * After this run stopped the Redis it started (the undo of the start): a restored file that Redis
 * rewrote (it saves its RDB on shutdown: a new inode) is recorded as this run's, so the removal of
 * the restored files that follows removes exactly that. Only a regular file this run had put
 * there, replaced by a regular file, is adopted: a directory (appendonlydir keeps its inode), a
 * link, or a name the run never put anything at is not. Host only.
 */
export function recordPlacedActions(target: RedisTarget, layout: RedisLayout): PlannedAction[] {
  if (target.exec.kind !== 'host') return [];
  return [
    {
      type: 'record-identity',
      paths: placedFiles(layout).map((f) => ({ path: f.path, recordAs: placedFact(f.key) })),
      rewrittenOnly: true,
      purpose: 'Record the restored files the Redis this run started rewrote (the next undo removes only those)',
    },
  ];
}

function placedByRestore(layout: RedisLayout): string[] {
  const paths = [j(layout.dir, layout.dbfilename)];
  if (layout.appendonly) paths.push(layout.multiPartAof ? j(layout.dir, layout.appenddirname) : j(layout.dir, layout.appendfilename));
  return paths;
}

/** A Redis 7 AOF file name is written unquoted into the manifest: only plain names. */
function plainAofName(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name === '.' || name === '..') {
    throw new UsageError(
      `Redis appendfilename ${JSON.stringify(name)} is not a plain file name (letters, digits, . _ -): refusing to write it into the AOF manifest.`,
      {
        next: "Check the server's appendfilename (CONFIG GET appendfilename) or its config file.",
      },
    );
  }
  return name;
}

/**
 * Put the backup's RDB in place. With appendonly on, Redis loads the AOF and ignores the RDB, so
 * the RDB is also installed as what the AOF loader reads: Redis 7+: `<appenddirname>/<appendfilename>.1.base.rdb`
 * with a manifest naming it as the base; Redis < 7: the RDB as `appendonly.aof` (an RDB-preamble AOF).
 */
export function placeActions(target: RedisTarget, layout: RedisLayout, rdb: string): PlannedAction[] {
  const rdbPath = j(layout.dir, layout.dbfilename);
  const actions: PlannedAction[] = [];
  const copy = (to: string, purpose: string, recordAs?: string): PlannedAction => {
    const argv = copyIntoArgv(target.exec, rdb, to);
    return argv
      ? { type: 'exec', argv, purpose, runsIn: 'host' }
      : { type: 'copy-file', from: rdb, to, purpose, ...(recordAs ? { recordAs } : {}) };
  };
  const helper = (argv: string[], purpose: string): PlannedAction =>
    target.exec.kind === 'host'
      ? hostExec(argv, purpose)
      : { type: 'exec', argv: volumeHelperArgv(target.exec, argv), purpose, runsIn: helperLabel(target.exec) };

  actions.push(copy(rdbPath, `Copy the backup RDB to ${rdbPath}`, placedFact('rdb')));
  if (layout.appendonly) {
    if (layout.multiPartAof) {
      const aofDir = j(layout.dir, layout.appenddirname);
      const base = `${plainAofName(layout.appendfilename)}.1.base.rdb`;
      const manifest = `${layout.appendfilename}.manifest`;
      if (target.exec.kind === 'host') {
        // Built in a private staging dir and renamed into place as a unit: nothing is created by
        // path inside the data dir, which the redis account can write (engine/actions.ts).
        actions.push({
          type: 'install-aof',
          from: rdb,
          dir: aofDir,
          base,
          manifest,
          recordAs: placedFact('aof'),
          purpose: `Install the backup RDB as the AOF base ${aofDir}/${base} with a manifest (Redis loads the AOF, not ${layout.dbfilename}, when appendonly is on)`,
        });
      } else {
        actions.push(
          helper(shScript(MKDIR_SCRIPT, [aofDir]), `Create the AOF directory ${aofDir}`),
          copy(
            j(aofDir, base),
            `Install the backup RDB as the AOF base ${base} (appendonly is on: Redis loads the AOF, not ${layout.dbfilename})`,
          ),
          helper(shScript(WRITE_AOF_MANIFEST_SCRIPT, [j(aofDir, manifest), base]), `Write the AOF manifest naming ${base} as the base`),
        );
      }
    } else {
      const aof = j(layout.dir, layout.appendfilename);
      actions.push(
        copy(aof, `Install the backup RDB as ${layout.appendfilename} (appendonly is on; an RDB-preamble AOF loads)`, placedFact('aof')),
      );
    }
  }
  if (target.exec.kind === 'host') {
    // Redis must own what it will rewrite; the data dir's owner is the reference (no-op when equal).
    actions.push(
      hostExec(
        ['chown', '-R', `--reference=${layout.dir}`, '--', ...placedByRestore(layout)],
        `Give the restored files the owner of ${layout.dir}`,
      ),
    );
  }
  return actions;
}

/**
 * Undo of place: remove exactly the files the restore created. On the host by identity: each only
 * if it is what this run put there (or what the Redis it started left, recorded when it stopped
 * it); anything else at the name is refused and left untouched.
 */
export function removePlacedActions(target: RedisTarget, layout: RedisLayout): PlannedAction[] {
  if (target.exec.kind === 'host')
    return [
      {
        type: 'remove',
        paths: placedFiles(layout).map((f) => ({ path: f.path, expect: placedFact(f.key), doneIf: [asideFact(f.key)] })),
        purpose: 'Remove the restored files',
      },
    ];
  const argv = shScript(REMOVE_PLACED_SCRIPT, placedPaths(layout));
  return [
    { type: 'exec', argv: volumeHelperArgv(target.exec, argv), purpose: 'Remove the restored files', runsIn: helperLabel(target.exec) },
  ];
}

/** A key-count check: INFO keyspace summed over every database must be at least 1 when the backup had keys. */
export function keyCountCheck(backupKeys: number | undefined): Check {
  return {
    name: 'redis keys restored',
    redis: { command: ['INFO', 'keyspace'], min: backupKeys === 0 ? 0 : 1, db: 0 },
    timeoutSeconds: 15,
    retries: 2,
    intervalSeconds: 1,
    when: ['restore', 'drill'],
  };
}
