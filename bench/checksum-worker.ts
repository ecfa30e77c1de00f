/**
 * Child process of bench/checksum.ts: verifies one generated RDB-shaped file with an expected
 * sha256 the way `restore-assistant verify --quick` does, and reports its own time and peak RSS.
 * Usage: node --import tsx bench/checksum-worker.ts <file> <sha256>
 *        node --import tsx bench/checksum-worker.ts --deep-gz <file.sql.gz>   (deep: hash + gunzip + dump scan in one pass)
 */
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { verifyBackupSet } from '../source/catalog/verify.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const deepGz = args[0] === '--deep-gz';
  const [file, sha256] = deepGz ? args.slice(1) : args;
  if (!file || (!sha256 && !deepGz)) throw new Error('usage: checksum-worker.ts <file> <sha256> | --deep-gz <file.sql.gz>');
  const { size } = await stat(file);
  const component = deepGz
    ? { kind: 'postgres' as const, format: 'pg-plain-gz' as const, path: file, size, checksum: 'absent' as const }
    : {
        kind: 'redis' as const,
        format: 'redis-rdb' as const,
        path: file,
        size,
        expectedSha256: sha256,
        checksumSource: 'sidecar' as const,
        checksum: 'present' as const,
      };
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const report = await verifyBackupSet(
    {
      id: 'bench',
      layout: 'flat',
      root: '/',
      location: '/',
      time: new Date().toISOString(),
      timeSource: 'name',
      components: [component],
      metadata: {},
      warnings: [],
      totalSize: size,
    },
    { depth: deepGz ? 'deep' : 'quick' },
  );
  const ms = performance.now() - t0;
  process.stdout.write(
    `${JSON.stringify({
      ok: report.ok,
      checksum: report.components[0]?.checksum,
      uncompressedBytes: report.components[0]?.facts?.['uncompressedBytes'],
      problems: report.problems.map((p) => p.code),
      ms,
      bytes: size,
      rssBeforeBytes: rssBefore,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
