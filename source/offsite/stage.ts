import { link, lstat, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { findBackupSet, listBackupSets } from '../catalog/index.js';
import type { BackupSet, StagedObject } from '../catalog/types.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { Redactor } from '../exec/redact.js';
import { openAppendNoFollow } from '../exec/safe-fs.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { OffsiteSource } from '../recipe/schema.js';
import { formatBytes, formatDuration } from '../output.js';
import { raCommand } from '../text/next.js';
import { sanitizeText } from '../text/sanitize.js';
import { classifyName, encryptionOf, safeRelKey, type OffsiteSet } from './catalog.js';
import { offsiteError, offsiteUrl, type ObjectInfo } from './client.js';
import { decryptFile } from './decrypt.js';
import { safeName, sha256File } from './staged-files.js';
import { freeBytes, prepareStagingRoot, privateDir } from './staging-dir.js';
import { StagingRejection, withSet, type StagingProblemCode } from './rejection.js';

/**
 * Staging an off-site set on local disk, then handing it to the local pipeline:
 *   <staging>/<recipe>/<set id>/download/<key under the prefix>   the objects as downloaded
 *   <staging>/<recipe>/<set id>/set/...                           the set the catalog reads
 *   <staging>/<recipe>/<set id>/state.json                        ETag, size, sha256 per object
 * Directories 0700, files 0600. Free space is checked before the first byte. A download resumes
 * where an interrupted one stopped (a ranged GET from the bytes on disk, If-Match the ETag seen
 * then: a replaced object starts over). Each object is hashed (sha256); an encrypted object's
 * "<key>.sha256" is checked on the ciphertext here, then it is decrypted into set/; plain files are
 * hard-linked into set/, where the local verification (sidecars, SHA256SUMS, whole-stream checks)
 * runs as for any local set, before anything destructive.
 */

export interface StageContext {
  loaded: LoadedRecipe;
  client: S3Client;
  env: NodeJS.ProcessEnv;
  redact: Redactor;
  /** Progress and notes (stderr). */
  log: (line: string) => void;
  signal?: AbortSignal;
}

interface StateFile {
  objects: Record<string, { etag: string; size: number; sha256?: string; versionId?: string; complete: boolean }>;
}

export { safeName, sha256File } from './staged-files.js';

async function sizeOrZero(file: string): Promise<number> {
  try {
    const st = await lstat(file);
    return st.isFile() ? st.size : 0;
  } catch {
    return 0;
  }
}

class Progress {
  private done = 0;
  private readonly started = Date.now();
  private last = this.started;
  constructor(
    private readonly total: number,
    private readonly log: (line: string) => void,
  ) {}
  add(n: number, what: string, force = false): void {
    this.done += n;
    const now = Date.now();
    if (!force && now - this.last < 1000) return;
    this.last = now;
    const elapsed = Math.max(1, now - this.started);
    const rate = (this.done / elapsed) * 1000;
    const eta = rate > 0 ? ((this.total - this.done) / rate) * 1000 : 0;
    const pct = this.total > 0 ? Math.floor((this.done / this.total) * 100) : 100;
    this.log(
      `  downloading ${what}: ${formatBytes(this.done)} of ${formatBytes(this.total)} (${pct}%), ${formatBytes(Math.round(rate))}/s, ETA ${formatDuration(eta)}`,
    );
  }
}

function rejected(code: StagingProblemCode, message: string, problems: string[], next: string, file?: string): StagingRejection {
  return new StagingRejection(code, message, { problems, next, ...(file ? { file } : {}) });
}

async function fetchObject(
  ctx: StageContext,
  o: OffsiteSource,
  obj: ObjectInfo,
  dest: string,
  state: StateFile,
  saveState: () => Promise<void>,
  progress: Progress,
  label: string,
): Promise<StagedObject> {
  const prev = state.objects[obj.key];
  if (prev?.complete && prev.etag === obj.etag && prev.size === obj.size && (await sizeOrZero(dest)) === obj.size) {
    const sha256 = await sha256File(dest);
    return {
      key: obj.key,
      etag: obj.etag,
      size: obj.size,
      sha256,
      fetchedBytes: 0,
      ...(prev.versionId ? { versionId: prev.versionId } : {}),
    };
  }
  const part = `${dest}.part`;
  let offset = prev && prev.etag === obj.etag && prev.size === obj.size ? await sizeOrZero(part) : 0;
  if (offset === 0 || offset > obj.size) {
    offset = 0;
    await rm(part, { force: true });
  }
  await rm(dest, { force: true });
  state.objects[obj.key] = { etag: obj.etag, size: obj.size, complete: false };
  await saveState();
  const resumedFrom = offset > 0 ? offset : undefined;
  if (resumedFrom)
    ctx.log(
      `  resuming ${label} at ${formatBytes(resumedFrom)} of ${formatBytes(obj.size)} (a ranged GET; the first part is not fetched again)`,
    );
  progress.add(offset, label);
  let fetched = 0;
  let versionId: string | undefined;
  for (let attempt = 1; ; attempt++) {
    const fh = await openAppendNoFollow(part, { create: true, mode: 0o600 });
    try {
      if (offset < obj.size) {
        const res = await ctx.client.send(
          new GetObjectCommand({
            Bucket: o.bucket,
            Key: obj.key,
            ...(obj.etag ? { IfMatch: obj.etag } : {}),
            ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
          }),
          ctx.signal ? { abortSignal: ctx.signal } : {},
        );
        versionId = res.VersionId ?? versionId;
        for await (const chunk of res.Body as Readable) {
          const buf = chunk as Buffer;
          if (offset + buf.length > obj.size) throw new Error(`the object is larger than the ${obj.size} bytes listed`);
          await fh.write(buf);
          offset += buf.length;
          fetched += buf.length;
          progress.add(buf.length, label);
        }
      }
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412) {
        throw new RestoreAssistantError(
          `${label} changed in the bucket while it was being downloaded (its ETag is no longer ${obj.etag}).`,
          ExitCode.preflightFailed,
          {
            untouched: 'Nothing was touched.',
            next: 'Run the command again: the new object is listed and downloaded from the start.',
          },
        );
      }
      if (attempt >= 3 || ctx.signal?.aborted) throw offsiteError(o, `download ${obj.key} from`, error);
      ctx.log(
        `  ${label}: ${sanitizeText(error instanceof Error ? error.message : String(error), 200)}; retrying from ${formatBytes(offset)}`,
      );
      continue;
    } finally {
      await fh.close();
    }
    if (offset === obj.size) break;
    if (attempt >= 3) {
      throw rejected(
        'download-truncated',
        `${label} could not be downloaded whole: ${offset} of ${obj.size} bytes after ${attempt} attempts.`,
        [],
        'Check the network and the object, then run the command again (the download resumes).',
      );
    }
  }
  await rename(part, dest);
  const sha256 = await sha256File(dest);
  state.objects[obj.key] = { etag: obj.etag, size: obj.size, sha256, complete: true, ...(versionId ? { versionId } : {}) };
  await saveState();
  return {
    key: obj.key,
    etag: obj.etag,
    size: obj.size,
    sha256,
    fetchedBytes: fetched,
    ...(resumedFrom ? { resumedFrom } : {}),
    ...(versionId ? { versionId } : {}),
  };
}

