import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, lstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Getting metrics to Prometheus without a daemon of our own: a file for node_exporter's textfile
 * collector, or a PUT to a Pushgateway. The tool runs as root, so the file is written with no
 * symlink followed: the temp file is created O_EXCL|O_NOFOLLOW in the target directory (whose name
 * does not end in .prom, so the collector never reads half a file) and renamed over the target;
 * rename(2) replaces a symlink planted at the target rather than writing through it.
 */

export function textfileName(recipe: string): string {
  return `restore_assistant_${recipe.replace(/[^a-z0-9_.-]/gi, '_')}.prom`;
}

export class MetricsExportError extends Error {}

export function writeTextfile(dir: string, recipe: string, text: string): string {
  const abs = path.resolve(dir);
  let st;
  try {
    st = lstatSync(abs);
  } catch (error) {
    throw new MetricsExportError(
      `textfile directory ${abs} is not there (${(error as NodeJS.ErrnoException).code ?? 'error'}); create it or fix metrics.textfileDir`,
    );
  }
  if (st.isSymbolicLink())
    throw new MetricsExportError(`textfile directory ${abs} is a symlink; set metrics.textfileDir to the real directory`);
  if (!st.isDirectory()) throw new MetricsExportError(`textfile directory ${abs} is not a directory`);
  const target = path.join(abs, textfileName(recipe));
  const tmp = path.join(abs, `.${textfileName(recipe)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    try {
      fchmodSync(fd, 0o644); // node_exporter runs as its own user and must read it; no secrets in metrics
      const bytes = Buffer.from(text, 'utf8');
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (error) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or gone
    }
    throw error;
  }
  return target;
}

/** The grouping-key path segment: plain when safe, else the Pushgateway's base64url form. */
function segment(label: string, value: string): string {
  if (value !== '' && /^[A-Za-z0-9_.:-]+$/.test(value)) return `${label}/${value}`;
  return `${label}@base64/${Buffer.from(value, 'utf8').toString('base64url') || '='}`;
}

export function pushgatewayUrl(base: string, job: string, instance: string, recipe: string): string {
  return `${base.replace(/\/+$/, '')}/metrics/${segment('job', job)}/${segment('instance', instance)}/${segment('recipe', recipe)}`;
}

/** PUT replaces the whole group: what the recipe's history says now, nothing left from before. */
export async function pushToGateway(url: string, text: string, timeoutMs: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'PUT',
      body: text,
      headers: { 'content-type': 'text/plain; version=0.0.4' },
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (error) {
    throw new MetricsExportError(`Pushgateway ${new URL(url).origin} unreachable: ${(error as Error).message}`);
  }
  if (!res.ok) {
    const body = (await res.text().catch(() => '')).slice(0, 300).replace(/[^\x20-\x7e]/g, '?');
    throw new MetricsExportError(`Pushgateway refused the metrics: HTTP ${res.status} ${body}`);
  }
}
