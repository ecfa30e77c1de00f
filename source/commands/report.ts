import { stat } from 'node:fs/promises';
import { raCommand } from '../text/next.js';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createOutput } from '../output.js';
import { expandHome, resolveRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { EVENTS_FILE } from '../evidence/format.js';
import { formatReport, loadReport } from '../evidence/report.js';

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * Find a run: a directory holding events.jsonl, or a run id (or its unique prefix) in the
 * recipe's evidence directory (default: $RESTORE_ASSISTANT_EVIDENCE_DIR or the XDG state dir).
 */
export async function resolveRunDir(run: string, recipeRef?: string): Promise<string> {
  const asPath = path.resolve(expandHome(run));
  if (await isFile(path.join(asPath, EVENTS_FILE))) return asPath;
  const loaded = recipeRef ? await resolveRecipe(recipeRef) : undefined;
  const root = evidenceDir(loaded?.recipe);
  if (!run.includes('/') && (await isFile(path.join(root, run, EVENTS_FILE)))) return path.join(root, run);
  throw new RestoreAssistantError(`No run "${run}" found.`, ExitCode.usage, {
    problems: [`not a run directory: ${asPath}`, `no run with that id in ${root}`],
    untouched: 'Nothing was touched.',
    next: `\`${raCommand('history', ...(recipeRef ? ['--recipe', recipeRef] : []))}\` lists runs and their ids; pass the run directory or its id.`,
  });
}

/** `restore-assistant report <run>`: re-render a run's report from its events.jsonl. */
export async function reportCommand(run: string, opts: { recipe?: string; format?: string }): Promise<number> {
  const out = createOutput();
  const format = opts.format === 'json' ? 'json' : 'md';
  const dir = await resolveRunDir(run, opts.recipe);
  const report = await loadReport(dir);
  process.stdout.write(formatReport(report, format));
  const i = report.evidence.integrity;
  if (i.status === 'tampered') {
    out.info(
      `Evidence is not intact: line ${i.firstBadLine ?? '?'}: ${i.reason ?? 'hash chain broken'}. The report above was rebuilt from what could be read.`,
    );
    return ExitCode.evidenceTampered;
  }
  if (i.status === 'unsealed') out.info('This run never finished (no seal): the report shows how far it got.');
  return ExitCode.ok;
}
