/**
 * Child process of bench/checksum.ts: verifies one generated RDB-shaped file with an expected
 * sha256 the way `restore-assistant verify --quick` does, and reports its own time and peak RSS.
 * Usage: node --import tsx bench/checksum-worker.ts <file> <sha256>
 */
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { verifyBackupSet } from '../source/catalog/verify.js';

async function main(): Promise<void> {
  const [file, sha256] = process.argv.slice(2);
  if (!file || !sha256) throw new Error('usage: checksum-worker.ts <file> <sha256>');
  const { size } = await stat(file);
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
      components: [{ kind: 'redis', format: 'redis-rdb', path: file, size, expectedSha256: sha256, checksumSource: 'sidecar', checksum: 'present' }],
      metadata: {},
      warnings: [],
      totalSize: size,
    },
    { depth: 'quick' },
  );
  const ms = performance.now() - t0;
  process.stdout.write(
    `${JSON.stringify({
      ok: report.ok,
      checksum: report.components[0]?.checksum,
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
