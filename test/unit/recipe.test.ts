import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecipeError } from '../../source/errors.js';
import { discoverRecipes, loadRecipeFile, parseRecipe, resolveRecipe } from '../../source/recipe/load.js';
import { evidenceDir } from '../../source/state/paths.js';

const minimal = `name: demo
backups:
  root: /var/backups/demo
components:
  postgres:
    database: app
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ra-recipe-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('recipe parsing', () => {
  it('accepts a minimal recipe and fills defaults', () => {
    const { recipe, problems } = parseRecipe(minimal);
    expect(problems).toEqual([]);
    expect(recipe?.backups).toEqual({ root: '/var/backups/demo', layout: 'auto', pairWindowMinutes: 30 });
    expect(recipe?.components.postgres).toMatchObject({
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      safetyCopy: 'rename',
      exec: { kind: 'host' },
    });
    expect(recipe?.parallel).toBe(true);
  });

  it('points at the line and column of a wrong value', () => {
    const text = minimal.replace('    database: app\n', '    database: app\n    port: "five"\n');
    const { recipe, problems } = parseRecipe(text);
    expect(recipe).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ line: 7, col: 11, path: 'components.postgres.port' });
  });

  it('names unknown fields where they are', () => {
    const { problems } = parseRecipe(`${minimal}colour: blue\n`);
    expect(problems[0]).toMatchObject({ line: 1, path: '(top level)' });
    expect(problems[0]?.message).toBe('unknown field: colour');
  });

  it('reports a missing required field at its parent', () => {
    const { problems } = parseRecipe('name: demo\ncomponents: {}\n');
    expect(problems.map((p) => p.path)).toContain('backups');
    expect(problems.find((p) => p.path === 'backups')?.message).toMatch(/required field is missing/);
  });

  it('reports YAML syntax errors with positions, and an empty file', () => {
    const { problems } = parseRecipe('name: demo\nbackups: [unclosed\n');
    expect(problems[0]?.path).toBe('(yaml)');
    expect(problems[0]?.line).toBeGreaterThanOrEqual(2);
    expect(parseRecipe('').problems[0]?.message).toBe('the recipe is empty');
  });

  it('rejects duplicate keys and literal secrets in env-name fields', () => {
    expect(parseRecipe(`${minimal}name: again\n`).problems[0]?.path).toBe('(yaml)');
    const { problems } = parseRecipe(minimal.replace('    database: app\n', '    database: app\n    passwordEnv: "hunter2!"\n'));
    expect(problems[0]).toMatchObject({ line: 7, path: 'components.postgres.passwordEnv' });
  });

  it('rejects a shell string where an argv array is required', () => {
    const text = `${minimal}services:\n  - name: api\n    stop: "systemctl stop api"\n    start: [systemctl, start, api]\n`;
    const { problems } = parseRecipe(text);
    expect(problems[0]).toMatchObject({ line: 9, path: 'services[0].stop' });
  });
});

describe('recipe files', () => {
  it('loadRecipeFile throws a RecipeError (exit 2) with file:line:col problems', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, minimal.replace('root: /var/backups/demo', 'root: 42\n  layout: sideways'));
    const error = (await loadRecipeFile(file).catch((e: unknown) => e)) as RecipeError;
    expect(error).toBeInstanceOf(RecipeError);
    expect(error.exitCode).toBe(2);
    expect(error.problems.join('\n')).toMatch(/bad\.yaml:3:9: backups\.root: /);
    expect(error.problems.join('\n')).toMatch(/bad\.yaml:4:11: backups\.layout: /);
  });

  it('loadRecipeFile reports an unreadable file without a stack', async () => {
    await expect(loadRecipeFile(path.join(dir, 'missing.yaml'))).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/Cannot read recipe .*ENOENT/),
    });
  });

  it('records a digest of the bytes', async () => {
    const file = path.join(dir, 'demo.yaml');
    await writeFile(file, minimal);
    const loaded = await loadRecipeFile(file);
    expect(loaded.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(loaded.file).toBe(file);
  });

  it('discovers recipes by name, invalid ones included, and resolves names and paths', async () => {
    const rdir = path.join(dir, 'recipes');
    await mkdir(rdir);
    await writeFile(path.join(rdir, 'demo.yaml'), minimal);
    await writeFile(path.join(rdir, 'broken.yml'), 'name: [\n');
    const entries = await discoverRecipes([rdir]);
    expect(entries.map((e) => [e.name, Boolean(e.loaded)])).toEqual([
      ['broken', false],
      ['demo', true],
    ]);
    expect((await resolveRecipe('demo', [rdir])).recipe.name).toBe('demo');
    expect((await resolveRecipe(path.join(rdir, 'demo.yaml'), [rdir])).recipe.name).toBe('demo');
    await expect(resolveRecipe('nope', [rdir])).rejects.toMatchObject({ exitCode: 2, problems: ['known recipes: broken, demo'] });
  });

  it('evidence goes to the recipe dir, else the environment, else XDG state', () => {
    const { recipe } = parseRecipe(`${minimal}evidence:\n  dir: /srv/evidence\n`);
    expect(evidenceDir(recipe, {})).toBe('/srv/evidence');
    expect(evidenceDir(undefined, { RESTORE_ASSISTANT_EVIDENCE_DIR: '/e' })).toBe('/e');
    expect(evidenceDir(undefined, { XDG_STATE_HOME: '/state' })).toBe('/state/restore-assistant/runs');
  });
});
