/**
 * Checksum throughput of `verify` against `sha256sum` on the same generated file, and the peak
 * RSS of the verify process for two file sizes (memory must stay flat). Writes the "Checksums"
 * section of docs/benchmarks.md. Not a test: numbers depend on the machine.
 *
 *   npm run bench -- checksum            (BENCH_CHECKSUM_MIB=1536 BENCH_RUNS=3 to change)
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

/** An RDB-shaped file: "REDIS0010", pseudo-random body, EOF opcode and an 8-byte trailer. */
async function generate(file: string, mib: number): Promise<string> {
  const block = randomBytes(MIB);
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  let failed: Error | undefined;
  out.on('error', (e) => {
    failed = e;
  });
  const write = async (b: Buffer): Promise<void> => {
    if (failed) throw failed;
    hash.update(b);
    if (!out.write(b)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  };
  await write(Buffer.from('REDIS0010', 'latin1'));
  for (let i = 0; i < mib; i++) {
    block.writeUInt32LE(i, 0); // no two blocks alike
    await write(block);
  }
  await write(Buffer.from([0xff, 1, 2, 3, 4, 5, 6, 7, 8]));
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return hash.digest('hex');
}

/** A plain pg_dump-shaped .sql.gz of about `mib` MiB uncompressed (gzip -1). */
async function generateSqlGz(file: string, mib: number): Promise<void> {
  const target = mib * MIB;
  async function* lines(): AsyncGenerator<string> {
    yield '--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.18\n-- Dumped by pg_dump version 15.18\n\n';
    yield 'COPY public.events (id, payload) FROM stdin;\n';
    let written = 0;
    let i = 0;
    while (written < target) {
      const chunk: string[] = [];
      for (let j = 0; j < 4096; j++, i++) chunk.push(`${i}\t${randomBytes(48).toString('hex')}\n`);
      const text = chunk.join('');
      written += text.length;
      yield text;
    }
    yield '\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n';
  }
  await pipeline(Readable.from(lines()), createGzip({ level: 1 }), createWriteStream(file));
}

interface WorkerResult {
  ok: boolean;
  uncompressedBytes?: number;
  checksum: string;
  problems: string[];
  ms: number;
  bytes: number;
  rssBeforeBytes: number;
  maxRssBytes: number;
}

async function runWorker(file: string, sha: string | undefined): Promise<WorkerResult & { wallMs: number }> {
  const t0 = performance.now();
  const args = sha ? [file, sha] : ['--deep-gz', file];
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(repo, 'bench', 'checksum-worker.ts'), ...args], {
    cwd: repo,
  });
  const wallMs = performance.now() - t0;
  return { ...(JSON.parse(stdout) as WorkerResult), wallMs };
}

