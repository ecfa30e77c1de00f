import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, constants as fsConstants, fsyncSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createExclusive, openAppendNoFollowSync } from '../exec/safe-fs.js';
import { listObjects, offsiteClient, offsiteError } from '../offsite/client.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { EvidenceUpload } from '../recipe/schema.js';
import { evidenceDir } from '../state/paths.js';
import { raCommand } from '../text/next.js';
import { safeJsonStringify, sanitizeDeep, sanitizeText } from '../text/sanitize.js';
import { EVENTS_FILE, HISTORY_FILE, parseUploadRecords, RUN_ID_PATTERN, UPLOAD_FORMAT, type UploadRecord } from './format.js';
import { readHistory } from './history.js';
import { verifyEvidence } from './verify.js';
import type { EvidenceHandle } from './writer.js';

/**
 * Evidence off-site (issue 15): every sealed run directory is copied to the recipe's
 * `evidence.upload` bucket after the run, each file under `<prefix>/<run id>/<file>`, with the
 * client and credential rules of backups.offsite (offsite/client.ts: `*Env` names or the AWS SDK
 * chain; never the recipe, argv or evidence). Only a run whose seal verifies is sent (nothing
 * before the seal, nothing tampered); events.jsonl goes last, so a copy that lacks it is visibly
 * incomplete. Each object carries Content-MD5 (the store refuses other bytes) and its sha256 as
 * metadata. A whole run is retried with a doubling delay; the outcome (uploaded: keys, ETags, when;
 * failed: why) is appended to history.jsonl as an upload record. A failed upload is a warning: the
 * run's exit code stays its own, and `evidence upload` sends it later. `fetchRun` brings a run back
 * (`evidence fetch`); `evidence verify` then checks its seal on the copy.
 */

const FILE_MODE = 0o640;
const DIR_MODE = 0o750;
/** Names a run directory holds (events.jsonl, report.*, seal.sig.json, journal.jsonl): nothing else is sent or written. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$/;
/** One request may take this long before it counts as a failed try (a hung endpoint must not hold the terminal). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Bounds on what a fetch accepts from the bucket (a run directory is a handful of small files). */
const MAX_FETCH_OBJECTS = 64;
const MAX_FETCH_BYTES = 1024 * 1024 * 1024;

export const UPLOAD_FIELD = 'evidence.upload';

/** `<prefix>/<run id>/` (the prefix without a trailing slash; none when empty). */
export function runKeyPrefix(u: Pick<EvidenceUpload, 'prefix'>, runId: string): string {
  const p = u.prefix.replace(/\/+$/, '');
  return p ? `${p}/${runId}/` : `${runId}/`;
}

/** s3://bucket/<prefix>/ : where the recipe's runs go. */
export function uploadRootUrl(u: EvidenceUpload): string {
  const p = u.prefix.replace(/\/+$/, '');
  return `s3://${u.bucket}/${p ? `${p}/` : ''}`;
}

export function runUrl(u: EvidenceUpload, runId: string): string {
  return `s3://${u.bucket}/${runKeyPrefix(u, runId)}`;
}

interface RunFile {
  name: string;
  bytes: Buffer;
  sha256: string;
  md5: string;
}

/**
 * The files of a run directory: regular files with plain names, read through O_NOFOLLOW (a symlink
 * planted in the directory never makes root send another file). Temp files of the writer are skipped.
 */
async function readRunFiles(dir: string): Promise<RunFile[]> {
  const out: RunFile[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isFile() || !SAFE_NAME.test(e.name) || e.name.includes('.tmp-')) continue;
    const handle = await open(path.join(dir, e.name), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      if (!(await handle.stat()).isFile()) continue;
      const bytes = await handle.readFile();
      out.push({
        name: e.name,
        bytes,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        md5: createHash('md5').update(bytes).digest('base64'),
      });
    } finally {
      await handle.close();
    }
  }
  // events.jsonl last: until it is there, the copy is not a run.
  return out.sort((a, b) => Number(a.name === EVENTS_FILE) - Number(b.name === EVENTS_FILE) || a.name.localeCompare(b.name));
}

/** The upload records of an evidence directory: the last one per run. */
export async function readUploadRecords(evidenceRoot: string): Promise<Map<string, UploadRecord>> {
  let text = '';
  try {
    text = await readFile(path.join(evidenceRoot, HISTORY_FILE), 'utf8');
  } catch {
    return new Map();
  }
  const byRun = new Map<string, UploadRecord>();
  for (const r of parseUploadRecords(text)) byRun.set(r.runId, sanitizeDeep(r));
  return byRun;
}

