import os from 'node:os';

/**
 * postgresql.conf lines for a throwaway cluster a restore goes into (drills, the demo, bench/):
 * nothing on it outlives the run, so durability is traded for load speed (issue 14). Never for a
 * real target: the engine restores in place with the server's own settings; only source/sandbox/
 * (drill scratch, demo world, benchmarks) uses these.
 *
 * - fsync, synchronous_commit, full_page_writes off (the sandbox's non-durable default);
 * - wal_level minimal (with no WAL senders): a table created or truncated in the transaction that
 *   loads it writes no WAL for the load (a drill's parallel plain restore truncates each table in
 *   its COPY's transaction: PlannedCommand.input.parallel.truncateBeforeCopy);
 * - fewer checkpoints during a big load (max_wal_size 4GB, checkpoint_timeout 30min);
 * - maintenance_work_mem sized to the host: a quarter of the memory shared by the parallel index
 *   builds (one per core), between 64 MB and 1 GB.
 */
export function scratchRestoreConf(totalMemBytes = os.totalmem(), cores = os.availableParallelism()): string[] {
  const mb = Math.floor(totalMemBytes / 4 / Math.max(1, cores) / (1024 * 1024));
  const mwm = Math.max(64, Math.min(1024, mb));
  return [
    'wal_level = minimal',
    'max_wal_senders = 0',
    'archive_mode = off',
    'max_wal_size = 4GB',
    'checkpoint_timeout = 30min',
    `maintenance_work_mem = ${mwm}MB`,
  ];
}

/** One line for plans and evidence: what a scratch cluster runs with. */
export function scratchRestoreSummary(): string {
  return `non-durable scratch settings (fsync, synchronous_commit and full_page_writes off; ${scratchRestoreConf().join(', ')})`;
}
