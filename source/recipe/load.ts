import { createHash } from 'node:crypto';
import { raCommand } from '../text/next.js';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { RecipeError } from '../errors.js';
import { recipeSchema, type Recipe } from './schema.js';
import { expandHome } from './home.js';

export interface LoadedRecipe {
  recipe: Recipe;
  /** Absolute path of the recipe file ('<inline>' for recipes built in code). */
  file: string;
  /** sha256 of the recipe file's bytes, recorded in evidence. */
  digest: string;
}

/** One problem in a recipe, with its position in the file when known. */
export interface RecipeProblem {
  line?: number;
  col?: number;
  path: string;
  message: string;
}

/** `~` expansion lives in ./home.ts (no yaml or zod behind it); re-exported for existing importers. */
export { expandHome };

function pathLabel(p: ReadonlyArray<PropertyKey>): string {
  return (
    p
      .map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`))
      .join('')
      .replace(/^\./, '') || '(top level)'
  );
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) return `required field is missing (${issue.expected})`;
  return issue.message;
}

function locate(doc: Document, lineCounter: LineCounter, p: ReadonlyArray<PropertyKey>): { line?: number; col?: number } {
  // Walk down as far as the path exists; point at the deepest node found.
  for (let depth = p.length; depth >= 0; depth--) {
    const node = doc.getIn(p.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range) {
      const pos = lineCounter.linePos(node.range[0]);
      return { line: pos.line, col: pos.col };
    }
    if (depth === 0 && isMap(doc.contents) && doc.contents.range) {
      const pos = lineCounter.linePos(doc.contents.range[0]);
      return { line: pos.line, col: pos.col };
    }
  }
  return {};
}

/** Parse and validate recipe text. Returns problems (with line numbers) instead of throwing. */
export function parseRecipe(text: string): { recipe?: Recipe; problems: RecipeProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: RecipeProblem[] = [];
  for (const err of doc.errors) {
    const pos = lineCounter.linePos(err.pos[0]);
    problems.push({ line: pos.line, col: pos.col, path: '(yaml)', message: err.message.split('\n')[0] ?? err.message });
  }
  if (problems.length > 0) return { problems };
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) return { problems: [{ line: 1, col: 1, path: '(top level)', message: 'the recipe is empty' }] };
  const parsed = recipeSchema.safeParse(data);
  if (parsed.success) return { recipe: parsed.data, problems: [] };
  for (const issue of parsed.error.issues) {
    problems.push({ ...locate(doc, lineCounter, issue.path), path: pathLabel(issue.path), message: issueMessage(issue) });
  }
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { problems };
}

export function formatProblem(file: string, p: RecipeProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.col ?? 1}`;
  return `${where}: ${p.path}: ${p.message}`;
}

/** Load a recipe file, throwing RecipeError with line-numbered problems. */
export async function loadRecipeFile(file: string): Promise<LoadedRecipe> {
  const abs = path.resolve(expandHome(file));
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RecipeError(`Cannot read recipe ${abs}${code ? ` (${code})` : ''}.`, {
      next: 'Check the path, or run `restore-assistant recipes` to list the recipes found.',
    });
  }
  const { recipe, problems } = parseRecipe(bytes.toString('utf8'));
  if (!recipe) {
    throw new RecipeError(`Recipe ${abs} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}).`, {
      problems: problems.map((p) => formatProblem(path.relative(process.cwd(), abs) || abs, p)),
      next: `Fix the lines above; \`${raCommand('recipes', 'check', abs)}\` re-checks it. docs/recipes.md documents every field.`,
    });
  }
  return { recipe, file: abs, digest: createHash('sha256').update(bytes).digest('hex') };
}

/** Directories searched for recipes: $RESTORE_ASSISTANT_RECIPES (colon-separated), then ./recipes. */
export function recipeDirs(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string[] {
  const fromEnv = (env['RESTORE_ASSISTANT_RECIPES'] ?? '')
    .split(':')
    .filter(Boolean)
    .map((d) => path.resolve(expandHome(d)));
  return [...fromEnv, path.join(cwd, 'recipes')];
}

export interface RecipeEntry {
  name: string;
  file: string;
  loaded?: LoadedRecipe;
  error?: RecipeError;
}

/** Every *.yaml / *.yml recipe in the search directories (invalid ones included, with their error). */
export async function discoverRecipes(dirs = recipeDirs()): Promise<RecipeEntry[]> {
  const entries: RecipeEntry[] = [];
  const seen = new Set<string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const file = path.join(dir, n);
      try {
        const loaded = await loadRecipeFile(file);
        if (seen.has(loaded.recipe.name)) continue;
        seen.add(loaded.recipe.name);
        entries.push({ name: loaded.recipe.name, file, loaded });
      } catch (error) {
        entries.push({ name: n.replace(/\.ya?ml$/, ''), file, error: error as RecipeError });
      }
    }
  }
  return entries;
}

/** Resolve `--recipe R`: a path to a file, or the name of a discovered recipe. */
export async function resolveRecipe(ref: string, dirs = recipeDirs()): Promise<LoadedRecipe> {
  const looksLikePath = ref.includes('/') || /\.ya?ml$/.test(ref);
  if (looksLikePath) return loadRecipeFile(ref);
  try {
    const s = await stat(ref);
    if (s.isFile()) return loadRecipeFile(ref);
  } catch {
    // not a file: a name
  }
  const all = await discoverRecipes(dirs);
  const hit = all.find((e) => e.name === ref);
  if (hit?.loaded) return hit.loaded;
  if (hit?.error) throw hit.error;
  throw new RecipeError(`No recipe named "${ref}".`, {
    problems: all.length > 0 ? [`known recipes: ${all.map((e) => e.name).join(', ')}`] : [`searched: ${dirs.join(', ')}`],
    next: 'Pass a path (--recipe ./recipes/x.yaml), or set RESTORE_ASSISTANT_RECIPES to the directory holding your recipes.',
  });
}
