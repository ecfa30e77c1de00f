import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus, type Outcome, type RunKind } from '../../source/engine/events.js';
import { createRedactor, type Redactor } from '../../source/exec/redact.js';
import {
  EVENTS_FILE,
  HISTORY_FILE,
  parseHistory,
  serializeLine,
  sha256Hex,
  splitLines,
  type HistoryEntry,
} from '../../source/evidence/format.js';
import { readHistory } from '../../source/evidence/history.js';
import { renderReport } from '../../source/evidence/report.js';
import { verifyEvidence, verifyEvidenceBytes } from '../../source/evidence/verify.js';
import { attachEvidence, attachRecipeEvidence, newRunId } from '../../source/evidence/writer.js';
import { parseRecipe } from '../../source/recipe/load.js';
import type { Plan } from '../../source/plan/types.js';

const SECRET_PASSWORD = 'hunter2-Very-Secret';
const SECRET_URI_PASSWORD = 'S3cr3tUriPass';
const SECRET_ENV_VALUE = 'envValue-7f3a9c-unregistered-shape';
const recipe = { name: 'metachat', file: '/etc/restore-assistant/metachat.yaml', digest: 'a'.repeat(64) };

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ra-evidence-unit-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function plan(rtoMinutes = 30, rpoMinutes = 1440): Plan {
  return {
    version: 1,
    mode: 'restore',
    createdAt: new Date().toISOString(),
    stamp: 'abcd',
    recipe,
    backup: { id: '20261122_020000', time: '2026-11-22T02:00:00.000Z', layout: 'metachat', location: '/backups/metachat', components: [] },
    targets: { postgres: 'PostgreSQL metachat on 127.0.0.1:5432 (host)' },
    lockKeys: ['postgres:127.0.0.1:5432/metachat'],
    steps: [
      {
        id: 'pg-restore',
        title: 'Restore PostgreSQL database metachat',
        doneTitle: 'PostgreSQL database metachat restored',
        phase: 'postgres',
        lane: 'postgres',
        destructive: true,
        destroys: 'the current database metachat (kept as metachat__pre_restore_abcd)',
        actions: [
          {
            type: 'exec',
            argv: ['pg_restore', '--dbname', `postgresql://app:${SECRET_URI_PASSWORD}@db:5432/metachat`],
            purpose: 'restore',
            runsIn: 'host',
          },
        ],
        dependsOn: [],
      },
    ],
    options: { yes: true, rollbackOnUnhealthy: false, dropSafetyCopies: false, missingRoles: 'fail', parallel: true, jobs: 2 },
    facts: {},
    warnings: ['the dump was taken by a newer pg_dump minor'],
    objectives: { rtoMinutes, rpoMinutes },
  };
}

interface RunSpec {
  kind?: RunKind;
  outcome?: Outcome;
  outputLines?: number;
  evidenceDir?: string;
  recipeName?: string;
  finish?: boolean;
  redact?: Redactor;
  objectives?: { rtoMinutes: number; rpoMinutes: number };
}