/** Append one upload record to history.jsonl (one O_APPEND write, as the evidence writer does). */
function appendRecord(evidenceRoot: string, record: UploadRecord): void {
  const fd = openAppendNoFollowSync(path.join(evidenceRoot, HISTORY_FILE), { create: true, mode: FILE_MODE });
  try {
    appendFileSync(fd, `${safeJsonStringify(sanitizeDeep(record))}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function describeError(error: unknown, u: EvidenceUpload): string {
  if (error instanceof RestoreAssistantError) return error.message;
  return offsiteError(u, 'upload to', error, UPLOAD_FIELD).message;
}

export interface UploadOptions {
  env?: NodeJS.ProcessEnv;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
  /** Waits between tries (tests of the retry logic pass a fake). */
  sleep?: (ms: number) => Promise<void>;
  /** The client to send with (default: one made from the recipe's evidence.upload). */
  client?: Pick<S3Client, 'send'>;
}

export type UploadResult =
  | { status: 'uploaded'; record: UploadRecord }
  | { status: 'failed'; record: UploadRecord }
  /** Not sent: the run is not sealed, or its evidence does not verify. Nothing recorded. */
  | { status: 'refused'; runId: string; why: string; exitCode: number };

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The delay before try `n` (2-based): retryDelaySeconds, doubled each time, at most a minute. */
export function retryDelayMs(u: Pick<EvidenceUpload, 'retryDelaySeconds'>, n: number): number {
  return Math.min(60_000, Math.round(u.retryDelaySeconds * 1000 * 2 ** (n - 2)));
}

/**
 * Send one run directory to the bucket (every try sends every file: a PUT of the same key replaces
 * it) and record the outcome in the history.jsonl beside it. Never throws for a store problem: the
 * result says it. Refuses (records nothing, sends nothing) a run whose seal does not verify.
 */
export async function uploadRun(runDir: string, u: EvidenceUpload, recipe: string, opts: UploadOptions = {}): Promise<UploadResult> {
  const dir = path.resolve(runDir);
  const root = path.dirname(dir);
  const v = await verifyEvidence(dir);
  const runId = path.basename(dir);
  if (v.status !== 'sealed') {
    return {
      status: 'refused',
      runId,
      why:
        v.status === 'unsealed'
          ? 'the run is not sealed (interrupted, or still running): only sealed runs are uploaded'
          : `its evidence does not verify (line ${v.firstBadLine ?? '?'}: ${v.reason ?? 'hash chain broken'})`,
      exitCode: v.status === 'unsealed' ? ExitCode.evidenceUnsealed : ExitCode.evidenceTampered,
    };
  }
  const sleep = opts.sleep ?? defaultSleep;
  const base: Omit<UploadRecord, 'status' | 'at' | 'attempts' | 'objects' | 'why'> = {
    format: UPLOAD_FORMAT,
    runId,
    recipe,
    url: runUrl(u, runId),
    endpoint: u.endpoint ?? null,
  };
  let why = '';
  let attempts = 0;
  let client: Pick<S3Client, 'send'> | undefined = opts.client;
  let own: S3Client | undefined;
  try {
    const files = await readRunFiles(dir);
    for (let n = 1; n <= u.attempts; n++) {
      if (n > 1) {
        const wait = retryDelayMs(u, n);
        opts.log?.(`evidence upload: try ${n - 1} of ${u.attempts} failed (${why}); trying again in ${(wait / 1000).toFixed(1)} s`);
        await sleep(wait);
      }
      attempts = n;
      try {
        if (!client) client = own = offsiteClient(u, opts.env ?? process.env, { field: UPLOAD_FIELD, maxAttempts: 1 });
        const objects: UploadRecord['objects'] = [];
        for (const f of files) {
          const key = `${runKeyPrefix(u, runId)}${f.name}`;
          const res = await client.send(
            new PutObjectCommand({
              Bucket: u.bucket,
              Key: key,
              Body: f.bytes,
              ContentLength: f.bytes.length,
              ContentMD5: f.md5,
              ContentType: f.name.endsWith('.md') ? 'text/markdown; charset=utf-8' : 'application/json',
              Metadata: { sha256: f.sha256 },
            }),
            { abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
          );
          objects.push({ key, etag: res.ETag ?? '', size: f.bytes.length, sha256: f.sha256 });
        }
        const record: UploadRecord = { ...base, status: 'uploaded', at: new Date().toISOString(), attempts, objects, why: null };
        appendRecord(root, record);
        return { status: 'uploaded', record };
      } catch (error) {
        why = describeError(error, u);
        // Missing credentials do not come back by waiting.
        if (error instanceof RestoreAssistantError) break;
      }
    }
  } catch (error) {
    why = sanitizeText(`cannot read ${dir}: ${(error as Error).message}`, 300);
  } finally {
    own?.destroy();
  }
  const record: UploadRecord = { ...base, status: 'failed', at: new Date().toISOString(), attempts, objects: [], why };
  try {
    appendRecord(root, record);
  } catch (error) {
    record.why = `${why}; and the failure could not be recorded in ${HISTORY_FILE}: ${(error as Error).message}`;
  }
  return { status: 'failed', record };
}

/** The pasteable command that sends a run later. */
export function uploadLaterCommand(loaded: LoadedRecipe, runId: string): string {
  return raCommand('evidence', 'upload', '--recipe', loaded.file, runId);
}

/**
 * The post-run hook (writer.ts runs it once the run's evidence is closed): uploads the run
 * directory when the run sealed and the recipe has evidence.upload. Never throws; a failure is a warning on stderr
 * (the run's exit code is its own) and a failed record in history.jsonl.
 */
export async function uploadSealedRun(handle: EvidenceHandle, loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const u = loaded.recipe.evidence.upload;
  if (!u || !handle.sealed) return;
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  // Runs after the outcome above was printed (deferred.ts): say that what follows cannot change it.
  say(
    `Uploading the evidence of ${handle.runId} to ${runUrl(u, handle.runId)} (the result above is final; this only copies it off-site)...`,
  );
  try {
    const r = await uploadRun(handle.dir, u, loaded.recipe.name, { env, log: say });
    if (r.status === 'uploaded') say(`Evidence uploaded: ${r.record.url} (${r.record.objects.length} objects)`);
    else
      say(
        `Warning: evidence not uploaded to ${runUrl(u, handle.runId)}: ${r.status === 'failed' ? `${r.record.why} (after ${r.record.attempts} tries; recorded in ${HISTORY_FILE})` : r.why}. The run's result is unchanged. Next: ${uploadLaterCommand(loaded, handle.runId)}`,
      );
  } catch (error) {
    say(
      `Warning: evidence not uploaded: ${sanitizeText((error as Error).message, 300)}. Next: ${uploadLaterCommand(loaded, handle.runId)}`,
    );
  }
}

