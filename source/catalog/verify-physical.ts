import { performance } from 'node:perf_hooks';
import { checksumOutcome, progressReporter, readFailure, streamPass, type ComponentRun, type VerifyOptions } from './verify-common.js';

/**
 * A pg_basebackup base.tar[.gz]: hashed (quick and deep alike), so the restore extracts exactly
 * these bytes. pg_verifybackup against backup_manifest and the WAL checks are source/pitr/verify.ts.
 */
export async function verifyBaseTar(cr: ComponentRun, opts: VerifyOptions): Promise<void> {
  const c = cr.component;
  const started = performance.now();
  const pass = await streamPass(c.path, {
    hash: true,
    gunzip: false,
    onBytes: progressReporter(cr, c.size, opts.onProgress),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (pass.readError) return readFailure(cr, pass.readError);
  cr.sha256 = pass.sha256;
  cr.identity = pass.identity;
  cr.check('read and hashed', true, started, pass.sha256 ? `sha256 ${pass.sha256.slice(0, 16)}…` : undefined);
  checksumOutcome(cr, pass.sha256, started);
}