/** Feed a synthetic run through a real EventBus into a real evidence directory. */
async function syntheticRun(spec: RunSpec = {}): Promise<{ dir: string; runId: string; evidenceDir: string }> {
  const kind = spec.kind ?? 'restore';
  const evidenceDir = spec.evidenceDir ?? mkdtempSync(path.join(root, 'ev-'));
  const r = { ...recipe, name: spec.recipeName ?? recipe.name };
  const runId = newRunId(kind, r.name, new Date());
  const bus = new EventBus();
  const redact = spec.redact ?? createRedactor([SECRET_ENV_VALUE]);
  const outcome = spec.outcome ?? 'restored';
  bus.emit({
    type: 'run-started',
    runId,
    kind,
    operator: 'alice',
    host: 'db1',
    toolVersion: '0.1.0',
    recipe: r,
    backup: { id: '20261122_020000', time: '2026-11-22T02:00:00.000Z', location: '/backups/metachat' },
    plan: plan(spec.objectives?.rtoMinutes, spec.objectives?.rpoMinutes),
    confirmedAt: new Date().toISOString(),
  });
  // attach after the first event: the writer must replay what the bus already holds
  const handle = attachEvidence(bus, {
    evidenceDir,
    runId,
    kind,
    recipe: r,
    redact,
    toolVersion: '0.1.0',
    commandLine: ['restore', '--recipe', 'metachat', `--db-url=postgres://app:${SECRET_URI_PASSWORD}@db/metachat`],
    drillIntervalDays: 90,
    ...(spec.outputLines !== undefined ? { outputLinesPerCommand: 200 } : {}),
  });
  bus.emit({
    type: 'verification',
    setId: '20261122_020000',
    ok: true,
    depth: 'quick',
    problems: [],
    checksums: [{ path: '/backups/metachat/metachat_20261122_020000.dump', sha256: 'b'.repeat(64), status: 'verified' }],
  });
  bus.emit({ type: 'step-started', stepId: 'pg-restore', title: 'Restore PostgreSQL database metachat' });
  const argv = ['pg_restore', `--password=${SECRET_PASSWORD}`, '--dbname', `postgresql://app:${SECRET_URI_PASSWORD}@db:5432/metachat`];
  bus.emit({ type: 'command-started', stepId: 'pg-restore', commandId: 'c1', argv, runsIn: 'host' });
  const n = spec.outputLines ?? 3;
  for (let i = 0; i < n; i++) {
    bus.emit({
      type: 'command-output',
      stepId: 'pg-restore',
      commandId: 'c1',
      stream: 'stderr',
      line: `pg_restore: processing item ${i} ${i === 1 ? SECRET_ENV_VALUE : ''}`,
    });
  }
  bus.emit({ type: 'progress', stepId: 'pg-restore', unit: 'items', done: 5, total: 10 });
  bus.emit({ type: 'progress', stepId: 'pg-restore', unit: 'items', done: 6, total: 10 });
  bus.emit({ type: 'progress', stepId: 'pg-restore', unit: 'items', done: 10, total: 10 });
  bus.emit({
    type: 'command-finished',
    stepId: 'pg-restore',
    commandId: 'c1',
    argv,
    exitCode: outcome === 'restored' ? 0 : 1,
    signal: null,
    durationMs: 1234,
    timedOut: false,
    stdoutTail: [],
    stderrTail: [`connected with password=${SECRET_PASSWORD}`],
  });
  bus.emit({
    type: 'safety-copy',
    stepId: 'pg-restore',
    copy: { component: 'postgres', kind: 'rename', location: 'metachat__pre_restore_abcd', description: 'the database before the restore' },
  });
  bus.emit({ type: 'log', level: 'warn', message: `PGPASSWORD was ${SECRET_ENV_VALUE}` });
  if (outcome === 'restored') {
    bus.emit({
      type: 'step-finished',
      stepId: 'pg-restore',
      title: 'PostgreSQL database metachat restored',
      durationMs: 1300,
      detail: '42 tables',
    });
    bus.emit({ type: 'health-check', name: 'api answers', ok: true, attempts: 2, durationMs: 800, detail: 'HTTP 200' });
  } else {
    bus.emit({
      type: 'step-failed',
      stepId: 'pg-restore',
      title: 'Restore PostgreSQL database metachat',
      durationMs: 1300,
      error: 'pg_restore exited 1',
    });
    bus.emit({ type: 'rollback-started', reason: 'pg_restore exited 1' });
    bus.emit({ type: 'rollback-step', stepId: 'pg-restore', title: 'Rename metachat__pre_restore_abcd back', ok: true });
    bus.emit({ type: 'rollback-finished', complete: true, manualSteps: [] });
  }
  if (spec.finish !== false) {
    bus.emit({
      type: 'run-finished',
      outcome,
      exitCode: outcome === 'restored' ? 0 : 1,
      ...(outcome === 'restored' ? { rtoMs: 5 * 60_000 } : {}),
      ...(outcome === 'restored' ? {} : { error: 'Restore PostgreSQL database metachat failed: pg_restore exited 1' }),
      rpoMs: 3 * 3_600_000,
      safetyCopies: [
        { component: 'postgres', kind: 'rename', location: 'metachat__pre_restore_abcd', description: 'the database before the restore' },
      ],
      state: [outcome === 'restored' ? 'PostgreSQL metachat: restored from 20261122_020000' : 'PostgreSQL metachat: as before the run'],
      nextSteps: [],
    });
  }
  await handle.close();
  expect(handle.errors).toEqual([]);
  return { dir: handle.dir, runId, evidenceDir };
}

