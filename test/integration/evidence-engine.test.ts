import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../source/engine/events.js';
import { runPlan } from '../../source/engine/run.js';
import { createRedactor } from '../../source/exec/redact.js';
import { HISTORY_FILE } from '../../source/evidence/format.js';
import { readHistory } from '../../source/evidence/history.js';
import type { RunReport } from '../../source/evidence/report.js';
import { verifyEvidence } from '../../source/evidence/verify.js';
import { attachEvidence, newRunId } from '../../source/evidence/writer.js';
import type { Plan, PlanStep } from '../../source/plan/types.js';
import type { PlannedAction } from '../../source/actions/types.js';
import { recipeSchema } from '../../source/recipe/schema.js';

/**
 * The real engine runs real processes (no database needed: the subject is the record it leaves)
 * with a secret in the operator's environment, and evidence is attached as the restore command
 * attaches it: a successful and a failed run each leave complete, verifiable, secret-free evidence.
 */

const SECRET = 'Pg-Operator-Secret-9b1d7e';
const URI_SECRET = 'UriPass-33c8a1';
const SECRET_ENV = 'RA_EVIDENCE_TEST_PGPASSWORD';

let tmp: string;
let evidenceDir: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-evidence-engine-'));
  evidenceDir = path.join(tmp, 'evidence');
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const node = (code: string, extra: Partial<Extract<PlannedAction, { type: 'exec' }>> = {}): PlannedAction => ({
  type: 'exec',
  argv: [process.execPath, '-e', code, `postgresql://app:${URI_SECRET}@127.0.0.1:5432/app`],
  purpose: 'restore',
  runsIn: 'host',
  envFrom: { PGPASSWORD: SECRET_ENV },
  ...extra,
});

function step(id: string, actions: PlannedAction[], extra: Partial<PlanStep> = {}): PlanStep {
  return {
    id,
    title: `Run ${id}`,
    doneTitle: `${id} done`,
    phase: 'postgres',
    lane: 'main',
    destructive: false,
    actions,
    dependsOn: [],
    ...extra,
  };
}

function plan(steps: PlanStep[]): Plan {
  return {
    version: 1,
    mode: 'restore',
    createdAt: new Date().toISOString(),
    stamp: 'evid',
    recipe: { name: 'evidence-engine', file: '/recipes/evidence-engine.yaml', digest: 'e'.repeat(64) },
    backup: { id: 'b1', time: new Date(Date.now() - 2 * 3_600_000).toISOString(), layout: 'flat', location: tmp, components: [] },
    targets: {},
    steps,
    lockKeys: ['recipe:evidence-engine'],
    options: { yes: true, rollbackOnUnhealthy: false, dropSafetyCopies: false, missingRoles: 'fail', parallel: true, jobs: 1 },
    facts: {},
    warnings: [],
    objectives: { rtoMinutes: 30, rpoMinutes: 60 },
  };
}

async function restoreWithEvidence(p: Plan): Promise<{ dir: string; runId: string; exitCode: number }> {
  const env = { ...process.env, [SECRET_ENV]: SECRET };
  const redact = createRedactor([SECRET]);
  const runId = newRunId('restore', p.recipe.name);
  const bus = new EventBus();
  const evidence = attachEvidence(bus, {
    evidenceDir,
    runId,
    kind: 'restore',
    recipe: p.recipe,
    redact,
    toolVersion: '0.1.0',
    objectives: p.objectives,
  });
  let exitCode: number;
  try {
    const summary = await runPlan(p, {
      bus,
      redact,
      env,
      renderer: 'silent',
      runId,
      kind: 'restore',
      confirmedAt: new Date(),
      lockDir: path.join(tmp, 'locks'),
      // the health checks run with the recipe, as the restore command passes it
      checkContext: { recipe: recipeSchema.parse({ name: p.recipe.name, backups: { root: tmp }, components: {} }) },
    });
    exitCode = summary.exitCode;
  } finally {
    await evidence.close();
  }
  expect(evidence.errors).toEqual([]);
  return { dir: evidence.dir, runId, exitCode };
}

