import { createRedactor, type Redactor } from '../exec/redact.js';
import type { LoadedRecipe } from './load.js';
import type { Recipe, S3Location } from './schema.js';

/**
 * The recipe's secrets, in one place: which environment variables hold them, and the redactor that
 * hides their values (in output, events, evidence, summaries). The values are read from the
 * operator's environment; they are never written anywhere.
 */

function recipeOf(r: LoadedRecipe | Recipe): Recipe {
  return 'recipe' in r ? r.recipe : r;
}

/** Where an off-site source takes credentials from when it names no *Env fields: the AWS SDK's variables. */
export const AWS_SECRET_ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;

/**
 * The environment variables the recipe names as holding secrets: PostgreSQL and Redis passwords,
 * the off-site source's and the evidence bucket's credentials (their *Env fields, else the AWS SDK's
 * variables), the gpg passphrase.
 */
export function recipeSecretEnvNames(r: LoadedRecipe | Recipe): string[] {
  const recipe = recipeOf(r);
  const c = recipe.components;
  const s3 = (o: S3Location | undefined): Array<string | undefined> =>
    o ? [o.accessKeyIdEnv ?? AWS_SECRET_ENV[0], o.secretAccessKeyEnv ?? AWS_SECRET_ENV[1], o.sessionTokenEnv ?? AWS_SECRET_ENV[2]] : [];
  // The evidence bucket (evidence.upload) signs the same way as the backups' one.
  const names = [
    c.postgres?.passwordEnv,
    c.redis?.passwordEnv,
    ...s3(recipe.backups.offsite),
    recipe.backups.encryption?.gpg?.passphraseEnv,
    ...s3(recipe.evidence.upload),
  ].filter((n): n is string => Boolean(n));
  return [...new Set(names)];
}

/** The redactor for a recipe: `base` (default: credential shapes only) plus the values of the secrets it names. */
export function recipeRedactor(r: LoadedRecipe | Recipe, env: NodeJS.ProcessEnv = process.env, base?: Redactor): Redactor {
  const secrets = recipeSecretEnvNames(r).map((n) => env[n]);
  return base ? base.with(secrets) : createRedactor(secrets);
}
