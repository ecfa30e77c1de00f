import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { Parser } from 'tar';
import { sanitizeText } from '../text/sanitize.js';
import { checkTarEntry, PrometheusShape } from './tar-safety.js';
import {
  checksumOutcome,
  type ComponentRun,
  gzipHeaderOk,
  gzipProblem,
  progressReporter,
  readEdges,
  readFailure,
  streamPass,
  type VerifyOptions,
} from './verify-common.js';

/** Prometheus data archives (.tar.gz): the gzip stream, every tar entry checked, the data dir's shape. */

const MAX_TAR_PROBLEMS = 20;

export async function verifyPrometheus(cr: ComponentRun, opts: VerifyOptions): Promise<void> {
  const c = cr.component;
  const signalOpt = opts.signal ? { signal: opts.signal } : {};
  let started = performance.now();
  let head: Buffer;
  try {
    ({ head } = await readEdges(c.path, c.size));
  } catch (error) {
    return readFailure(cr, error as Error);
  }
  const gzOk = gzipHeaderOk(head);
  cr.check('gzip header', gzOk, started);
  if (!gzOk) {
    cr.problem('gzip-bad-header', 'is not a gzip file (bad magic bytes)');
    return;
  }
  const onBytes = progressReporter(cr, c.size, opts.onProgress);
  if (opts.depth !== 'deep') {
    if (c.expectedSha256) {
      started = performance.now();
      const pass = await streamPass(c.path, { hash: true, gunzip: false, onBytes, ...signalOpt });
      if (pass.readError) return readFailure(cr, pass.readError);
      cr.sha256 = pass.sha256;
      cr.identity = pass.identity;
      checksumOutcome(cr, pass.sha256, started);
    }
    return;
  }
  started = performance.now();
  const shape = new PrometheusShape();
  let unsafe = 0;
  const tarWarnings: string[] = [];
  const parser = new Parser({
    onReadEntry: (entry) => {
      shape.add(entry.path);
      const p = checkTarEntry({
        path: entry.path,
        type: entry.type,
        ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}),
      });
      if (p) {
        unsafe++;
        if (unsafe <= MAX_TAR_PROBLEMS) cr.problem(p.code, p.message);
      }
      entry.resume();
    },
    onwarn: (code: string, message: string | Error) => {
      if (tarWarnings.length < 5)
        tarWarnings.push(`${code}: ${sanitizeText(typeof message === 'string' ? message : message.message, 160)}`);
    },
  });
  const pass = await streamPass(c.path, { hash: true, gunzip: true, consumer: parser as unknown as Writable, onBytes, ...signalOpt });
  if (pass.readError) return readFailure(cr, pass.readError);
  cr.sha256 = pass.sha256;
  cr.identity = pass.identity;
  checksumOutcome(cr, pass.sha256, started);
  cr.check(
    'gzip stream',
    !pass.inflateError,
    started,
    pass.inflateError ? pass.inflateError.message : `${pass.uncompressedBytes} bytes uncompressed, CRC ok`,
  );
  cr.facts['uncompressedBytes'] = pass.uncompressedBytes;
  if (pass.inflateError) gzipProblem(cr, pass.inflateError);
  if (unsafe > MAX_TAR_PROBLEMS) cr.problem('tar-unsafe-path', `${unsafe - MAX_TAR_PROBLEMS} more unsafe entries not listed`);
  const tarOk = tarWarnings.length === 0 && !pass.consumerError;
  if (!pass.inflateError && !tarOk) {
    cr.problem(
      'tar-corrupt',
      `the tar archive is damaged: ${pass.consumerError ? sanitizeText(pass.consumerError.message, 160) : tarWarnings.join('; ')}`,
    );
  }
  cr.check('tar entries', unsafe === 0 && tarOk, started, `${shape.entries} entries${unsafe > 0 ? `, ${unsafe} unsafe` : ''}`);
  cr.facts['tarEntries'] = shape.entries;
  cr.facts['prometheusBlocks'] = shape.blockCount;
  cr.facts['hasWal'] = shape.hasWal;
  cr.facts['hasChunksHead'] = shape.hasChunksHead;
  if (pass.inflateError) return;
  const shapeProblem = shape.entries > 0 ? shape.problem() : { code: 'prometheus-shape', message: 'the archive holds no entries' };
  cr.check(
    'prometheus data dir',
    !shapeProblem,
    started,
    shapeProblem
      ? shapeProblem.message
      : `${shape.blockCount} blocks${shape.hasWal ? ', wal/' : ''}${shape.hasChunksHead ? ', chunks_head/' : ''}`,
  );
  if (shapeProblem) cr.problem(shapeProblem.code, shapeProblem.message);
}
