import os from 'node:os';
import { createInterface } from 'node:readline/promises';
import { EventBus } from '../engine/events.js';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence } from '../evidence/writer.js';
import { dropCopy, listCopies, parseAge, type KeptCopy } from '../journal/copies.js';
import { createOutput, formatAge, formatBytes } from '../output.js';
import { discoverRecipes, resolveRecipe, type LoadedRecipe } from '../recipe/load.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { sanitizeText } from '../text/sanitize.js';
import { toolVersion } from '../version.js';

/**
 * `restore-assistant safety-copies [--recipe R] [--json]` lists what earlier restores kept;
 * `safety-copies drop ID|--older-than AGE [--recipe R] [--yes]` removes them by identity
 * (journal/copies.ts), after the same typed confirmation as restore (or --yes; no prompt without a
 * terminal). A drop is a run of its own in the recipe's evidence (kind `cleanup`).
 */

export interface SafetyCopiesOptions {
  recipe?: string;
  json?: boolean;
}

export interface DropOptions extends SafetyCopiesOptions {
  olderThan?: string;
  yes?: boolean;
}

async function recipesInScope(ref: string | undefined): Promise<LoadedRecipe[]> {
  if (ref) return [await resolveRecipe(ref)];
  return (await discoverRecipes()).flatMap((e) => (e.loaded ? [e.loaded] : []));
}

interface Scoped {
  loaded: LoadedRecipe;
  copy: KeptCopy;
}

async function gather(recipes: LoadedRecipe[]): Promise<{ copies: Scoped[]; problems: string[] }> {
  const copies: Scoped[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const loaded of recipes) {
    const view = await listCopies(loaded, { env: process.env, redact: recipeRedactor(loaded) });
    problems.push(...view.problems.map((p) => `${loaded.recipe.name}: ${p}`));
    for (const copy of view.copies) {
      // Two recipes on the same targets see the same copies: once each.
      const key = `${copy.component}|${copy.target}|${copy.location}`;
      if (seen.has(key)) continue;
      seen.add(key);
      copies.push({ loaded, copy });
    }
  }
  return { copies, problems };
}

function jsonCopy(s: Scoped): Record<string, unknown> {
  const { identity: _identity, ...c } = s.copy;
  return { recipe: s.loaded.recipe.name, ...c };
}

function line(s: Scoped): string {
  const c = s.copy;
  const age = c.ageMs === null ? 'age unknown' : `${formatAge(c.ageMs)} old`;
  const size = c.sizeBytes === null ? 'size unknown' : formatBytes(c.sizeBytes);
  const pre = c.preIncident === null ? '' : c.preIncident ? ', the pre-incident copy' : ', not the pre-incident copy';
  const run = c.run ? `made by run ${c.run.runId}` : 'no run on this host recorded it';
  const lines = [
    `${c.id}`,
    `    ${c.target}: ${c.description}`,
    `    ${size}, ${age}, ${run}${pre}${c.state === 'changed' ? ', CHANGED since' : ''}`,
  ];
  if (!c.droppable && c.why) lines.push(`    not droppable: ${c.why}`);
  return lines.map((l) => sanitizeText(l, 2000)).join('\n');
}

export async function safetyCopiesListCommand(opts: SafetyCopiesOptions): Promise<number> {
  const out = createOutput();
  const recipes = await recipesInScope(opts.recipe);
  const { copies, problems } = await gather(recipes);
  const kept = copies.filter((s) => s.copy.state !== 'gone');
  if (opts.json) {
    out.json({ copies: kept.map(jsonCopy), problems });
    return ExitCode.ok;
  }
  for (const p of problems) out.info(sanitizeText(`Warning: ${p}`));
  if (kept.length === 0) {
    out.result(`No safety copies kept${opts.recipe ? ` for ${sanitizeText(opts.recipe)}` : ''}.`);
    return ExitCode.ok;
  }
  const total = kept.reduce((n, s) => n + (s.copy.sizeBytes ?? 0), 0);
  out.result(`${kept.length} safety cop${kept.length === 1 ? 'y' : 'ies'} kept (${formatBytes(total)}):\n`);
  out.result(kept.map(line).join('\n\n'));
  const droppable = kept.filter((s) => s.copy.droppable);
  if (droppable.length > 0) {
    const r = opts.recipe ? ` --recipe ${opts.recipe}` : '';
    out.result(
      `\nDrop one: restore-assistant safety-copies drop${r} ${droppable[0]!.copy.id}   (or every droppable one older than an age: --older-than 7d)`,
    );
  }
  return ExitCode.ok;
}

