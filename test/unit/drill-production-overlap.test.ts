import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreAssistantError } from '../../source/errors.js';
import { ExitCode } from '../../source/exit-codes.js';
import { startDrillScratch } from '../../source/drill/sandbox.js';
import { assertScratchApart, overlapProblems, ScratchIsProductionError } from '../../source/drill/production-overlap.js';
import { recipeSchema, type Recipe } from '../../source/recipe/schema.js';

/**
 * A drill never writes into production: a scratch directory that is, or lies inside, a production
 * data directory the recipe names (e.g. TMPDIR set inside it, or a symlink to it) is refused with
 * nothing created; so is a scratch port that is production's.
 */

const svc = { stop: ['true'], start: ['true'] };
function recipeWith(redisDir: string, promDir = '/var/lib/prometheus/metrics2'): Recipe {
  return recipeSchema.parse({
    name: 'prod',
    backups: { root: '/backups' },
    components: {
      redis: { dataDir: redisDir, port: 6379, service: svc },
      prometheus: { url: 'http://127.0.0.1:9090', dataDir: promDir, service: svc },
    },
  });
}

let work: string;
const savedTmp = process.env['TMPDIR'];
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ra-overlap-'));
});
afterEach(() => {
  if (savedTmp === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmp;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('drill scratch vs production', () => {
  it('equal, inside and containing overlaps are found; a temp root above production elsewhere is apart', () => {
    const prod = [{ what: 'components.redis.dataDir', path: '/var/lib/redis' }];
    expect(overlapProblems([{ what: 's', path: '/var/lib/redis' }], prod)).toEqual([
      "s /var/lib/redis is production's components.redis.dataDir (/var/lib/redis)",
    ]);
    expect(overlapProblems([{ what: 's', path: '/var/lib/redis/tmp/x' }], prod)[0]).toMatch(
      /lies inside production's components\.redis\.dataDir/,
    );
    expect(overlapProblems([{ what: 's', path: '/var/lib' }], prod)[0]).toMatch(
      /production's components\.redis\.dataDir \(\/var\/lib\/redis\) lies inside s/,
    );
    // A temp root is not "containing": its scratch is a fresh dir below it.
    expect(overlapProblems([{ what: 'TMPDIR', path: '/var/lib', containing: false }], prod)).toEqual([]);
    expect(overlapProblems([{ what: 's', path: '/var/lib/redis-other' }], prod)).toEqual([]);
    expect(overlapProblems([{ what: 's', path: '/tmp/x' }], [{ what: 'p', path: '/' }])).toHaveLength(1);
  });

  it('refuses with what is wrong, that nothing was touched, and a pasteable Next: naming the recipe', () => {
    const real = recipeWith('/var/lib/redis');
    let thrown: unknown;
    try {
      assertScratchApart({
        real,
        recipeFile: '/etc/ra/prod recipe.yaml',
        scratch: [{ what: "the drill's temp root (TMPDIR)", path: '/var/lib/redis/tmp', containing: false }],
        ports: [{ what: 'scratch Redis port', port: 6379 }],
        created: false,
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ScratchIsProductionError);
    const e = thrown as RestoreAssistantError;
    expect(e.exitCode).toBe(ExitCode.preflightFailed);
    expect(e.message).toBe('Refusing to run the drill: its scratch target would be production.');
    expect(e.problems).toEqual([
      "the drill's temp root (TMPDIR) /var/lib/redis/tmp lies inside production's components.redis.dataDir (/var/lib/redis)",
      "scratch Redis port 6379 is also production's (components.redis.port)",
    ]);
    expect(e.untouched).toMatch(/Nothing was created or touched/);
    expect(e.next).toBe(
      "Run the drill with its scratch elsewhere: `TMPDIR=/var/tmp restore-assistant drill --recipe '/etc/ra/prod recipe.yaml'`.",
    );
    // Apart: no error.
    expect(() =>
      assertScratchApart({ real, recipeFile: '/r.yaml', scratch: [{ what: 's', path: '/tmp/restore-assistant-drill-x' }], created: true }),
    ).not.toThrow();
  });

  it('the suggested TMPDIR is one that overlaps nothing (production is /var/tmp: /tmp)', () => {
    expect(() =>
      assertScratchApart({
        real: recipeWith('/var/tmp'),
        recipeFile: '/r.yaml',
        again: ['drill', '--recipe', '/r.yaml', '--to', 'latest'],
        scratch: [{ what: 'TMPDIR', path: '/var/tmp', containing: false }],
        created: false,
      }),
    ).toThrow(
      expect.objectContaining({
        next: 'Run the drill with its scratch elsewhere: `TMPDIR=/tmp restore-assistant drill --recipe /r.yaml --to latest`.',
      }),
    );
  });

  it('startDrillScratch refuses TMPDIR inside the production data dir, through a symlink too, before creating anything', async () => {
    const prod = join(work, 'prod-redis');
    mkdirSync(join(prod, 'tmp'), { recursive: true });
    const link = join(work, 'innocent-tmp');
    symlinkSync(join(prod, 'tmp'), link);
    const real = { recipe: recipeWith(prod), file: join(work, 'prod.yaml'), digest: 'd'.repeat(64) };
    for (const tmp of [join(prod, 'tmp'), link]) {
      process.env['TMPDIR'] = tmp;
      await expect(startDrillScratch(real, ['redis'], process.env)).rejects.toThrow(ScratchIsProductionError);
      expect(readdirSync(join(prod, 'tmp'))).toEqual([]); // nothing created in production
    }
    process.env['TMPDIR'] = join(prod, 'tmp');
    await expect(startDrillScratch(real, ['redis'], process.env)).rejects.toMatchObject({
      problems: [expect.stringMatching(/lies inside production's components\.redis\.dataDir/)],
      next: expect.stringMatching(/^Run the drill with its scratch elsewhere: `TMPDIR=\/var\/tmp restore-assistant drill --recipe /),
    });
    expect(readdirSync(prod)).toEqual(['tmp']);
  });
});
