import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import S3rver from 's3rver';
import AWSAccount from 's3rver/lib/models/account.js';
import { checkSigV4, type ServedRequest } from './s3.js';

/**
 * The S3 sandbox's server process (started by startS3 in s3.ts with node --openssl-legacy-provider:
 * s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its legacy
 * provider). argv: rootDir bucket accessKeyId port; the secret comes on stdin-less IPC, never argv.
 */

function keyOf(url: string, bucket: string): string {
  const path = url.split('?')[0] ?? '';
  const prefix = `/${bucket}/`;
  return path.startsWith(prefix) ? decodeURIComponent(path.slice(prefix.length)) : '';
}

interface Start {
  type: 'start';
  rootDir: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  port: number;
}
type Message = Start | { type: 'stall'; value: { keyContains: string; afterBytes: number } | undefined } | { type: 'sync'; id: number };

const send = (m: unknown): void => {
  process.send?.(m);
};

let stallRule: { keyContains: string; afterBytes: number } | undefined;

async function start(m: Start): Promise<void> {
  AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
  AWSAccount.DUMMY_ACCOUNT.createKeyPair(m.accessKeyId, m.secretAccessKey);
  await mkdir(join(m.rootDir, 'data'), { recursive: true });
  const app = new S3rver({
    directory: join(m.rootDir, 'data'),
    silent: process.env['S3_SANDBOX_LOG'] !== '1',
    configureBuckets: [{ name: m.bucket }],
  });
  await app.configureBuckets();
  const handle = app.callback();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const why = checkSigV4(req, m.accessKeyId, m.secretAccessKey);
    if (why) {
      send({ type: 'refused', why });
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>${why}</Message></Error>`);
      return;
    }
    const key = keyOf(req.url ?? '/', m.bucket);
    const record: ServedRequest = {
      method: req.method ?? 'GET',
      key,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      status: 0,
      bytes: 0,
    };
    const stall = req.method === 'GET' && key !== '' && stallRule && key.includes(stallRule.keyContains) ? stallRule.afterBytes : undefined;
    const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    let stalled = false;
    let reported = false;
    const report = (): void => {
      if (reported) return;
      reported = true;
      record.status = res.statusCode;
      send({ type: 'served', record });
    };
    res.on('finish', report);
    res.on('close', report);
    const take = (chunk: unknown): Buffer | undefined => {
      if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined;
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      if (stall === undefined) {
        record.bytes += buf.length;
        return buf;
      }
      const room = Math.max(0, stall - record.bytes);
      if (buf.length > room) {
        if (!stalled) send({ type: 'stalled', key, bytes: record.bytes + room });
        stalled = true;
      }
      const part = buf.subarray(0, room);
      record.bytes += part.length;
      return part;
    };
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      const part = take(chunk);
      if (stalled && (part === undefined || part.length === 0)) return true;
      return write(part, ...rest);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      const part = take(chunk);
      if (stalled) {
        if (part !== undefined && part.length > 0) write(part);
        return res;
      }
      if (part === undefined) return end(...(typeof chunk === 'function' ? [chunk] : rest));
      return end(part, ...rest);
    }) as typeof res.end;
    handle(req, res);
  });
  server.on('error', (e) => send({ type: 'error', message: `cannot listen on 127.0.0.1:${m.port}: ${e.message}` }));
  server.listen(m.port, '127.0.0.1', () => send({ type: 'ready' }));
}

process.on('message', (m: Message) => {
  if (m.type === 'start') start(m).catch((e: unknown) => send({ type: 'error', message: String(e) }));
  else if (m.type === 'stall') stallRule = m.value;
  else if (m.type === 'sync') send({ type: 'sync', id: m.id });
});
process.on('disconnect', () => process.exit(0));