function confirmWord(loaded: LoadedRecipe): string {
  const r = loaded.recipe;
  return r.confirmWord ?? r.components.postgres?.database ?? r.name;
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } catch {
    return '';
  } finally {
    rl.close();
  }
}

export async function safetyCopiesDropCommand(id: string | undefined, opts: DropOptions): Promise<number> {
  const out = createOutput();
  if (!id && !opts.olderThan)
    throw new UsageError('safety-copies drop needs the copy to drop, or --older-than AGE.', { next: 'restore-assistant safety-copies' });
  if (id && opts.olderThan) throw new UsageError('safety-copies drop takes one copy or --older-than, not both.');
  const olderMs = opts.olderThan ? parseAge(opts.olderThan) : undefined;
  if (opts.olderThan && olderMs === undefined)
    throw new UsageError(`--older-than ${opts.olderThan}: not an age.`, {
      next: 'Use minutes, hours, days or weeks: --older-than 30m, 12h, 7d, 2w',
    });
  const recipeArg = opts.recipe ? ` --recipe ${opts.recipe}` : '';
  const recipes = await recipesInScope(opts.recipe);
  const { copies, problems } = await gather(recipes);
  for (const p of problems) out.info(sanitizeText(`Warning: ${p}`));

  let chosen: Scoped[];
  if (id) {
    const hit = copies.filter((s) => s.copy.id === id || s.copy.location === id);
    if (hit.length === 0)
      throw new UsageError(
        `No safety copy ${sanitizeText(id)} is known here (by a run's journal, or by its name on the recipe's targets).`,
        {
          next: `restore-assistant safety-copies${recipeArg}`,
        },
      );
    chosen = hit;
  } else {
    chosen = copies.filter((s) => s.copy.state !== 'gone' && s.copy.ageMs !== null && s.copy.ageMs > (olderMs ?? 0));
  }
  const gone = chosen.filter((s) => s.copy.state === 'gone');
  const refused = chosen.filter((s) => s.copy.state !== 'gone' && !s.copy.droppable);
  const todo = chosen.filter((s) => s.copy.state !== 'gone' && s.copy.droppable);
  for (const s of gone) out.info(sanitizeText(`${s.copy.id} is gone already: nothing to drop.`));
  for (const s of refused) out.info(sanitizeText(`Not dropping ${s.copy.id}: ${s.copy.why ?? 'it cannot be checked'}.`));
  const refusedCode = (): number =>
    refused.some((s) => s.copy.neededBy) ? ExitCode.locked : refused.length > 0 ? ExitCode.notOurs : ExitCode.ok;
  if (todo.length === 0) {
    if (opts.json) out.json({ dropped: [], gone: gone.map(jsonCopy), refused: refused.map(jsonCopy) });
    else if (refused.length === 0 && gone.length === 0)
      out.result(`No safety copy older than ${sanitizeText(opts.olderThan ?? '')} can be dropped.`);
    else if (refused.length === 0) out.result('Nothing to drop.');
    if (refused.length > 0) {
      const first = refused[0]!;
      throw new RestoreAssistantError(
        `Refused to drop ${refused.length === 1 ? sanitizeText(first.copy.id) : `${refused.length} safety copies`}: ${sanitizeText(first.copy.why ?? 'it cannot be checked')}.`,
        refusedCode() as typeof ExitCode.locked,
        {
          untouched: 'Nothing was removed.',
          next:
            first.copy.neededBy && !first.copy.neededBy.live
              ? `restore-assistant recover${recipeArg || ` --recipe ${first.loaded.file}`}`
              : `restore-assistant safety-copies${recipeArg}`,
        },
      );
    }
    return ExitCode.ok;
  }
  const byRecipe = new Map<string, Scoped[]>();
  for (const s of todo) byRecipe.set(s.loaded.file, [...(byRecipe.get(s.loaded.file) ?? []), s]);

  out.info(`To drop (${formatBytes(todo.reduce((n, s) => n + (s.copy.sizeBytes ?? 0), 0))}):\n${todo.map(line).join('\n\n')}`);
  if (!opts.yes) {
    const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
    if (!interactive)
      throw new UsageError('safety-copies drop needs a confirmation, and there is no terminal to ask on.', {
        next: `Pass --yes to confirm on the command line: restore-assistant safety-copies drop${recipeArg} ${id ?? `--older-than ${opts.olderThan ?? ''}`} --yes`,
      });
    for (const [, group] of byRecipe) {
      const word = confirmWord(group[0]!.loaded);
      const answer = await ask(
        `These copies cannot be brought back once dropped. Type "${word}" to drop ${group.length === 1 ? 'it' : `these ${group.length}`} (anything else cancels): `,
      );
      if (answer !== word) {
        out.info('Cancelled. Nothing was removed.');
        return ExitCode.cancelled;
      }
    }
    out.info('Confirmed.');
  }

  const dropped: Scoped[] = [];
  const failed: Array<{ s: Scoped; error: string }> = [];
  for (const [, group] of byRecipe) {
    const loaded = group[0]!.loaded;
    const redact = recipeRedactor(loaded);
    await prepareRecipeEvidence(loaded, process.env);
    const bus = new EventBus();
    const runId = newRunId('cleanup', loaded.recipe.name);
    const evidence = attachRecipeEvidence(bus, {
      loaded,
      kind: 'cleanup',
      redact,
      runId,
      commandLine: ['restore-assistant', ...process.argv.slice(2)],
      env: process.env,
    });
    const lines: string[] = [];
    let ok = 0;
    try {
      bus.emit({
        type: 'run-started',
        runId,
        kind: 'cleanup',
        operator: currentOperator().operator,
        host: os.hostname(),
        toolVersion: toolVersion(),
        recipe: { name: loaded.recipe.name, file: loaded.file, digest: loaded.digest },
        backup: { id: '', time: '', location: '' },
        confirmedAt: new Date().toISOString(),
      });
      for (const s of group) {
        const c = s.copy;
        bus.emit({
          type: 'log',
          stepId: 'drop',
          level: 'info',
          message: redact(`dropping ${c.id} (${c.description}; made by run ${c.run?.runId ?? '?'}; ${c.recorded ?? ''})`),
        });
        try {
          const how = await dropCopy(c, { loaded, env: process.env, redact, emit: (b) => bus.emit(b) });
          const msg = how === 'gone' ? `${c.id} was gone already` : `dropped ${c.id} (${c.recorded ?? 'by identity'})`;
          bus.emit({ type: 'log', stepId: 'drop', level: 'info', message: redact(msg) });
          lines.push(msg);
          out.info(sanitizeText(msg));
          dropped.push(s);
          ok++;
        } catch (error) {
          const msg = redact(error instanceof Error ? error.message : String(error));
          bus.emit({ type: 'log', stepId: 'drop', level: 'error', message: `not dropped: ${c.id}: ${msg}` });
          lines.push(`NOT dropped ${c.id}: ${msg}`);
          out.info(sanitizeText(`Not dropped ${c.id}: ${msg}`));
          failed.push({ s, error: msg });
        }
      }
      const allOk = ok === group.length;
      bus.emit({
        type: 'run-finished',
        outcome: allOk ? 'dropped' : 'refused',
        exitCode: allOk ? ExitCode.ok : ExitCode.notOurs,
        safetyCopies: [],
        state: lines,
        nextSteps: allOk
          ? []
          : ['Check what is at the names that were not dropped (they were left untouched): restore-assistant safety-copies'],
        ...(allOk ? {} : { error: 'some safety copies were not dropped' }),
      });
    } finally {
      await evidence.close();
    }
    out.info(sanitizeText(`Evidence: ${evidence.dir}`));
  }
  if (opts.json)
    out.json({
      dropped: dropped.map(jsonCopy),
      gone: gone.map(jsonCopy),
      refused: [...refused.map(jsonCopy), ...failed.map((f) => ({ ...jsonCopy(f.s), error: f.error }))],
    });
  else
    out.result(
      `Dropped ${dropped.length} safety cop${dropped.length === 1 ? 'y' : 'ies'}${failed.length + refused.length > 0 ? `; ${failed.length + refused.length} not dropped (above)` : ''}.`,
    );
  if (failed.length > 0) return ExitCode.notOurs;
  return refusedCode();
}
