import { stat } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { paint, type Output } from '../output.js';
import { readFleet } from './index.js';
import { renderFleet } from './render.js';

/** `history --fleet SOURCE [--recipe NAME] [--json]`. */
export async function fleetHistory(
  source: string,
  opts: { json: boolean; markdown: boolean; recipe?: string | undefined },
  out: Output,
): Promise<number> {
  if (opts.markdown)
    throw new UsageError("--fleet prints a table or --json; --markdown is for one recipe's history.", { next: 'Drop --markdown.' });
  const st = await stat(source).catch(() => undefined);
  if (!st?.isDirectory())
    throw new UsageError(`--fleet ${source}: not a directory.`, {
      next: 'Point --fleet at a directory holding the evidence directories of your hosts (one sub-directory each).',
    });
  const view = await readFleet(source);
  if (opts.recipe) view.rows = view.rows.filter((r) => r.recipe === opts.recipe);
  if (opts.json) {
    out.json(view);
    return ExitCode.ok;
  }
  if (view.rows.length === 0) {
    out.info(
      `No runs found under ${view.source} (${view.evidenceDirs.length} evidence director${view.evidenceDirs.length === 1 ? 'y' : 'ies'}).`,
    );
    return ExitCode.ok;
  }
  const p = paint(out.color);
  const lines = renderFleet(view);
  out.result(p('bold', lines[0] ?? ''));
  for (const l of lines.slice(1)) out.result(/OVERDUE|MISSED/.test(l) ? p('yellow', l) : l);
  const overdue = view.rows.filter((r) => r.overdue);
  out.info(
    `${view.rows.length} recipe${view.rows.length === 1 ? '' : 's'} on ${new Set(view.rows.map((r) => r.host)).size} host(s) from ${view.evidenceDirs.length} evidence director${view.evidenceDirs.length === 1 ? 'y' : 'ies'} under ${view.source}; ${overdue.length} overdue. BACKUP AGE: the newest backup any run there used.`,
  );
  return ExitCode.ok;
}
