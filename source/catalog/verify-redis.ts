import { performance } from 'node:perf_hooks';
import { sanitizeText } from '../text/sanitize.js';
import { findRedisCheckRdb } from './tools.js';
import {
  checksumOutcome,
  type ComponentRun,
  progressReporter,
  readEdges,
  readFailure,
  run_,
  streamPass,
  toolTail,
  type VerifyOptions,
} from './verify-common.js';

/** Redis RDB files: the REDIS header, the checksum, redis-check-rdb (deep). */

export async function verifyRedis(cr: ComponentRun, opts: VerifyOptions): Promise<void> {
  const c = cr.component;
  const signalOpt = opts.signal ? { signal: opts.signal } : {};
  let started = performance.now();
  let head: Buffer;
  let tail: Buffer;
  try {
    ({ head, tail } = await readEdges(c.path, c.size));
  } catch (error) {
    return readFailure(cr, error as Error);
  }
  const magic = /^REDIS(\d{4})$/.exec(head.subarray(0, 9).toString('latin1'));
  cr.check('rdb header', Boolean(magic), started, magic ? `RDB version ${Number(magic[1])}` : 'no REDIS magic');
  if (!magic) {
    cr.problem('rdb-bad-header', 'does not start with "REDIS" and a version: not an RDB file, or damaged');
    return;
  }
  const rdbVersion = Number(magic[1]);
  cr.facts['rdbVersion'] = rdbVersion;
  if (rdbVersion >= 5) {
    // The file ends with the EOF opcode (0xFF) and an 8-byte CRC64.
    const eofOk = tail.length >= 9 && tail[tail.length - 9] === 0xff;
    cr.check('rdb end marker', eofOk, started, eofOk ? 'EOF opcode and checksum present' : 'no EOF opcode before the checksum');
    if (!eofOk) cr.problem('rdb-truncated', 'does not end with the RDB EOF marker: the file is truncated');
  }
  const onBytes = progressReporter(cr, c.size, opts.onProgress);
  if (opts.depth === 'deep' || c.expectedSha256) {
    started = performance.now();
    const pass = await streamPass(c.path, { hash: true, gunzip: false, onBytes, ...signalOpt });
    if (pass.readError) return readFailure(cr, pass.readError);
    cr.sha256 = pass.sha256;
    cr.identity = pass.identity;
    checksumOutcome(cr, pass.sha256, started);
  }
  if (opts.depth !== 'deep') return;
  const tool = await findRedisCheckRdb();
  if (!tool) {
    cr.problem('tool-missing', 'redis-check-rdb was not found on PATH; install it (Debian: redis-tools) and verify again');
    return;
  }
  started = performance.now();
  const res = await run_(tool, [c.path], signalOpt, 0);
  const out = `${res.stdout}\n${res.stderr}`;
  const keys = /\[info\]\s+(\d+)\s+keys read/.exec(out)?.[1];
  const expires = /\[info\]\s+(\d+)\s+expires/.exec(out)?.[1];
  const ver = /AUX FIELD redis-ver = '([^']{1,40})'/.exec(out)?.[1];
  const ctime = /AUX FIELD ctime = '(\d{1,12})'/.exec(out)?.[1];
  if (keys !== undefined) cr.facts['redisKeys'] = Number(keys);
  if (expires !== undefined) cr.facts['redisExpires'] = Number(expires);
  if (ver) cr.facts['redisVersion'] = sanitizeText(ver, 40);
  if (ctime) cr.facts['redisCtime'] = new Date(Number(ctime) * 1000).toISOString();
  const looksOk = res.ok && /RDB looks OK/.test(out);
  const errorLines = out
    .split('\n')
    .filter((l) => /^\[offset \d+\] (?!Checking|AUX|Selecting|Checksum OK|\\o\/)/.test(l) || /^\[additional info\]/.test(l))
    .slice(0, 3);
  cr.check(
    'redis-check-rdb',
    looksOk,
    started,
    looksOk ? `${keys ?? '?'} keys read` : toolTail(errorLines.length > 0 ? errorLines : res.stderrTail),
  );
  if (!looksOk)
    cr.problem(
      'rdb-check-failed',
      `redis-check-rdb found an error: ${toolTail(errorLines.length > 0 ? errorLines : [...res.stdoutTail, ...res.stderrTail]) || `exit ${String(res.exitCode)}`}`,
    );
}
