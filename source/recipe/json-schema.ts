import { z } from 'zod';
import { recipeSchema } from './schema.js';

/** JSON Schema of a recipe, for editors (yaml-language-server: $schema=...). */
export function recipeJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(recipeSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'restore-assistant recipe', $id: 'https://restore-assistant.invalid/recipe.schema.json' };
}
