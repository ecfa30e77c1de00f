import { createRedactor, type Redactor } from '../exec/redact.js';
import type { LoadedRecipe } from './load.js';
import type { Recipe } from './schema.js';

/**
 * The recipe's secrets, in one place: which environment variables hold them, and the redactor that
 * hides their values (in output, events, evidence, summaries). The values are read from the
 * operator's environment; they are never written anywhere.
 */

function recipeOf(r: LoadedRecipe | Recipe): Recipe {
  return 'recipe' in r ? r.recipe : r;
}

/** The environment variables the recipe names as holding secrets (PostgreSQL and Redis passwords). */
export function recipeSecretEnvNames(r: LoadedRecipe | Recipe): string[] {
  const c = recipeOf(r).components;
  return [c.postgres?.passwordEnv, c.redis?.passwordEnv].filter((n): n is string => Boolean(n));
}

/** The redactor for a recipe: `base` (default: credential shapes only) plus the values of the secrets it names. */
export function recipeRedactor(r: LoadedRecipe | Recipe, env: NodeJS.ProcessEnv = process.env, base?: Redactor): Redactor {
  const secrets = recipeSecretEnvNames(r).map((n) => env[n]);
  return base ? base.with(secrets) : createRedactor(secrets);
}
