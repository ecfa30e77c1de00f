import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type S3Sandbox } from '../support/s3.js';

/** The S3 server the off-site tests use: signatures checked, listing paged, ranges served. */

describe('S3 sandbox (s3rver behind a SigV4 check)', () => {
  let s3: S3Sandbox;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3?.dispose();
  });

  it('pages ListObjectsV2 with continuation tokens', async () => {
    const n = 1100;
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => s3.put(`many/obj-${String(i + j).padStart(5, '0')}`, `x${i + j}`)));
    }
    const keys: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3
        .client()
        .send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'many/', ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of page.Contents ?? []) keys.push(o.Key ?? '');
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      pages++;
    } while (token);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(keys).toHaveLength(n);
    expect(new Set(keys).size).toBe(n);
  });

  it('serves ranged GETs and counts the bytes it sent', async () => {
    await s3.put('ranged/blob', Buffer.from('0123456789abcdef'));
    const res = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'ranged/blob', Range: 'bytes=10-' }));
    expect(await res.Body?.transformToString()).toBe('abcdef');
    await s3.sync();
    const rec = s3.served.filter((r) => r.key === 'ranged/blob' && r.method === 'GET').at(-1);
    expect(rec?.range).toBe('bytes=10-');
    expect(rec?.bytes).toBe(6);
  });

  it('stalls a GET after a given number of bytes while told to', async () => {
    await s3.put('stall/blob', Buffer.alloc(100_000, 7));
    s3.stall = { keyContains: 'stall/', afterBytes: 40_000 };
    const res = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'stall/blob' }));
    let got = 0;
    const reader = (res.Body as NodeJS.ReadableStream)[Symbol.asyncIterator]();
    while (got < 40_000) got += ((await reader.next()).value as Buffer).length;
    expect(got).toBe(40_000);
    (res.Body as unknown as { destroy(): void }).destroy();
    s3.stall = undefined;
    const again = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'stall/blob', Range: 'bytes=40000-' }));
    expect((await again.Body?.transformToByteArray())?.length).toBe(60_000);
  });

  it('refuses a request signed with the wrong secret', async () => {
    const before = s3.refusedSignatures;
    const wrong = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: `${s3.secretAccessKey}x` },
    });
    await expect(wrong.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).rejects.toThrow();
    wrong.destroy();
    await s3.sync();
    expect(s3.refusedSignatures).toBe(before + 1);
  });
});
