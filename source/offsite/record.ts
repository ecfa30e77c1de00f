import type { BackupSet, ComponentKind, VerifyReport } from '../catalog/types.js';
import { prepareRecipeEvidence } from '../evidence/writer.js';
import { startVerifyRun } from '../evidence/verify-run.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { sanitizeText } from '../text/sanitize.js';
import { stagedEvents } from './index.js';
import type { StagingRejection } from './rejection.js';

/**
 * A set rejected while it was staged (truncated download, checksum mismatch, wrong or missing key)
 * is recorded like a rejected local verification: a sealed verify run in the recipe's evidence,
 * with the staged objects and the problem, and a line in the history index. Returns the run's
 * directory (also added to the error's problems), or undefined when evidence cannot be written
 * (the rejection itself still stands; the reason is added to the error).
 */
export async function recordStagingRejection(
  loaded: LoadedRecipe,
  error: StagingRejection,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const set = error.set;
  if (!set) return undefined;
  const base = (p: string): string => p.split('/').pop() ?? p;
  const plainBase = (p: string): string => base(p).replace(/\.(gpg|age)$/i, '');
  const kindOf = (p: string): ComponentKind | undefined => set.components.find((c) => plainBase(c.path) === plainBase(p))?.kind;
  const bad = error.file ? base(error.file) : undefined;
  const kind = error.file ? kindOf(error.file) : undefined;
  const report: VerifyReport = {
    setId: set.id,
    ok: false,
    depth: 'deep',
    components: error.objects.flatMap((x) => {
      const k = kindOf(x.key);
      return k ? [{ kind: k, path: x.key, checks: [], sha256: x.sha256, size: x.size, ok: base(x.key) !== bad }] : [];
    }),
    problems: [
      {
        code: error.code,
        message: sanitizeText(`${error.message}${error.problems.length ? ` (${error.problems.join('; ')})` : ''}`, 600),
        ...(kind ? { component: kind } : {}),
        ...(error.file ? { path: error.file } : {}),
      },
    ],
    startedAt: new Date().toISOString(),
    durationMs: 0,
  };
  try {
    await prepareRecipeEvidence(loaded, env);
    const run = startVerifyRun(loaded, set, stagedEvents({ ...set, origin: originOf(error, set.location) }), env);
    const dir = await run.finish(report);
    error.problems.push(`recorded as a rejected verification: ${dir}`);
    return dir;
  } catch (e) {
    error.problems.push(`this rejection is not recorded as evidence: ${sanitizeText(e instanceof Error ? e.message : String(e), 300)}`);
    return undefined;
  }
}

function originOf(error: StagingRejection, location: string): NonNullable<BackupSet['origin']> {
  const local = !location.startsWith('s3://');
  return {
    url: location,
    source: local ? 'local' : 'offsite',
    stagingDir: local ? '(the decrypted copy was removed)' : '(the staged set was removed; the downloaded objects are kept to resume)',
    objects: error.objects,
    keep: false,
  };
}