function historyEntryFor(evidenceDir: string, runId: string): HistoryEntry | undefined {
  return parseHistory(readFileSync(path.join(evidenceDir, HISTORY_FILE), 'utf8')).find((e) => e.runId === runId);
}

/** 1-based line number holding byte `offset` (a "\n" belongs to the line it ends). */
function lineOf(bytes: Buffer, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

function joinLines(lines: Buffer[]): Buffer {
  return Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
}

describe('a complete run', () => {
  it('is sealed, verifies, and leaves reports and a history entry', async () => {
    const { dir, runId, evidenceDir } = await syntheticRun();
    expect(readdirSync(dir).sort()).toEqual(['events.jsonl', 'report.json', 'report.md']);
    const v = await verifyEvidence(dir);
    expect(v).toMatchObject({ status: 'sealed', outcome: 'restored', indexed: true, runId });
    const bytes = readFileSync(path.join(dir, EVENTS_FILE));
    const lines = splitLines(bytes).lines.map((l) => JSON.parse(l.toString()) as Record<string, unknown>);
    expect(v.lines).toBe(lines.length);
    expect(Object.keys(lines[0] ?? {})).toEqual(['seq', 'ts', 't', 'prev', 'header', 'h']);
    expect(lines[0]?.['prev']).toBe('0'.repeat(64));
    const seal = lines.at(-1)?.['seal'] as { lines: number; finalHash: string };
    expect(seal.lines).toBe(lines.length - 1);
    // the documented shell check: head -n LINES events.jsonl | sha256sum
    const before = bytes.subarray(0, bytes.length - (splitLines(bytes).lines.at(-1)?.length ?? 0) - 1);
    expect(seal.finalHash).toBe(sha256Hex(before));

    const entry = historyEntryFor(evidenceDir, runId);
    expect(entry).toMatchObject({
      runId,
      kind: 'restore',
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 300_000,
      rpoMs: 10_800_000,
      backup: { id: '20261122_020000' },
    });
    expect(entry?.objectives).toEqual({ rtoMinutes: 30, rpoMinutes: 1440 });
    expect(entry?.seal.hash).toBe(v.sealHash);

    const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({
      outcome: 'restored',
      rto: { measuredMs: 300_000, targetMinutes: 30, met: true },
      rpo: { measuredMs: 10_800_000, targetMinutes: 1440, met: true },
      steps: [{ stepId: 'pg-restore', status: 'done', durationMs: 1300 }],
      healthChecks: [{ name: 'api answers', ok: true }],
      signOff: null,
    });
    // re-rendering from events.jsonl gives exactly the report written at the seal
    expect(await renderReport(dir, 'json')).toBe(readFileSync(path.join(dir, 'report.json'), 'utf8'));
    const md = readFileSync(path.join(dir, 'report.md'), 'utf8');
    expect(md).toContain('| RTO (confirm to healthy) | 5m 00s | 30 min | yes |');
    expect(md).toContain('metachat__pre_restore_abcd');
  });

  it('a failed, rolled-back run is sealed too, with its rollback in the report', async () => {
    const { dir, runId, evidenceDir } = await syntheticRun({ outcome: 'rolled-back' });
    expect(await verifyEvidence(dir)).toMatchObject({ status: 'sealed', outcome: 'rolled-back' });
    expect(historyEntryFor(evidenceDir, runId)).toMatchObject({ outcome: 'rolled-back', exitCode: 1, rtoMs: null });
    const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({
      steps: [{ status: 'failed', error: 'pg_restore exited 1' }],
      rollback: { complete: true },
      rto: { measuredMs: null, met: null },
      error: 'Restore PostgreSQL database metachat failed: pg_restore exited 1',
    });
    expect(readFileSync(path.join(dir, 'report.md'), 'utf8')).toContain('## Rollback');
  });

  it('a drill report carries a sign-off block', async () => {
    const { dir } = await syntheticRun({ kind: 'drill' });
    const md = readFileSync(path.join(dir, 'report.md'), 'utf8');
    expect(md).toContain('## Sign-off');
    expect(md).toContain('| Reviewed by |');
  });

  it('caps command output per command and records how much was left out', async () => {
    const { dir } = await syntheticRun({ outputLines: 250 });
    const lines = splitLines(readFileSync(path.join(dir, EVENTS_FILE))).lines.map(
      (l) => JSON.parse(l.toString()) as { event?: { type: string }; note?: { type: string; omitted: number } },
    );
    expect(lines.filter((l) => l.event?.type === 'command-output')).toHaveLength(200);
    expect(lines.find((l) => l.note?.type === 'output-capped')?.note?.omitted).toBe(50);
    expect(lines.filter((l) => l.event?.type === 'progress').length).toBeLessThan(3);
    expect(await verifyEvidence(dir)).toMatchObject({ status: 'sealed' });
  });
});

describe('tampering is caught, naming the first bad line', () => {
  let bytes: Buffer;
  let entry: HistoryEntry;
  let total: number;
  beforeAll(async () => {
    const run = await syntheticRun({ outputLines: 2 });
    bytes = readFileSync(path.join(run.dir, EVENTS_FILE));
    entry = historyEntryFor(run.evidenceDir, run.runId) as HistoryEntry;
    total = splitLines(bytes).lines.length;
    expect(verifyEvidenceBytes(bytes, { historyEntry: entry }).status).toBe('sealed');
  });

  it('an edit of any single byte', () => {
    const misses: number[] = [];
    for (let o = 0; o < bytes.length; o++) {
      const copy = Buffer.from(bytes);
      copy[o] = (copy[o] as number) ^ 0x01;
      const v = verifyEvidenceBytes(copy, { historyEntry: entry });
      if (v.status !== 'tampered' || v.firstBadLine !== lineOf(bytes, o)) misses.push(o);
    }
    expect(misses).toEqual([]);
  });

  it('an edit of the seal line is caught even without the history index', () => {
    const lines = splitLines(bytes).lines;
    const last = Buffer.from(lines.at(-1)?.toString().replace('"outcome":"restored"', '"outcome":"unhealthy"') ?? '');
    const v = verifyEvidenceBytes(joinLines([...lines.slice(0, -1), last]), {});
    expect(v).toMatchObject({ status: 'tampered', firstBadLine: total });
  });

  it('deleting any line', () => {
    const lines = splitLines(bytes).lines;
    for (let i = 0; i < total; i++) {
      const v = verifyEvidenceBytes(joinLines(lines.filter((_, j) => j !== i)), { historyEntry: entry });
      expect([i + 1, v.status]).toEqual([v.firstBadLine, 'tampered']);
    }
  });

  it('swapping any two lines', () => {
    const lines = splitLines(bytes).lines;
    for (let i = 0; i < total; i++) {
      for (let j = i + 1; j < total; j++) {
        const swapped = [...lines];
        [swapped[i], swapped[j]] = [lines[j] as Buffer, lines[i] as Buffer];
        const v = verifyEvidenceBytes(joinLines(swapped), { historyEntry: entry });
        expect([i, j, v.status, v.firstBadLine]).toEqual([i, j, 'tampered', i + 1]);
      }
    }
  });

  it('truncating at a line boundary (the history index knows the run was sealed)', () => {
    const lines = splitLines(bytes).lines;
    for (let k = 0; k < total; k++) {
      const v = verifyEvidenceBytes(joinLines(lines.slice(0, k)), { historyEntry: entry });
      expect([k, v.status, v.firstBadLine]).toEqual([k, 'tampered', k + 1]);
    }
    // without the index, a prefix is indistinguishable from a killed run: reported as unsealed, never as sealed
    expect(verifyEvidenceBytes(joinLines(lines.slice(0, total - 1)), {}).status).toBe('unsealed');
  });

  it('truncating in the middle of any line', () => {
    const lines = splitLines(bytes).lines;
    let offset = 0;
    for (let i = 0; i < total; i++) {
      const len = (lines[i] as Buffer).length;
      for (const cut of [1, Math.floor(len / 2), len]) {
        const v = verifyEvidenceBytes(bytes.subarray(0, offset + cut), { historyEntry: entry });
        expect([i, cut, v.status, v.firstBadLine]).toEqual([i, cut, 'tampered', i + 1]);
      }
      offset += len + 1;
    }
  });

  it('a line appended after the seal', () => {
    const extra = serializeLine(total + 1, new Date().toISOString(), 0, sha256Hex(splitLines(bytes).lines.at(-1) as Buffer), {
      note: { type: 'closed-unsealed', reason: 'x' },
    });
    const v = verifyEvidenceBytes(Buffer.concat([bytes, Buffer.from(`${extra}\n`)]), { historyEntry: entry });
    expect(v).toMatchObject({ status: 'tampered', firstBadLine: total + 1 });
  });

  it('a forged file with a recomputed chain and seal is caught by the history index', () => {
    const lines = splitLines(bytes).lines.map((l) => JSON.parse(l.toString()) as Record<string, unknown>);
    let prev = '0'.repeat(64);
    const out: string[] = [];
    for (const [i, l] of lines.entries()) {
      const { seq: _s, ts, t, prev: _p, h: _h, ...body } = l;
      if ('event' in body && (body['event'] as { type: string }).type === 'health-check') (body['event'] as { ok: boolean }).ok = false;
      if ('seal' in body) (body['seal'] as { finalHash: string }).finalHash = sha256Hex(out.map((x) => `${x}\n`).join(''));
      const line = serializeLine(i + 1, ts as string, t as number, prev, body as Parameters<typeof serializeLine>[4]);
      out.push(line);
      prev = sha256Hex(line);
    }
    const forged = Buffer.from(out.map((x) => `${x}\n`).join(''));
    expect(verifyEvidenceBytes(forged, {}).status).toBe('sealed');
    expect(verifyEvidenceBytes(forged, { historyEntry: entry })).toMatchObject({ status: 'tampered', firstBadLine: total });
  });

  it('on disk: a deleted seal is reported as tampered, not interrupted', async () => {
    const run = await syntheticRun();
    const file = path.join(run.dir, EVENTS_FILE);
    const lines = splitLines(readFileSync(file)).lines;
    writeFileSync(file, joinLines(lines.slice(0, -1)));
    const v = await verifyEvidence(run.dir);
    expect(v).toMatchObject({ status: 'tampered', firstBadLine: lines.length });
    expect(v.reason).toContain('history.jsonl records this run as sealed');
  });

  it('on disk: a missing events.jsonl is tampering', async () => {
    const run = await syntheticRun();
    rmSync(path.join(run.dir, EVENTS_FILE));
    expect(await verifyEvidence(run.dir)).toMatchObject({ status: 'tampered', firstBadLine: 1 });
    // ... but a directory that is no run at all (the evidence root itself) is a usage error
    await expect(verifyEvidence(run.evidenceDir)).rejects.toThrow(/is not a run directory/);
  });
});

describe('redaction', () => {
  it('no secret reaches any file of the run directory or the history index', async () => {
    const { dir, evidenceDir } = await syntheticRun({ kind: 'drill', outcome: 'rolled-back', outputLines: 5 });
    const files = [...readdirSync(dir).map((f) => path.join(dir, f)), path.join(evidenceDir, HISTORY_FILE)];
    expect(files).toHaveLength(4);
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      expect(text.length).toBeGreaterThan(0);
      for (const secret of [SECRET_PASSWORD, SECRET_URI_PASSWORD, SECRET_ENV_VALUE]) expect([f, text.includes(secret)]).toEqual([f, false]);
    }
    // the masked forms are there: redaction happened, the lines were not dropped
    const events = readFileSync(path.join(dir, EVENTS_FILE), 'utf8');
    expect(events).toContain('postgresql://app:****@db:5432/metachat');
    expect(events).toContain('--password=****');
    expect(events).toContain('PGPASSWORD was ****');
  });
});

