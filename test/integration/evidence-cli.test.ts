import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../source/engine/events.js';
import { createRedactor } from '../../source/exec/redact.js';
import { EVENTS_FILE, splitLines } from '../../source/evidence/format.js';
import { readHistory } from '../../source/evidence/history.js';
import { verifyEvidence } from '../../source/evidence/verify.js';
import { runCli } from '../support/cli.js';
import { attachEvidence, newRunId } from '../../source/evidence/writer.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const recipe = { name: 'evidence-cli', file: '/recipes/evidence-cli.yaml', digest: 'c'.repeat(64) };

let tmp: string;
let evidenceDir: string;

function cli(args: string[], env: Record<string, string> = {}): ReturnType<typeof runCli> {
  return runCli(args, { env: { XDG_STATE_HOME: path.join(tmp, 'xdg'), ...env }, cwd: tmp });
}

async function sealedRun(kind: 'restore' | 'drill', outcome: 'restored' | 'rolled-back' = 'restored'): Promise<string> {
  const runId = newRunId(kind, recipe.name);
  const bus = new EventBus();
  const handle = attachEvidence(bus, {
    evidenceDir,
    runId,
    kind,
    recipe,
    redact: createRedactor([]),
    toolVersion: '0.1.0',
    objectives: { rtoMinutes: 30, rpoMinutes: 60 },
  });
  bus.emit({
    type: 'run-started',
    runId,
    kind,
    operator: 'alice',
    host: 'db1',
    toolVersion: '0.1.0',
    recipe,
    backup: { id: 'set-1', time: new Date(Date.now() - 600_000).toISOString(), location: '/backups' },
    confirmedAt: new Date().toISOString(),
  });
  bus.emit({ type: 'step-started', stepId: 's1', title: 'Restore Redis' });
  bus.emit({ type: 'step-finished', stepId: 's1', title: 'Redis restored', durationMs: 10 });
  bus.emit({ type: 'health-check', name: 'redis ping', ok: true, attempts: 1, durationMs: 3, detail: 'PONG' });
  bus.emit({
    type: 'run-finished',
    outcome,
    exitCode: outcome === 'restored' ? 0 : 1,
    safetyCopies: [],
    state: ['Redis: restored'],
    nextSteps: [],
  });
  await handle.close();
  return handle.dir;
}

/**
 * A child process that writes evidence through a real EventBus and never stops: it prints
 * READY once 50 events are written, keeps emitting command output, and is killed with SIGKILL.
 */