function assertNoSecrets(dir: string): void {
  const files = [...readdirSync(dir).map((f) => path.join(dir, f)), path.join(evidenceDir, HISTORY_FILE)];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const s of [SECRET, URI_SECRET]) expect([path.basename(f), s, text.includes(s)]).toEqual([path.basename(f), s, false]);
  }
}

describe('evidence of real engine runs', () => {
  it('a successful restore: sealed, RTO and RPO against targets, no secrets', async () => {
    const marker = path.join(tmp, 'restored');
    const p = plan([
      step('restore', [
        node(
          `console.log('password=' + process.env.PGPASSWORD); console.error('restoring ' + process.argv[1]); require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`,
        ),
      ]),
      step(
        'health',
        [
          {
            type: 'check',
            check: {
              name: 'restored marker exists',
              timeoutSeconds: 5,
              retries: 0,
              intervalSeconds: 0,
              when: ['restore', 'drill'],
              command: { argv: ['test', '-f', marker], expectExitCode: 0 },
            },
            purpose: 'check',
          },
        ],
        {
          phase: 'health',
        },
      ),
    ]);
    const run = await restoreWithEvidence(p);
    expect(run.exitCode).toBe(0);
    expect(await verifyEvidence(run.dir)).toMatchObject({ status: 'sealed', outcome: 'restored', indexed: true });
    const report = JSON.parse(readFileSync(path.join(run.dir, 'report.json'), 'utf8')) as RunReport;
    expect(report.outcome).toBe('restored');
    expect(report.rto.measuredMs).not.toBeNull();
    expect(report.rto).toMatchObject({ targetMinutes: 30, met: true });
    expect(report.rpo).toMatchObject({ targetMinutes: 60, met: false });
    expect(report.rpo.measuredMs).toBeGreaterThanOrEqual(2 * 3_600_000);
    expect(report.steps.map((s) => [s.stepId, s.status])).toEqual([
      ['restore', 'done'],
      ['health', 'done'],
    ]);
    expect(report.steps[0]?.commands[0]).toMatchObject({ exitCode: 0, finished: true });
    expect(report.healthChecks).toMatchObject([{ name: 'restored marker exists', ok: true }]);
    expect(readFileSync(path.join(run.dir, 'events.jsonl'), 'utf8')).toContain('password=****');
    assertNoSecrets(run.dir);
  });

  it('a failed restore: rolled back, sealed, the failure and its output tail recorded, no secrets', async () => {
    const moved = path.join(tmp, 'moved');
    const original = path.join(tmp, 'original');
    writeFileSync(original, 'before');
    const p = plan([
      step('aside', [{ type: 'move', from: original, to: moved, purpose: 'keep the current data aside' }], {
        destructive: true,
        destroys: 'the current data',
        safetyCopy: { component: 'postgres', kind: 'move', location: moved, description: 'the data before the restore' },
        undo: { title: 'Put the data back', actions: [{ type: 'move', from: moved, to: original, purpose: 'put back' }] },
      }),
      step('restore', [
        node(`console.error('FATAL: password ' + process.env.PGPASSWORD + ' rejected for ' + process.argv[1]); process.exit(3)`),
      ]),
    ]);
    const run = await restoreWithEvidence(p);
    expect(run.exitCode).toBe(1);
    expect(readFileSync(original, 'utf8')).toBe('before');
    expect(await verifyEvidence(run.dir)).toMatchObject({ status: 'sealed', outcome: 'rolled-back' });
    const report = JSON.parse(readFileSync(path.join(run.dir, 'report.json'), 'utf8')) as RunReport;
    expect(report.steps.find((s) => s.stepId === 'restore')).toMatchObject({ status: 'failed', commands: [{ exitCode: 3 }] });
    expect(report.steps.find((s) => s.stepId === 'restore')?.commands[0]?.stderrTail.join('\n')).toContain('FATAL: password **** rejected');
    expect(report.rollback).toMatchObject({ complete: true });
    expect(report.rto.measuredMs).toBeNull();
    assertNoSecrets(run.dir);

    const view = await readHistory(evidenceDir, { recipe: 'evidence-engine' });
    expect(view.runs[0]).toMatchObject({ runId: run.runId, outcome: 'rolled-back', exitCode: 1, evidence: 'sealed' });
  });
});
