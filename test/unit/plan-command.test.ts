import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { planCommand } from '../../source/commands/plan.js';
import type { Plan } from '../../source/plan/types.js';

/** `restore-assistant plan --offline` over a story-portal backup root on disk (catalog → plan → output). */

let dir: string;
let recipeFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ra-plan-cmd-'));
  for (const id of ['2026-01-17_01-00-00', '2026-01-18_01-45-13']) {
    const set = join(dir, 'backups', id);
    mkdirSync(set, { recursive: true });
    writeFileSync(
      join(set, 'postgres.sql.gz'),
      gzipSync('-- PostgreSQL database dump\nCREATE TABLE t (i int);\n-- PostgreSQL database dump complete\n'),
    );
    writeFileSync(join(set, 'redis.rdb'), Buffer.from('REDIS0010\xff', 'latin1'));
    writeFileSync(join(set, 'prometheus-data.tar.gz'), gzipSync(Buffer.alloc(1024)));
    writeFileSync(join(set, 'metadata.txt'), `Backup Date: ${id.replace('_', ' ').replace(/-(\d\d)-(\d\d)$/, ':$1:$2')}\n`);
  }
  const story = readFileSync(resolve(import.meta.dirname, '../../recipes/story-portal.yaml'), 'utf8');
  recipeFile = join(dir, 'story-portal.yaml');
  writeFileSync(recipeFile, story.replace('root: /var/backups/story-portal', `root: ${join(dir, 'backups')}`));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function capture(fn: () => Promise<number>): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return { code: await fn(), stdout };
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
}

describe('plan command (offline)', () => {
  it('--json prints the Plan of the latest set, touching nothing', async () => {
    const { code, stdout } = await capture(() => planCommand({ recipe: recipeFile, offline: true, json: true }));
    expect(code).toBe(0);
    const plan = JSON.parse(stdout) as Plan & { preflight: unknown[] };
    expect(plan.version).toBe(1);
    expect(plan.backup.id).toBe('2026-01-18_01-45-13');
    expect(plan.steps[0]?.id).toBe('preflight');
    expect(plan.steps.filter((s) => s.destructive).map((s) => s.id)).toEqual([
      'postgres:safety-copy',
      'redis:safety-copy',
      'prometheus:safety-copy',
    ]);
    expect(plan.facts.probedAt).toBeUndefined();
    expect(plan.preflight).toEqual([]);
  });

  it('text: numbered steps with DESTRUCTIVE markers and the chosen set; --only and --no-parallel respected', async () => {
    const { code, stdout } = await capture(() =>
      planCommand({ recipe: recipeFile, backup: '2026-01-17_01-00-00', offline: true, only: 'redis,postgres', parallel: false }),
    );
    expect(code).toBe(0);
    expect(stdout).toContain('Restore plan: recipe story-portal, backup 2026-01-17_01-00-00');
    expect(stdout).toMatch(/^ ?\d+\. Move the current Redis files aside DESTRUCTIVE/m);
    expect(stdout).not.toContain('Prometheus');
    expect(stdout).toContain('one step at a time');
    expect(stdout).toContain('Nothing was touched');
  });

  it('an unknown set is a usage error naming the nearest ids', async () => {
    await expect(capture(() => planCommand({ recipe: recipeFile, backup: '2026-01-18_01-45-14', offline: true }))).rejects.toThrow(
      /No backup set/,
    );
  });
});