describe('history', () => {
  it('lists runs newest first, shows interrupted runs, the RTO trend and drill freshness', async () => {
    const evidenceDir = mkdtempSync(path.join(root, 'hist-'));
    const drill1 = await syntheticRun({ evidenceDir, kind: 'drill' });
    const drill2 = await syntheticRun({ evidenceDir, kind: 'drill' });
    const restore = await syntheticRun({ evidenceDir, kind: 'restore', outcome: 'rolled-back' });
    const killed = await syntheticRun({ evidenceDir, kind: 'restore', finish: false });
    await syntheticRun({ evidenceDir, kind: 'drill', recipeName: 'story-portal' });

    const view = await readHistory(evidenceDir, { recipe: 'metachat' });
    expect(view.runs.map((r) => r.runId)).toEqual([killed.runId, restore.runId, drill2.runId, drill1.runId]);
    expect(view.runs[0]).toMatchObject({ outcome: 'interrupted', finished: false, evidence: 'unsealed', indexed: false });
    expect(view.runs[1]).toMatchObject({ outcome: 'rolled-back', evidence: 'sealed', indexed: true, exitCode: 1 });
    expect(view.trends[0]?.points.map((p) => p.runId)).toEqual([drill1.runId, drill2.runId]);
    expect(view.trends[0]?.direction).toBe('steady');
    expect(view.freshness[0]).toMatchObject({ recipe: 'metachat', stale: false, lastSuccessfulDrill: { runId: drill2.runId } });

    const later = await readHistory(evidenceDir, { recipe: 'metachat', now: new Date(Date.now() + 91 * 86_400_000) });
    expect(later.freshness[0]?.stale).toBe(true);
    expect(later.freshness[0]?.warning).toContain('older than the drill interval of 90 days');
    const shorter = await readHistory(evidenceDir, { recipe: 'metachat', intervalDays: 7, now: new Date(Date.now() + 8 * 86_400_000) });
    expect(shorter.freshness[0]?.stale).toBe(true);

    const all = await readHistory(evidenceDir);
    expect(all.runs).toHaveLength(5);
    expect(all.freshness.map((f) => f.recipe)).toEqual(['metachat', 'story-portal']);
  });

  it('warns when there is no successful drill at all, and flags tampered evidence', async () => {
    const evidenceDir = mkdtempSync(path.join(root, 'hist-'));
    const run = await syntheticRun({ evidenceDir, kind: 'drill', outcome: 'rolled-back' });
    const file = path.join(run.dir, EVENTS_FILE);
    writeFileSync(file, readFileSync(file, 'utf8').replace('pg_restore exited 1', 'pg_restore exited 0'));
    const view = await readHistory(evidenceDir, { recipe: 'metachat' });
    expect(view.freshness[0]).toMatchObject({ stale: true, lastSuccessfulDrill: null });
    expect(view.freshness[0]?.warning).toContain('no successful drill on record');
    expect(view.runs[0]?.evidence).toBe('tampered');
  });

  it('an empty or missing evidence directory has no runs', async () => {
    const view = await readHistory(path.join(root, 'does-not-exist'), { recipe: 'metachat' });
    expect(view.runs).toEqual([]);
    expect(view.freshness[0]?.lastSuccessfulDrill).toBeNull();
  });
});

