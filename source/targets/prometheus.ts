import path from 'node:path';
import {
  MOVE_CONTENTS_ASIDE_SCRIPT,
  MOVE_CONTENTS_BACK_SCRIPT,
  PROMETHEUS_FINISH_SCRIPT,
  REMOVE_PLACED_SCRIPT,
  extractIntoArgv,
  helperLabel,
  shScript,
  volumeHelperArgv,
} from '../exec/context.js';
import { pathFact, type PlannedAction } from '../actions/types.js';
import type { Check, PrometheusTarget } from '../recipe/schema.js';

/**
 * What each Prometheus step runs.
 *
 * Host: the data dir is renamed aside to `<dataDir>.pre_restore_<stamp>` and the tarball is
 * extracted by the engine (`extract-tar`: listed and checked first, extracted into a fresh temp
 * dir, renamed into place).
 *
 * Container: the data dir is normally a volume mount point, which cannot be renamed. A helper
 * container (`docker run --rm --volumes-from`, the Prometheus container is stopped) moves its
 * entries into `<dataDir>/.pre_restore_<stamp>` (same file system: a rename, no copy; Prometheus
 * ignores directories that are not block ULIDs), the decompressed tar stream goes in with
 * `docker cp - container:<dataDir>` (nothing staged on disk), and the helper removes the stale
 * `lock` / `queries.active` and chowns. The set's verification rejects unsafe tar paths
 * before any of this runs.
 */

export function baseUrl(target: PrometheusTarget): string {
  return target.url.replace(/\/+$/, '');
}

export function readyUrl(target: PrometheusTarget): string {
  return `${baseUrl(target)}/-/ready`;
}

export function hostAsidePath(target: PrometheusTarget, stamp: string): string {
  return `${target.dataDir.replace(/\/+$/, '')}.pre_restore_${stamp}`;
}

export function containerAsideName(stamp: string): string {
  return `.pre_restore_${stamp}`;
}

/** Where the safety copy is kept, in words for the plan. */
export function safetyLocation(target: PrometheusTarget, stamp: string): string {
  return target.exec.kind === 'host'
    ? hostAsidePath(target, stamp)
    : `${path.posix.join(target.dataDir, containerAsideName(stamp))} (inside the volume of ${target.exec.container})`;
}

/** Run facts of undo by identity (engine/path-identity.ts): the data moved aside, the restored data dir, and it moved away. */
export const ASIDE_FACT = pathFact('prometheus.aside');
export const RESTORED_FACT = pathFact('prometheus.restored');
export const FAILED_FACT = pathFact('prometheus.failed');

export function moveAsideActions(target: PrometheusTarget, stamp: string): PlannedAction[] {
  if (target.exec.kind === 'host') {
    return [
      {
        type: 'move',
        from: target.dataDir,
        to: hostAsidePath(target, stamp),
        purpose: `Move the data dir aside to ${hostAsidePath(target, stamp)}`,
        ifExists: true,
        recordAs: ASIDE_FACT,
      },
    ];
  }
  return [
    {
      type: 'exec',
      argv: volumeHelperArgv(target.exec, shScript(MOVE_CONTENTS_ASIDE_SCRIPT, [target.dataDir, containerAsideName(stamp)])),
      purpose: `Move the contents of ${target.dataDir} into ${containerAsideName(stamp)} (a rename inside the volume)`,
      runsIn: helperLabel(target.exec),
    },
  ];
}

/**
 * Undo of the move aside and the extraction: the restored data is moved out of the way as
 * `.failed_restore_<stamp>`, the old data comes back, and the restored data (a copy of the
 * backup, which stays untouched) is removed, so no `data.failed_restore_*` is left behind (issue 11).
 */
