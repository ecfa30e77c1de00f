import path from 'node:path';
import { COMPONENT_KINDS } from '../catalog/types.js';
import { ExitCode } from '../exit-codes.js';
import { createOutput } from '../output.js';
import { recipeJsonSchema } from '../recipe/json-schema.js';
import { discoverRecipes, expandHome, formatProblem, parseRecipe, recipeDirs } from '../recipe/load.js';
import { readFile } from 'node:fs/promises';
import { RecipeError } from '../errors.js';

export async function recipesListCommand(opts: { json?: boolean }): Promise<number> {
  const out = createOutput();
  const dirs = recipeDirs();
  const entries = await discoverRecipes(dirs);
  if (opts.json) {
    out.json(
      entries.map((e) => ({
        name: e.name,
        file: e.file,
        valid: Boolean(e.loaded),
        ...(e.loaded
          ? {
              description: e.loaded.recipe.description ?? null,
              components: Object.keys(e.loaded.recipe.components).filter((k) => e.loaded?.recipe.components[k as 'postgres'] !== undefined),
              backupRoot: e.loaded.recipe.backups.root,
              digest: e.loaded.digest,
            }
          : { problems: e.error?.problems ?? [e.error?.message] }),
      })),
    );
    return ExitCode.ok;
  }
  if (entries.length === 0) {
    out.info(`No recipes found (searched ${dirs.join(', ')}).`);
    out.info('Next: set RESTORE_ASSISTANT_RECIPES to the directory holding your recipes, or pass --recipe PATH.');
    return ExitCode.ok;
  }
  for (const e of entries) {
    if (e.loaded) {
      const r = e.loaded.recipe;
      const comps = COMPONENT_KINDS.filter((k) => r.components[k]).join(', ');
      out.result(`${r.name.padEnd(20)} ${comps.padEnd(28)} ${r.backups.root}   ${path.relative(process.cwd(), e.file) || e.file}`);
    } else {
      out.result(`${e.name.padEnd(20)} INVALID: ${e.error?.message ?? 'unknown problem'}`);
    }
  }
  return ExitCode.ok;
}

export async function recipesCheckCommand(file: string, opts: { json?: boolean }): Promise<number> {
  const out = createOutput();
  const abs = path.resolve(expandHome(file));
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (error) {
    throw new RecipeError(`Cannot read recipe ${abs} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`, { next: 'Check the path.' });
  }
  const { recipe, problems } = parseRecipe(text);
  if (opts.json) {
    out.json({ file: abs, valid: Boolean(recipe), problems });
    return recipe ? ExitCode.ok : ExitCode.usage;
  }
  if (recipe) {
    out.result(`${file}: valid recipe "${recipe.name}"`);
    return ExitCode.ok;
  }
  for (const p of problems) out.result(formatProblem(file, p));
  out.info(`${problems.length} problem${problems.length === 1 ? '' : 's'}; docs/recipes.md documents every field.`);
  return ExitCode.usage;
}

export async function recipesSchemaCommand(): Promise<number> {
  createOutput().json(recipeJsonSchema());
  return ExitCode.ok;
}