describe('run ids', () => {
  it('are sortable and safe as directory names', () => {
    const id = newRunId('restore', 'Meta Chat/../x', new Date('2026-11-23T05:12:00.123Z'));
    expect(id).toMatch(/^20261123T051200Z-restore-meta-chat-.-x-[0-9a-f]{4}$/);
    expect(id).not.toContain('/');
  });
});

describe('attachRecipeEvidence', () => {
  it('takes the evidence dir, objectives and drill interval from the recipe', async () => {
    const dir = path.join(root, 'recipe-ev');
    const { recipe: r } = parseRecipe(
      `name: demo\nbackups:\n  root: /backups\ncomponents: {}\nobjectives:\n  rtoMinutes: 15\ndrill:\n  intervalDays: 30\nevidence:\n  dir: ${dir}\n`,
    );
    expect(r).toBeDefined();
    const bus = new EventBus();
    const handle = attachRecipeEvidence(bus, {
      loaded: { recipe: r as NonNullable<typeof r>, file: '/r/demo.yaml', digest: 'f'.repeat(64) },
      kind: 'verify',
      redact: createRedactor(),
    });
    await handle.close();
    expect(path.dirname(handle.dir)).toBe(dir);
    expect(handle.runId).toMatch(/^\d{8}T\d{6}Z-verify-demo-[0-9a-f]{4}$/);
    const first = JSON.parse(splitLines(readFileSync(path.join(handle.dir, EVENTS_FILE))).lines[0]?.toString() ?? '{}') as {
      header: Record<string, unknown>;
    };
    expect(first.header).toMatchObject({
      objectives: { rtoMinutes: 15 },
      drillIntervalDays: 30,
      recipe: { name: 'demo', digest: 'f'.repeat(64) },
    });
    // closed without run-finished: a note, no seal
    expect(await verifyEvidence(handle.dir)).toMatchObject({ status: 'unsealed', lines: 2 });
  });

  it('refuses, before anything is touched, when the evidence directory cannot be created', () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'x');
    expect(() =>
      attachEvidence(new EventBus(), {
        evidenceDir: path.join(file, 'sub'),
        runId: 'r',
        kind: 'restore',
        recipe,
        redact: createRedactor(),
      }),
    ).toThrow(/Cannot create the evidence directory/);
  });
});
