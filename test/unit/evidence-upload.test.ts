import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../source/engine/events.js';
import { createRedactor } from '../../source/exec/redact.js';
import { HISTORY_FILE, parseHistory, parseUploadRecords } from '../../source/evidence/format.js';
import { retryDelayMs, runKeyPrefix, uploadRun } from '../../source/evidence/upload.js';
import { verifyEvidence } from '../../source/evidence/verify.js';
import { attachEvidence, newRunId } from '../../source/evidence/writer.js';
import { recipeSecretEnvNames } from '../../source/recipe/secrets.js';
import { evidenceUploadSchema, recipeSchema } from '../../source/recipe/schema.js';

/**
 * The upload logic without a network: which runs are sent, in what order, how a whole run is
 * retried with a doubling delay, and what history.jsonl records. (The S3 protocol, signatures and
 * a real store are in test/integration/evidence-upload.test.ts.)
 */

const recipe = { name: 'up', file: '/recipes/up.yaml', digest: 'd'.repeat(64) };
const upload = evidenceUploadSchema.parse({ bucket: 'evidence', prefix: 'runs/up/', attempts: 3, retryDelaySeconds: 1 });
let tmp: string;

function run(finish: boolean): { dir: string; close: () => Promise<void> } {
  const runId = newRunId('verify', recipe.name);
  const bus = new EventBus();
  const handle = attachEvidence(bus, { evidenceDir: tmp, runId, kind: 'verify', recipe, redact: createRedactor([]) });
  bus.emit({ type: 'log', level: 'info', message: 'checking' });
  if (finish) bus.emit({ type: 'run-finished', outcome: 'verified', exitCode: 0, safetyCopies: [], state: [], nextSteps: [] });
  return { dir: handle.dir, close: () => handle.close() };
}

/** A client whose first `failures` sends throw; records every key it was sent. */
function fakeClient(failures: number): { send: (c: PutObjectCommand) => Promise<{ ETag: string }>; keys: string[] } {
  let n = 0;
  const keys: string[] = [];
  return {
    keys,
    send: async (c) => {
      n++;
      if (n <= failures) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { name: 'Error' });
      keys.push(c.input.Key ?? '');
      return { ETag: `"${String(n).padStart(32, '0')}"` };
    },
  };
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-upload-unit-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('evidence upload', () => {
  it('keys are <prefix>/<run id>/<file>, with or without a trailing slash or a prefix', () => {
    expect(runKeyPrefix({ prefix: 'runs/up/' }, 'R')).toBe('runs/up/R/');
    expect(runKeyPrefix({ prefix: 'runs/up' }, 'R')).toBe('runs/up/R/');
    expect(runKeyPrefix({ prefix: '' }, 'R')).toBe('R/');
  });

  it("the evidence bucket's credential variables are the recipe's secrets (redacted; in schedule's EnvironmentFile)", () => {
    const base = { name: 'up', backups: { root: '/b' }, components: {} };
    const named = recipeSchema.parse({
      ...base,
      evidence: { upload: { bucket: 'evidence', accessKeyIdEnv: 'EV_KEY', secretAccessKeyEnv: 'EV_SECRET' } },
    });
    expect(recipeSecretEnvNames(named)).toEqual(['EV_KEY', 'EV_SECRET', 'AWS_SESSION_TOKEN']);
    const chain = recipeSchema.parse({ ...base, evidence: { upload: { bucket: 'evidence' } } });
    expect(recipeSecretEnvNames(chain)).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']);
  });

  it('the delay doubles from retryDelaySeconds, capped at a minute', () => {
    expect([2, 3, 4].map((n) => retryDelayMs(upload, n))).toEqual([1000, 2000, 4000]);
    expect(retryDelayMs({ retryDelaySeconds: 50 }, 4)).toBe(60_000);
  });

  it('retries the whole run after failures, sends events.jsonl last, skips symlinks, and records the upload', async () => {
    const r = run(true);
    await r.close();
    writeFileSync(path.join(os.tmpdir(), `ra-upload-secret-${process.pid}`), 'not evidence');
    symlinkSync(path.join(os.tmpdir(), `ra-upload-secret-${process.pid}`), path.join(r.dir, 'planted.json'));
    const client = fakeClient(2);
    const waits: number[] = [];
    const logs: string[] = [];
    const res = await uploadRun(r.dir, upload, recipe.name, {
      client,
      sleep: async (ms) => void waits.push(ms),
      log: (l) => logs.push(l),
    });
    rmSync(path.join(os.tmpdir(), `ra-upload-secret-${process.pid}`));
    expect(res.status).toBe('uploaded');
    expect(waits).toEqual([1000, 2000]);
    expect(logs[0]).toContain('try 1 of 3 failed');
    const runId = path.basename(r.dir);
    expect(client.keys.at(-1)).toBe(`runs/up/${runId}/events.jsonl`);
    expect(client.keys).not.toContain(`runs/up/${runId}/planted.json`);
    expect(client.keys).toContain(`runs/up/${runId}/report.json`);
    const text = readFileSync(path.join(tmp, HISTORY_FILE), 'utf8');
    const rec = parseUploadRecords(text).find((x) => x.runId === runId)!;
    expect(rec).toMatchObject({ status: 'uploaded', attempts: 3, url: `s3://evidence/runs/up/${runId}/` });
    expect(rec.objects.find((o) => o.key.endsWith('events.jsonl'))?.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The upload record is not a run entry: the seal is still cross-checked against the run's entry.
    expect(parseHistory(text).filter((e) => e.runId === runId)).toHaveLength(1);
    const v = await verifyEvidence(r.dir);
    expect(v).toMatchObject({ status: 'sealed', indexed: true });
  });

  it('records a failure after the last try, with why', async () => {
    const r = run(true);
    await r.close();
    const res = await uploadRun(r.dir, upload, recipe.name, { client: fakeClient(99), sleep: async () => undefined });
    expect(res.status).toBe('failed');
    const rec = parseUploadRecords(readFileSync(path.join(tmp, HISTORY_FILE), 'utf8')).find((x) => x.runId === path.basename(r.dir))!;
    expect(rec).toMatchObject({ status: 'failed', attempts: 3, objects: [] });
    expect(rec.why).toContain('ECONNREFUSED');
  });

  it('sends nothing from a run that is not sealed, or whose evidence was edited', async () => {
    const open = run(false);
    const client = fakeClient(0);
    const r1 = await uploadRun(open.dir, upload, recipe.name, { client });
    expect(r1).toMatchObject({ status: 'refused', exitCode: 6 });
    await open.close();

    const edited = run(true);
    await edited.close();
    const file = path.join(edited.dir, 'events.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8').replace('checking', 'checkinG'));
    const r2 = await uploadRun(edited.dir, upload, recipe.name, { client });
    expect(r2).toMatchObject({ status: 'refused', exitCode: 7 });
    expect(client.keys).toEqual([]);
  });
});