async function runSha256sum(file: string, sha: string): Promise<number> {
  const t0 = performance.now();
  const { stdout } = await exec('sha256sum', [file]);
  const ms = performance.now() - t0;
  if (!stdout.startsWith(sha)) throw new Error(`sha256sum disagrees: ${stdout}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function machine(): Promise<string> {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  let shaVersion = 'sha256sum';
  try {
    shaVersion = (await exec('sha256sum', ['--version'])).stdout.split('\n')[0] ?? shaVersion;
  } catch {
    // keep the name
  }
  let shaNi = false;
  try {
    shaNi = /\bsha_ni\b/.test(await readFile('/proc/cpuinfo', 'utf8'));
  } catch {
    // not Linux
  }
  return `${cpu} (${os.cpus().length} cores${shaNi ? ', SHA-NI' : ''}), ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, Node ${process.version}, OpenSSL ${process.versions.openssl}, ${shaVersion}`;
}

async function writeSection(section: string): Promise<string> {
  const doc = path.join(repo, 'docs', 'benchmarks.md');
  let text = '';
  try {
    text = await readFile(doc, 'utf8');
  } catch {
    text = '# Benchmarks\n\nNumbers from `npm run bench`; they depend on the machine. None of them is a test.\n';
  }
  const start = text.search(/^## Checksums$/m);
  if (start >= 0) {
    const rest = text.slice(start + 1);
    const next = rest.search(/^## /m);
    text = text.slice(0, start) + section + (next >= 0 ? `\n${rest.slice(next)}` : '');
  } else {
    text = `${text.trimEnd()}\n\n${section}`;
  }
  await writeFile(doc, text.endsWith('\n') ? text : `${text}\n`);
  return doc;
}

export async function runChecksumBench(): Promise<void> {
  const bigMib = Number(process.env['BENCH_CHECKSUM_MIB'] ?? 1024);
  const smallMib = Math.max(16, Math.round(bigMib / 8));
  const runs = Number(process.env['BENCH_RUNS'] ?? 3);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ra-bench-checksum-'));
  try {
    process.stderr.write(`Generating ${bigMib} MiB and ${smallMib} MiB files in ${dir}…\n`);
    const big = path.join(dir, 'big.rdb');
    const small = path.join(dir, 'small.rdb');
    const bigSha = await generate(big, bigMib);
    const smallSha = await generate(small, smallMib);
    // Warm the page cache so both sides measure hashing, not the disk.
    await runSha256sum(big, bigSha);

    const shaMs: number[] = [];
    const verifyMs: number[] = [];
    const verifyWallMs: number[] = [];
    const bigRss: number[] = [];
    for (let i = 0; i < runs; i++) {
      shaMs.push(await runSha256sum(big, bigSha));
      const w = await runWorker(big, bigSha);
      if (!w.ok || w.checksum !== 'verified') throw new Error(`verify did not verify the checksum: ${JSON.stringify(w)}`);
      verifyMs.push(w.ms);
      verifyWallMs.push(w.wallMs);
      bigRss.push(w.maxRssBytes);
      process.stderr.write(
        `run ${i + 1}/${runs}: sha256sum ${shaMs.at(-1)?.toFixed(0)} ms, verify ${w.ms.toFixed(0)} ms (process ${w.wallMs.toFixed(0)} ms), peak RSS ${(w.maxRssBytes / MIB).toFixed(0)} MiB\n`,
      );
    }
    const smallRuns = await runWorker(small, smallSha);
    // Deep verification of a plain .sql.gz: hash, gunzip and dump scan in one pass.
    const gzMib = Math.max(64, Math.round(bigMib / 2));
    const gz = path.join(dir, 'dump.sql.gz');
    process.stderr.write(`Generating a ${gzMib} MiB (uncompressed) .sql.gz…\n`);
    await generateSqlGz(gz, gzMib);
    const deep = await runWorker(gz, undefined);
    if (!deep.ok) throw new Error(`deep verify rejected the generated dump: ${JSON.stringify(deep)}`);
    const gzBytes = deep.bytes;
    const gzUncompressed = Number(deep.uncompressedBytes ?? 0);
    const bytes = bigMib * MIB + 18;
    const shaRate = bytes / MIB / (median(shaMs) / 1000);
    const verifyRate = bytes / MIB / (median(verifyMs) / 1000);
    const verifyWallRate = bytes / MIB / (median(verifyWallMs) / 1000);
    const ratio = verifyRate / shaRate;
    const rssBig = Math.max(...bigRss) / MIB;
    const rssSmall = smallRuns.maxRssBytes / MIB;
    const lines = [
      '## Checksums',
      '',
      `\`npm run bench -- checksum\` (bench/checksum.ts), ${new Date().toISOString().slice(0, 10)}, on ${await machine()}.`,
      '',
      `A generated ${bigMib} MiB RDB-shaped file in a temp dir (page cache warm, deleted afterwards) is hashed by`,
      '`sha256sum` and by `verifyBackupSet` (quick, one Redis component with an expected sha256, in its own',
      `Node process). Median of ${runs} alternating runs.`,
      '',
      '| | time | throughput |',
      '| --- | ---: | ---: |',
      `| sha256sum | ${median(shaMs).toFixed(0)} ms | ${shaRate.toFixed(0)} MiB/s |`,
      `| verify (hashing) | ${median(verifyMs).toFixed(0)} ms | ${verifyRate.toFixed(0)} MiB/s |`,
      `| verify (whole process, incl. Node/tsx start) | ${median(verifyWallMs).toFixed(0)} ms | ${verifyWallRate.toFixed(0)} MiB/s |`,
      '',
      `Individual runs: sha256sum ${shaMs.map((x) => x.toFixed(0)).join(' / ')} ms; verify ${verifyMs.map((x) => x.toFixed(0)).join(' / ')} ms (a shared 2-core machine varies).`,
      '',
      `verify reaches **${(ratio * 100).toFixed(0)}%** of sha256sum's throughput (target: at least 80%): ${ratio >= 0.8 ? 'met' : 'NOT met'}.`,
      "Node hashes with OpenSSL, which uses the CPU's SHA extensions where present; Debian's coreutils",
      '`sha256sum` uses its own portable code, so on CPUs with SHA-NI verify is the faster of the two.',
      '',
      `Peak RSS of the verify process: ${rssSmall.toFixed(0)} MiB for ${smallMib} MiB, ${rssBig.toFixed(0)} MiB for ${bigMib} MiB`,
      `(${Math.abs(rssBig - rssSmall) < 32 ? 'flat: it does not grow with the file' : 'it grows with the file size: investigate'}). Reads are 1 MiB chunks with backpressure; nothing is buffered whole.`,
      '',
      `Deep verification of a generated plain dump (${(gzBytes / MIB).toFixed(0)} MiB .sql.gz, ${(gzUncompressed / MIB).toFixed(0)} MiB uncompressed; sha256, the whole`,
      `gzip stream and the dump's header and closing line in one pass): ${(deep.ms / 1000).toFixed(1)} s, ${(gzUncompressed / MIB / (deep.ms / 1000)).toFixed(0)} MiB/s uncompressed, peak RSS ${(deep.maxRssBytes / MIB).toFixed(0)} MiB.`,
      '',
    ];
    const doc = await writeSection(lines.join('\n'));
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stderr.write(`Written to ${doc}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