async function killedRun(): Promise<string> {
  const script = path.join(tmp, 'child.mts');
  const src = (p: string): string => pathToFileURL(path.join(repo, 'source', p)).href;
  writeFileSync(
    script,
    `
import { EventBus } from ${JSON.stringify(src('engine/events.ts'))};
import { createRedactor } from ${JSON.stringify(src('exec/redact.ts'))};
import { attachEvidence, newRunId } from ${JSON.stringify(src('evidence/writer.ts'))};
const recipe = ${JSON.stringify(recipe)};
const runId = newRunId('restore', recipe.name);
const bus = new EventBus(false);
const handle = attachEvidence(bus, { evidenceDir: ${JSON.stringify(evidenceDir)}, runId, kind: 'restore', recipe, redact: createRedactor([]), outputLinesPerCommand: 1000000 });
bus.emit({ type: 'run-started', runId, kind: 'restore', operator: 'bob', host: 'db1', toolVersion: '0.1.0', recipe,
  backup: { id: 'set-2', time: new Date().toISOString(), location: '/backups' }, confirmedAt: new Date().toISOString() });
bus.emit({ type: 'step-started', stepId: 'pg', title: 'Restore PostgreSQL' });
bus.emit({ type: 'command-started', stepId: 'pg', commandId: 'c1', argv: ['psql', '-f', '-'] });
let i = 0;
const burst = () => { for (let k = 0; k < 25; k++) bus.emit({ type: 'command-output', stepId: 'pg', commandId: 'c1', stream: 'stdout', line: 'INSERT 0 1 #' + (i++) }); };
burst(); burst();
process.stdout.write('READY ' + handle.dir + '\\n');
setInterval(burst, 1);
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /READY (\S+)\n/.exec(buf);
      if (m?.[1]) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before it was ready`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return dir;
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-evidence-cli-'));
  evidenceDir = path.join(tmp, 'evidence');
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('a run killed with SIGKILL', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await killedRun();
  });

  it('leaves a verifiable prefix: intact, unsealed', async () => {
    const lines = splitLines(readFileSync(path.join(dir, EVENTS_FILE)));
    expect(lines.complete).toBe(true);
    expect(lines.lines.length).toBeGreaterThan(50);
    expect(await verifyEvidence(dir)).toMatchObject({ status: 'unsealed', lines: lines.lines.length });
  });

  it('`evidence verify` exits 6 and says the run was interrupted', async () => {
    const r = await cli(['evidence', 'verify', dir]);
    expect(r.code).toBe(6);
    expect(r.stdout).toContain('Evidence intact but unsealed');
    const j = await cli(['evidence', 'verify', dir, '--json']);
    expect(j.code).toBe(6);
    expect(JSON.parse(j.stdout)).toMatchObject({ status: 'unsealed', exitCode: 6 });
  });

  it('`history` shows it as interrupted', async () => {
    const view = await readHistory(evidenceDir);
    expect(view.runs.find((r) => r.dir === dir)).toMatchObject({ outcome: 'interrupted', finished: false, evidence: 'unsealed' });
    const r = await cli(['history'], { RESTORE_ASSISTANT_EVIDENCE_DIR: evidenceDir });
    expect(r.code).toBe(0);
    const row = r.stdout.split('\n').find((l) => l.includes(path.basename(dir)));
    expect(row).toContain('interrupted (never finished)');
    expect(row).toContain('unsealed');
  });

  it('`report` renders how far it got', async () => {
    const r = await cli(['report', path.basename(dir)], { RESTORE_ASSISTANT_EVIDENCE_DIR: evidenceDir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('interrupted (never finished)');
    expect(r.stdout).toContain('| Restore PostgreSQL | unfinished |');
  });
});

describe('CLI exit codes', () => {
  let sealed: string;
  let drill: string;
  beforeAll(async () => {
    sealed = await sealedRun('restore');
    drill = await sealedRun('drill');
  });

  it('`evidence verify` exits 0 for an intact sealed run', async () => {
    const r = await cli(['evidence', 'verify', sealed]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('Evidence verified');
    expect(r.stdout).toContain('matches the seal recorded in history.jsonl');
  });

  it('`evidence verify` exits 7 for an edited run and names the line', async () => {
    const copy = path.join(evidenceDir, `${path.basename(sealed)}-edited`);
    mkdirSync(copy);
    const text = readFileSync(path.join(sealed, EVENTS_FILE), 'utf8');
    writeFileSync(path.join(copy, EVENTS_FILE), text.replace('"durationMs":10', '"durationMs":11'));
    const lineNo = text.split('\n').findIndex((l) => l.includes('"durationMs":10')) + 1;
    const r = await cli(['evidence', 'verify', copy]);
    expect(r.code).toBe(7);
    expect(r.stdout).toContain(`first bad line: ${lineNo}`);
    const rep = await cli(['report', copy, '--format', 'json']);
    expect(rep.code).toBe(7);
    expect(JSON.parse(rep.stdout)).toMatchObject({ evidence: { integrity: { status: 'tampered', firstBadLine: lineNo } } });
  });

  it('`evidence verify` exits 2 for something that is not a run', async () => {
    const r = await cli(['evidence', 'verify', path.join(tmp, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('No run');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('`report` renders markdown and JSON and exits 0', async () => {
    const md = await cli(['report', drill]);
    expect(md.code).toBe(0);
    expect(md.stdout).toContain('# Drill report: evidence-cli: restored');
    expect(md.stdout).toContain('## Sign-off');
    const json = await cli(['report', drill, '--format', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(readFileSync(path.join(drill, 'report.json'), 'utf8')));
    const missing = await cli(['report', 'no-such-run'], { RESTORE_ASSISTANT_EVIDENCE_DIR: evidenceDir });
    expect(missing.code).toBe(2);
  });

  it('`history` prints a table, JSON and Markdown', async () => {
    const env = { RESTORE_ASSISTANT_EVIDENCE_DIR: evidenceDir };
    const table = await cli(['history'], env);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^DATE \(UTC\)\s+KIND\s+RECIPE\s+BACKUP\s+RESULT\s+RTO\s+RPO\s+EVIDENCE\s+RUN$/);
    expect(table.stdout).toContain(path.basename(drill));
    const json = await cli(['history', '--json'], env);
    expect(json.code).toBe(0);
    const view = JSON.parse(json.stdout) as { runs: Array<{ runId: string }>; freshness: Array<{ stale: boolean }> };
    expect(view.runs.map((r) => r.runId)).toContain(path.basename(sealed));
    expect(view.freshness[0]?.stale).toBe(false);
    const md = await cli(['history', '--markdown'], env);
    expect(md.code).toBe(0);
    expect(md.stdout.split('\n')[0]).toBe('| DATE (UTC) | KIND | RECIPE | BACKUP | RESULT | RTO | RPO | EVIDENCE | RUN | SEAL |');
    expect((await cli(['history', '--json', '--markdown'], env)).code).toBe(2);
  });

  it("`history --recipe` uses the recipe's evidence dir and drill interval", async () => {
    const recipeFile = path.join(tmp, 'evidence-cli.yaml');
    const other = path.join(tmp, 'other-evidence');
    writeFileSync(
      recipeFile,
      `name: evidence-cli\nbackups:\n  root: ${tmp}\ncomponents: {}\nevidence:\n  dir: ${other}\ndrill:\n  intervalDays: 7\n`,
    );
    const r = await cli(['history', '--recipe', recipeFile]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`No runs recorded in ${other}`);
    expect(r.stderr).toContain('Warning: evidence-cli: no successful drill on record');
  });

  it('`history` without a recipe or env reads the XDG state directory', async () => {
    const r = await cli(['history']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`No runs recorded in ${path.join(tmp, 'xdg', 'restore-assistant', 'runs')}`);
  });
});