/** The sealed runs of the recipe whose last upload record is not 'uploaded', oldest first. */
export async function runsNotUploaded(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const root = evidenceDir(loaded.recipe, env);
  const view = await readHistory(root, { recipe: loaded.recipe.name });
  const records = await readUploadRecords(root);
  return view.runs
    .filter((r) => r.dir !== null && r.evidence === 'sealed' && records.get(r.runId)?.status !== 'uploaded')
    .map((r) => r.dir as string)
    .reverse();
}

export interface FetchResult {
  dir: string;
  url: string;
  objects: Array<{ key: string; file: string; size: number; sha256: string; etag: string }>;
  /** Keys under the run's prefix that were not written (not a plain file name). */
  skipped: string[];
  /** Objects whose bytes differ from what this host's upload record says it sent. */
  differs: string[];
  /** Whether this host has an upload record to compare with. */
  recorded: boolean;
}

/**
 * Bring a run back from the bucket into `<destParent>/<run id>/` (a new directory; every file
 * created O_EXCL|O_NOFOLLOW). Object keys are hostile: only plain file names directly under the
 * run's prefix are written. When this host's history.jsonl recorded the upload, each object's
 * sha256 is compared with it.
 */
export async function fetchRun(
  loaded: LoadedRecipe,
  runId: string,
  destParent: string,
  opts: { env?: NodeJS.ProcessEnv; log?: (line: string) => void } = {},
): Promise<FetchResult> {
  const u = loaded.recipe.evidence.upload;
  if (!u) {
    throw new RestoreAssistantError(`The recipe ${loaded.recipe.name} has no evidence.upload bucket to fetch from.`, ExitCode.usage, {
      untouched: 'Nothing was touched.',
      next: `Add evidence.upload to ${loaded.file} (docs/recipes.md, "Evidence off-site"), or copy the run with \`aws s3 cp --recursive s3://<bucket>/<prefix>/${runId}/ DIR/${runId}/\`.`,
    });
  }
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new RestoreAssistantError(`"${sanitizeText(runId, 200)}" is not a run id.`, ExitCode.usage, {
      untouched: 'Nothing was touched.',
      next: `Pass a run id such as 20261123T051200Z-restore-${loaded.recipe.name}-a1b2; \`${raCommand('history', '--recipe', loaded.file)}\` lists them.`,
    });
  }
  const env = opts.env ?? process.env;
  const keyPrefix = runKeyPrefix(u, runId);
  const client = offsiteClient(u, env, { field: UPLOAD_FIELD });
  const dest = path.join(path.resolve(destParent), runId);
  let created = false;
  const result: FetchResult = { dir: dest, url: runUrl(u, runId), objects: [], skipped: [], differs: [], recorded: false };
  try {
    const listed = await listObjects(client, { ...u, prefix: keyPrefix }, MAX_FETCH_OBJECTS);
    const wanted = listed.filter((o) => {
      const name = o.key.slice(keyPrefix.length);
      const ok = o.key.startsWith(keyPrefix) && SAFE_NAME.test(name);
      if (!ok) result.skipped.push(sanitizeText(o.key, 300));
      return ok;
    });
    if (!wanted.some((o) => o.key === `${keyPrefix}${EVENTS_FILE}`)) {
      throw new RestoreAssistantError(
        `${result.url} holds no ${EVENTS_FILE}: the run is not in the bucket (or its upload never finished).`,
        ExitCode.usage,
        {
          ...(wanted.length > 0 ? { problems: [`found: ${wanted.map((o) => o.key.slice(keyPrefix.length)).join(', ')}`] } : {}),
          untouched: 'Nothing was written.',
          next: `\`${raCommand('history', '--recipe', loaded.file)}\` shows each run's upload; \`${raCommand('evidence', 'upload', '--recipe', loaded.file, runId)}\` sends one from the host that recorded it.`,
        },
      );
    }
    const total = wanted.reduce((s, o) => s + o.size, 0);
    if (total > MAX_FETCH_BYTES) throw new Error(`${wanted.length} objects of ${total} bytes: more than a run directory holds`);
    const records = await readUploadRecords(evidenceDir(loaded.recipe, env));
    const rec = records.get(runId);
    const sent = rec?.status === 'uploaded' ? new Map(rec.objects.map((o) => [o.key, o.sha256])) : undefined;
    result.recorded = sent !== undefined;
    await mkdir(path.resolve(destParent), { recursive: true, mode: DIR_MODE });
    try {
      await mkdir(dest, { mode: DIR_MODE });
      created = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RestoreAssistantError(`${dest} exists already.`, ExitCode.usage, {
          untouched: 'Nothing was written.',
          next: `Fetch into another directory, or move ${dest} away first.`,
        });
      }
      throw error;
    }
    for (const o of wanted) {
      const name = o.key.slice(keyPrefix.length);
      const file = path.join(dest, name);
      const res = await client.send(new GetObjectCommand({ Bucket: u.bucket, Key: o.key }), {
        abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS * 4),
      });
      const hash = createHash('sha256');
      let size = 0;
      const handle = await createExclusive(file, FILE_MODE);
      try {
        for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
          size += chunk.length;
          if (size > MAX_FETCH_BYTES) throw new Error(`${o.key} is larger than ${MAX_FETCH_BYTES} bytes`);
          hash.update(chunk);
          await handle.write(chunk);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      const sha256 = hash.digest('hex');
      result.objects.push({ key: sanitizeText(o.key, 300), file, size, sha256, etag: res.ETag ?? o.etag });
      const want = sent?.get(o.key);
      if (sent && want !== sha256)
        result.differs.push(`${name}: ${want ? `sha256 ${sha256}, uploaded ${want}` : 'not among the objects this host uploaded'}`);
      opts.log?.(`fetched ${name} (${size} bytes)`);
    }
    if (sent)
      for (const k of sent.keys())
        if (!wanted.some((o) => o.key === k)) result.differs.push(`${k.slice(keyPrefix.length)}: uploaded, but missing from the bucket`);
  } catch (error) {
    // Only what this fetch created is removed (a half-fetched copy is not a run).
    if (created) await rm(dest, { recursive: true, force: true }).catch(() => undefined);
    if (error instanceof RestoreAssistantError && error.exitCode === ExitCode.usage) throw error;
    throw offsiteError(u, 'fetch the run from', error, UPLOAD_FIELD);
  } finally {
    client.destroy();
  }
  return result;
}

/** Whether a path names a run directory to upload (an existing directory). */
export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isDirectory();
  } catch {
    return false;
  }
}
