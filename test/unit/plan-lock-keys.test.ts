import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupSet } from '../../source/catalog/types.js';
import { buildPlan } from '../../source/plan/build.js';
import { identityLockKeys } from '../../source/engine/target-identity.js';
import { resolvePlanOptions } from '../../source/plan/options.js';
import { recipeFacts } from '../../source/probe/index.js';
import { validatePlan } from '../../source/plan/validate.js';
import { loadRecipeFile } from '../../source/recipe/load.js';
import { defaultSafetyDir, evidenceDir } from '../../source/state/paths.js';

/** One lock-key scheme carried by the plan, one safety-copy directory default, one plan check. */

const recipesDir = path.resolve(import.meta.dirname, '../../recipes');
const loc = '/var/backups/story-portal/2026-01-18_01-45-13';
const set: BackupSet = {
  id: '2026-01-18_01-45-13',
  layout: 'story-portal',
  root: '/var/backups/story-portal',
  location: loc,
  time: '2026-01-18T01:45:13Z',
  timeSource: 'metadata',
  components: [
    { kind: 'postgres', format: 'pg-plain-gz', path: `${loc}/postgres.sql.gz`, size: 1000, checksum: 'absent' },
    { kind: 'redis', format: 'redis-rdb', path: `${loc}/redis.rdb`, size: 100, checksum: 'absent' },
  ],
  metadata: {},
  warnings: [],
  totalSize: 1100,
};

describe('plan: lock keys, safety dir, validation', () => {
  it('the plan carries the keys the session locked (a drill: drill:<real target>); without keys the engine refuses it', async () => {
    const loaded = await loadRecipeFile(path.join(recipesDir, 'story-portal.yaml'));
    const pg = loaded.recipe.components.postgres;
    const redis = loaded.recipe.components.redis;
    if (!pg || !redis) throw new Error('story-portal has postgres and redis');
    const restoreKeys = await identityLockKeys(loaded.recipe, ['postgres', 'redis'], 'restore');
    expect(restoreKeys.some((k) => k.endsWith(`:${pg.port}/${pg.database}`))).toBe(true);
    expect(restoreKeys.some((k) => k.startsWith('redis:') && k.endsWith(`:${redis.port}`))).toBe(true);
    expect(await identityLockKeys(loaded.recipe, ['postgres', 'redis'], 'drill')).toEqual(restoreKeys.map((k) => `drill:${k}`));

    const input = {
      recipe: loaded,
      set,
      facts: recipeFacts(loaded),
      options: resolvePlanOptions(loaded.recipe, { missingRoles: 'create' }, 2),
      mode: 'restore' as const,
      now: new Date(),
    };
    const plan = buildPlan({ ...input, lockKeys: restoreKeys });
    expect(plan.lockKeys).toEqual(restoreKeys);
    expect(validatePlan(plan)).toEqual([]);
    // A plan built without the session's keys names none: the engine refuses it before anything runs.
    expect(buildPlan(input).lockKeys).toEqual([]);
    expect(validatePlan(buildPlan(input))).toEqual(['the plan names no target to lock (lockKeys is empty)']);
  });

  it('one safety-copy directory default: beside the evidence dir, in the options and in the builder', async () => {
    const loaded = await loadRecipeFile(path.join(recipesDir, 'story-portal.yaml'));
    const env = { XDG_STATE_HOME: '/srv/state' };
    const dir = defaultSafetyDir(loaded.recipe, env);
    expect(dir).toBe(path.join(path.dirname(evidenceDir(loaded.recipe, env)), 'safety'));
    expect(resolvePlanOptions(loaded.recipe, {}, 2, env).safetyDir).toBe(dir);
    expect(resolvePlanOptions(loaded.recipe, { safetyDir: '/elsewhere' }, 2, env).safetyDir).toBe('/elsewhere');
  });
});