function firstDigest(text: string): string | undefined {
  return /\b([0-9a-fA-F]{64})\b/.exec(text)?.[1]?.toLowerCase();
}

/** Download, check and decrypt one off-site set; returns it as a local set (with `origin`). */
export async function stageOffsiteSet(ctx: StageContext, off: OffsiteSet, layout: BackupSet['layout']): Promise<BackupSet> {
  const r = ctx.loaded.recipe;
  const o = r.backups.offsite!;
  const root = await prepareStagingRoot(ctx.loaded, ctx.env);
  const setDir = path.join(root, safeName(r.name), safeName(off.set.id));
  const downloadDir = path.join(setDir, 'download');
  const setRoot = path.join(setDir, 'set');
  await privateDir(downloadDir);
  const statePath = path.join(setDir, 'state.json');
  let state: StateFile = { objects: {} };
  try {
    state = JSON.parse(await readFile(statePath, 'utf8')) as StateFile;
    if (typeof state !== 'object' || state === null || typeof state.objects !== 'object') state = { objects: {} };
  } catch {
    // first run
  }
  const saveState = async (): Promise<void> => {
    const tmp = `${statePath}.tmp`;
    await rm(tmp, { force: true });
    await writeFile(tmp, JSON.stringify(state, null, 2), { mode: 0o600, flag: 'wx' });
    await rename(tmp, statePath);
  };
  const items = off.objects.map((obj) => ({ obj, rel: safeRelKey(obj.key.slice(o.prefix.length).replace(/^\/+/, ''))! }));

  // Free space first: what is still to download, plus room for the plaintext of encrypted files.
  let toFetch = 0;
  let plaintext = 0;
  for (const { obj, rel } of items) {
    const dest = path.join(downloadDir, rel);
    const prev = state.objects[obj.key];
    const have =
      prev?.complete && prev.etag === obj.etag ? await sizeOrZero(dest) : prev?.etag === obj.etag ? await sizeOrZero(`${dest}.part`) : 0;
    toFetch += Math.max(0, obj.size - have);
    if (encryptionOf(rel).enc) plaintext += obj.size;
  }
  const need = toFetch + plaintext + 64 * 1024 * 1024;
  const free = await freeBytes(setDir);
  if (free < need) {
    throw new RestoreAssistantError(
      `Not enough free space to stage set ${sanitizeText(off.set.id, 80)} in ${setDir}: ${formatBytes(need)} needed (${formatBytes(toFetch)} to download${plaintext ? `, ${formatBytes(plaintext)} of plaintext` : ''}, 64 MiB margin), ${formatBytes(free)} free.`,
      ExitCode.preflightFailed,
      {
        untouched: 'Nothing was touched and nothing was downloaded.',
        next: 'Free space there, or set backups.offsite.staging to a larger disk, then run the command again.',
      },
    );
  }
  const total = items.reduce((s, x) => s + x.obj.size, 0);
  ctx.log(
    `Staging set ${sanitizeText(off.set.id, 80)} from ${offsiteUrl(o)}: ${items.length} object${items.length === 1 ? '' : 's'}, ${formatBytes(total)} (${formatBytes(toFetch)} to download) into ${setDir}`,
  );
  const progress = new Progress(total, ctx.log);
  const staged: StagedObject[] = [];
  try {
    for (const { obj, rel } of items) {
      const dest = path.join(downloadDir, rel);
      await privateDir(path.dirname(dest));
      staged.push(await fetchObject(ctx, o, obj, dest, state, saveState, progress, sanitizeText(rel, 120)));
    }
  } catch (error) {
    throw withSet(error, off.set, staged);
  }
  progress.add(0, 'done', true);

  // The staged set: plain files linked, encrypted ones checked and decrypted.
  await rm(setRoot, { recursive: true, force: true });
  await privateDir(setRoot);
  try {
    const byRel = new Map(items.map((x, i) => [x.rel, staged[i]!]));
    for (const { rel } of items) {
      const { plain, enc } = encryptionOf(rel);
      const name = path.basename(rel);
      if (/\.(gpg|age)\.sha256$/i.test(name)) continue;
      const from = path.join(downloadDir, rel);
      await privateDir(path.dirname(path.join(setRoot, rel)));
      if (!enc || !classifyName(path.basename(plain), false)) {
        await link(from, path.join(setRoot, rel));
        continue;
      }
      const sidecar = byRel.get(`${rel}.sha256`);
      const got = byRel.get(rel)!;
      if (sidecar) {
        const expected = firstDigest(await readFile(path.join(downloadDir, `${rel}.sha256`), 'utf8'));
        if (!expected) ctx.log(`  ${sanitizeText(rel, 120)}.sha256 holds no sha256 digest; the ciphertext is not compared`);
        else if (expected !== got.sha256) {
          throw rejected(
            'checksum-mismatch',
            `Set ${sanitizeText(off.set.id, 80)} is rejected: ${sanitizeText(rel, 120)} does not match its checksum.`,
            [
              `sha256 ${got.sha256}, ${sanitizeText(rel, 120)}.sha256 says ${expected}`,
              `object ${sanitizeText(got.key, 200)}, ETag ${got.etag}, ${got.size} bytes`,
            ],
            `Pick another set (\`${raCommand('list', '--recipe', ctx.loaded.file)}\`), or re-upload this one from a good copy.`,
          );
        }
      }
      ctx.log(`  decrypting ${sanitizeText(rel, 120)} (${enc})`);
      const res = await decryptFile(enc, from, path.join(setRoot, plain), {
        keys: r.backups.encryption,
        stagingDir: setDir,
        env: ctx.env,
        redact: ctx.redact,
        label: sanitizeText(rel, 120),
      });
      got.decryptedWith = enc;
      ctx.log(`  decrypted ${sanitizeText(rel, 120)} with ${res.keyUsed}`);
    }
  } catch (error) {
    // Rejected (checksum, key): the staged set goes; download/ stays, so a re-run with the right key
    // does not fetch the objects again.
    await rm(setRoot, { recursive: true, force: true });
    throw withSet(error, off.set, staged);
  }
  const listed = await listBackupSets({
    root: setRoot,
    layout,
    ...(r.backups.database ? { database: r.backups.database } : {}),
    pairWindowMinutes: r.backups.pairWindowMinutes,
  });
  const set = findBackupSet(listed.sets, off.set.id);
  set.origin = {
    url: offsiteUrl(o),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    source: 'offsite',
    stagingDir: setDir,
    objects: staged,
    keep: o.keepStaged,
  };
  return set;
}

/** Removes a staged set after a completed run, unless the recipe keeps it. Returns a line saying which. */
export async function releaseStaged(set: BackupSet): Promise<string | undefined> {
  const origin = set.origin;
  if (!origin) return undefined;
  if (origin.source === 'local') {
    await rm(origin.stagingDir, { recursive: true, force: true });
    return `Decrypted copy removed (${origin.stagingDir}).`;
  }
  if (origin.keep) return `Staged copy kept in ${origin.stagingDir} (backups.offsite.keepStaged).`;
  await rm(origin.stagingDir, { recursive: true, force: true });
  return `Staged copy removed (${origin.stagingDir}); set backups.offsite.keepStaged: true to keep it.`;
}
