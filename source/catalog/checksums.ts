import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { sanitizeText } from '../text/sanitize.js';

/** Read chunk size for every streamed pass: big enough for hashing throughput, small enough to keep memory flat. */
export const READ_CHUNK = 1024 * 1024;
/** Checksum files are small; more than this is not a checksum file. */
const MAX_SUMS_BYTES = 4 * 1024 * 1024;

export interface ParsedSums {
  /** File name (as written, leading "./" and "*" removed) → lower-case hex sha256. */
  sums: Map<string, string>;
  warnings: string[];
}

/**
 * Parse `sha256sum` output (`<hex>  <name>` or `<hex> *<name>`), BSD `SHA256 (<name>) = <hex>`,
 * or a bare hex digest (a sidecar holding only the digest: name '').
 */
export function parseSha256Sums(text: string, label = 'SHA256SUMS'): ParsedSums {
  const sums = new Map<string, string>();
  const warnings: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '')
      .slice(0, 8192)
      .replace(/\u0000/g, '')
      .trim();
    if (line === '' || line.startsWith('#')) continue;
    let m = /^\\?([0-9a-fA-F]{64})(?:\s+\*?(.+)|)$/.exec(line);
    if (m) {
      sums.set(normalizeName(m[2] ?? ''), m[1]!.toLowerCase());
      continue;
    }
    m = /^SHA256\s*\((.+)\)\s*=\s*([0-9a-fA-F]{64})$/.exec(line);
    if (m) {
      sums.set(normalizeName(m[1]!), m[2]!.toLowerCase());
      continue;
    }
    if (warnings.length < 10)
      warnings.push(`${label} line ${i + 1} is not a sha256 line (ignored): ${JSON.stringify(sanitizeText(line, 80))}`);
  }
  return { sums, warnings };
}

function normalizeName(name: string): string {
  return name.trim().replace(/^\.\//, '');
}

/** Read a small text file (checksum list, metadata) with a byte cap. */
export async function readSmallText(file: string, maxBytes = MAX_SUMS_BYTES): Promise<{ text: string; truncated: boolean; size: number }> {
  await assertRegularFile(file);
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await fh.read(buf, off, len - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return { text: buf.subarray(0, off).toString('utf8'), truncated: size > maxBytes, size };
  } finally {
    await fh.close();
  }
}

/** Opening a FIFO blocks until a writer appears: refuse anything that is not a regular file before opening it. */
export async function assertRegularFile(file: string): Promise<void> {
  const s = await stat(file);
  if (!s.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'ENOTREG' });
}

/**
 * Look up the expected digest of `file` in parsed sums found in `sumsDir`: by path relative to
 * that directory, then by base name.
 */
export function lookupSum(sums: Map<string, string>, sumsDir: string, file: string): string | undefined {
  const rel = path.relative(sumsDir, file).split(path.sep).join('/');
  return sums.get(rel) ?? sums.get(path.basename(file));
}

/** sha256 of a file, streamed in READ_CHUNK pieces. */
export async function sha256File(
  file: string,
  opts: { signal?: AbortSignal; onBytes?: (bytesDone: number) => void } = {},
): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  const stream = createReadStream(file, { highWaterMark: READ_CHUNK, ...(opts.signal ? { signal: opts.signal } : {}) });
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    opts.onBytes?.(done);
  }
  return hash.digest('hex');
}
