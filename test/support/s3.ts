import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../../source/sandbox/index.js';

/**
 * A real S3-compatible server process on 127.0.0.1 for the off-site tests: s3rver 3 (npm; the S3 REST API
 * over a temp directory: ListObjectsV2 with continuation tokens, ranged GETs, ETags, multipart)
 * behind a front that checks every request's AWS Signature V4 against the one key pair it knows
 * (s3rver itself parses SigV4 but does not check it), and records what it served (method, key,
 * Range, body bytes) so a test can count the bytes a resumed download fetched.
 */

export interface ServedRequest {
  method: string;
  /** The object key (URL-decoded), or '' for bucket requests. */
  key: string;
  /** The Range header, if any. */
  range?: string;
  status: number;
  /** Body bytes written. */
  bytes: number;
}

export interface S3Sandbox {
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly rootDir: string;
  /** Every request answered, in order. */
  readonly served: ServedRequest[];
  /** Requests refused for a bad or missing signature. */
  readonly refusedSignatures: number;
  /**
   * While set, a GET of a key containing `keyContains` sends `afterBytes` body bytes and then
   * nothing more (the connection stays open until the client goes away).
   */
  stall: { keyContains: string; afterBytes: number } | undefined;
  /** Resolves once every request answered so far is in `served`. */
  sync(): Promise<void>;
  /** An SDK client signed with the sandbox's key. */
  client(): S3Client;
  put(key: string, body: Buffer | string): Promise<void>;
  dispose(): Promise<void>;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(raw: string): string {
  if (raw === '') return '';
  return raw
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const k = decodeURIComponent((i < 0 ? p : p.slice(0, i)).replace(/\+/g, '%20'));
      const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1).replace(/\+/g, '%20'));
      return [rfc3986(k), rfc3986(v)] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** Checks an Authorization: AWS4-HMAC-SHA256 header. Returns the reason it fails, or undefined. */
export function checkSigV4(req: IncomingMessage, accessKeyId: string, secret: string): string | undefined {
  const auth = req.headers.authorization;
  if (!auth) return 'no Authorization header';
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return 'not an AWS4-HMAC-SHA256 Authorization header';
  const [, key, day, region, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  if (key !== accessKeyId) return 'unknown access key';
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day)) return 'x-amz-date does not match the credential scope';
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
  if (!payloadHash) return 'no x-amz-content-sha256';
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return 'host is not signed';
  const headerLines = names.map((n) => {
    const v = req.headers[n];
    const value = Array.isArray(v) ? v.join(',') : (v ?? '');
    return `${n}:${String(value).trim().replace(/\s+/g, ' ')}\n`;
  });
  const canonical = [req.method ?? 'GET', rawPath, canonicalQuery(rawQuery), headerLines.join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = [ALGORITHM, amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let k: Buffer = createHmac('sha256', `AWS4${secret}`).update(day).digest();
  for (const part of [region, 's3', 'aws4_request']) k = createHmac('sha256', k).update(part).digest();
  const expected = createHmac('sha256', k).update(toSign).digest();
  const given = Buffer.from(signature, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? undefined : 'signature does not match';
}

const here = dirname(fileURLToPath(import.meta.url));

/** Starts the server process (test/support/s3-server.ts) on a free loopback port with a fresh key pair. */
export async function startS3(options: { bucket?: string; baseDir?: string; region?: string; port?: number } = {}): Promise<S3Sandbox> {
  const rootDir = await mkdtemp(join(options.baseDir ?? tmpdir(), 'ra-s3-'));
  const bucket = options.bucket ?? 'backups';
  const region = options.region ?? 'eu-central-1';
  // Not the s3rver default pair: a fresh one per server, so a test can grep for it.
  const accessKeyId = `AKRA${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  // A given port: a test that first finds the server down (nothing listening there), then starts it.
  const port = options.port ?? (await freePort());
  const served: ServedRequest[] = [];
  let refused = 0;
  let stall: S3Sandbox['stall'];
  let syncId = 0;
  const syncs = new Map<number, () => void>();
  const child: ChildProcess = fork(join(here, 's3-server.ts'), [], {
    execArgv: ['--openssl-legacy-provider', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`S3 sandbox server exited (${code ?? signal}) before it was ready`)));
    child.on('message', (m: { type: string; record?: ServedRequest; id?: number; message?: string }) => {
      if (m.type === 'ready') resolve();
      else if (m.type === 'error') reject(new Error(`S3 sandbox: ${m.message}`));
      else if (m.type === 'served' && m.record) served.push(m.record);
      else if (m.type === 'refused') refused++;
      else if (m.type === 'sync' && m.id !== undefined) syncs.get(m.id)?.();
    });
  });
  child.send({ type: 'start', rootDir, bucket, accessKeyId, secretAccessKey, port });
  await ready;
  const endpoint = `http://127.0.0.1:${port}`;
  let client: S3Client | undefined;
  const makeClient = (): S3Client =>
    (client ??= new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }));
  return {
    endpoint,
    port,
    bucket,
    region,
    accessKeyId,
    secretAccessKey,
    rootDir,
    served,
    get refusedSignatures() {
      return refused;
    },
    get stall() {
      return stall;
    },
    set stall(value) {
      stall = value;
      child.send({ type: 'stall', value });
    },
    sync() {
      const id = ++syncId;
      return new Promise<void>((resolve) => {
        syncs.set(id, () => {
          syncs.delete(id);
          resolve();
        });
        child.send({ type: 'sync', id });
      });
    },
    client: makeClient,
    async put(key, body) {
      await makeClient().send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body }),
      );
    },
    async dispose() {
      client?.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      await rm(rootDir, { recursive: true, force: true });
    },
  };
}