export function moveBackActions(target: PrometheusTarget, stamp: string): PlannedAction[] {
  if (target.exec.kind === 'host') {
    const failed = `${target.dataDir.replace(/\/+$/, '')}.failed_restore_${stamp}`;
    // By identity: only the directory this run extracted is moved away and removed, only the one
    // it moved aside is put back; the previous data already back is left as it is (idempotent).
    return [
      {
        type: 'move',
        from: target.dataDir,
        to: failed,
        purpose: `Move the restored data dir away to ${failed}`,
        ifExists: true,
        expect: RESTORED_FACT,
        doneIf: [ASIDE_FACT],
        recordAs: FAILED_FACT,
      },
      {
        type: 'move',
        from: hostAsidePath(target, stamp),
        to: target.dataDir,
        purpose: 'Put the previous data dir back',
        ifExists: true,
        expect: ASIDE_FACT,
      },
      {
        type: 'remove',
        paths: [{ path: failed, expect: FAILED_FACT }],
        purpose: `Remove the restored data (${failed}, a copy of the backup)`,
      },
    ];
  }
  return [
    {
      type: 'exec',
      argv: volumeHelperArgv(
        target.exec,
        shScript(MOVE_CONTENTS_BACK_SCRIPT, [target.dataDir, containerAsideName(stamp), `.failed_restore_${stamp}`]),
      ),
      purpose: `Move the restored data into .failed_restore_${stamp} and the previous data back`,
      runsIn: helperLabel(target.exec),
    },
    {
      type: 'exec',
      argv: volumeHelperArgv(target.exec, shScript(REMOVE_PLACED_SCRIPT, [path.posix.join(target.dataDir, `.failed_restore_${stamp}`)])),
      purpose: `Remove the restored data (.failed_restore_${stamp}, a copy of the backup)`,
      runsIn: helperLabel(target.exec),
    },
  ];
}

export function extractActions(target: PrometheusTarget, archive: string): PlannedAction[] {
  const owner = target.owner ?? '';
  if (target.exec.kind === 'host') {
    const actions: PlannedAction[] = [
      {
        type: 'extract-tar',
        archive,
        dest: target.dataDir,
        purpose: `Extract ${path.basename(archive)} into a fresh ${target.dataDir}`,
        recordAs: RESTORED_FACT,
      },
      {
        type: 'exec',
        argv: ['rm', '-f', '--', path.posix.join(target.dataDir, 'lock'), path.posix.join(target.dataDir, 'queries.active')],
        purpose: 'Remove the stale lock and queries.active the live-dir backup carried',
        runsIn: 'host',
      },
    ];
    if (owner)
      actions.push({
        type: 'exec',
        argv: ['chown', '-R', '--', owner, target.dataDir],
        purpose: `Give the data dir to ${owner}`,
        runsIn: 'host',
      });
    return actions;
  }
  const cp = extractIntoArgv(target.exec, target.dataDir) ?? [];
  return [
    {
      type: 'exec',
      argv: cp,
      purpose: `Stream ${path.basename(archive)} (decompressed) into ${target.dataDir} with docker cp`,
      runsIn: 'host',
      input: { file: archive, gunzip: true },
      progress: 'input-bytes',
    },
    {
      type: 'exec',
      argv: volumeHelperArgv(target.exec, shScript(PROMETHEUS_FINISH_SCRIPT, [target.dataDir, owner])),
      purpose: `Remove the stale lock and queries.active${owner ? ` and give the data to ${owner}` : ''}`,
      runsIn: helperLabel(target.exec),
    },
  ];
}

/**
 * Series exist around the backup's time: every series with a sample within an hour either side
 * of it (evaluated an hour after it, looking back two). The recorded time is when the backup job
 * *started*; the data dir is tarred minutes later, so samples after it are legitimately in the
 * backup, and a Prometheus started shortly before the backup has none before it. An empty result
 * means nothing came back.
 */
export function seriesCheck(backupTime: string): Check {
  const evalAt = new Date(Date.parse(backupTime) + 3_600_000).toISOString();
  return {
    name: 'prometheus series restored',
    promql: { query: 'count(last_over_time({__name__=~".+"}[2h]))', minSeries: 1, time: evalAt },
    timeoutSeconds: 30,
    retries: 5,
    intervalSeconds: 2,
    when: ['restore', 'drill'],
  };
}
