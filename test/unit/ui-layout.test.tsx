import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from 'ink-testing-library';
import type { PlanStep } from '../../source/plan/types.js';
import { breadcrumbForm, breadcrumbWidth, compactBreadcrumb, fitFooter, FLOW_STEPS } from '../../source/ui/layout.js';
import { applyTypedChunk } from '../../source/ui/typed-input.js';
import { initialState } from '../../source/ui/wizard.js';
import { fakeDeps, recipeFixture } from '../support/ui-fixtures.js';
import { keys } from '../support/keys.js';
import { renderGuide, type Rendered } from '../support/ui-render.js';

/**
 * Layout at 60x20, 80x24 and 160x45 (issue 12): the breadcrumb is one whole line in a form that
 * fits, the footer hints are shortened (never cut with "…") and no line is wider than the terminal;
 * typed fields apply every character of a burst.
 */

afterEach(() => cleanup());

const noKey = { backspace: false, delete: false, return: false, ctrl: false, meta: false, escape: false, tab: false };

describe('typed fields apply bursts in order', () => {
  it('backspaces that arrive together with the text, or after it in one chunk, are all applied', () => {
    expect(applyTypedChunk('', 'shopxx\x7f\x7f', noKey)).toEqual({ value: 'shop', submit: false });
    expect(applyTypedChunk('shopxx', '\x7f\x7f', noKey)).toEqual({ value: 'shop', submit: false });
    expect(applyTypedChunk('shopx', '\b', noKey)).toEqual({ value: 'shop', submit: false });
    expect(applyTypedChunk('sho', 'px\x7f\r', noKey)).toEqual({ value: 'shop', submit: true });
    // Ink's own parse of a lone DEL / BS / Enter.
    expect(applyTypedChunk('shopx', '', { ...noKey, delete: true })).toEqual({ value: 'shop', submit: false });
    expect(applyTypedChunk('shopx', '', { ...noKey, backspace: true })).toEqual({ value: 'shop', submit: false });
    expect(applyTypedChunk('shop', '\r', { ...noKey, return: true })).toEqual({ value: 'shop', submit: true });
    // More backspaces than text: empty, never negative; control characters are dropped.
    expect(applyTypedChunk('ab', '\x7f\x7f\x7f\x1b\x07c', noKey)).toEqual({ value: 'c', submit: false });
    expect(applyTypedChunk('', 'x', { ...noKey, ctrl: true })).toEqual({ value: '', submit: false });
  });
});

describe('breadcrumb and footer fit the terminal', () => {
  it('the breadcrumb takes the widest form that fits: with the name, steps only, "Step N of 7"', () => {
    for (const step of FLOW_STEPS) {
      expect(breadcrumbForm(160, step)).toBe('full');
      expect(breadcrumbForm(80, step)).toBe('full');
      expect(breadcrumbForm(60, step)).toBe('steps');
      expect(breadcrumbForm(50, step)).toBe('compact');
      for (const cols of [40, 50, 60, 80, 160]) expect(breadcrumbWidth(breadcrumbForm(cols, step), step)).toBeLessThanOrEqual(Math.max(cols, breadcrumbWidth('compact', step)));
    }
    expect(compactBreadcrumb('Plan')).toBe('Step 4 of 7: Plan');
  });

  it('footer hints are shortened, never cut', () => {
    const hints = [
      { key: '↑↓/jk', description: 'move' },
      { key: 'c', description: 'show commands' },
      { key: 'u', description: 'if unhealthy: ask / roll back / keep', short: 'if unhealthy' },
      { key: 'Enter', description: 'confirm' },
      { key: 'Esc', description: 'back' },
      { key: '?', description: 'help' },
      { key: 'q', description: 'quit' },
    ];
    const wide = fitFooter(hints, 159);
    expect(wide).toBe('↑↓/jk move  ·  c show commands  ·  u if unhealthy: ask / roll back / keep  ·  Enter confirm  ·  Esc back  ·  ? help  ·  q quit');
    for (const cols of [40, 59, 79, 100]) {
      const line = fitFooter(hints, cols);
      expect(line.length).toBeLessThanOrEqual(cols);
      expect(line).not.toContain('…');
      expect(line).toContain('? help');
      // Every hint is there as a whole: its key at least.
      if (cols >= 59) for (const h of hints) expect(line).toContain(h.key);
    }
    expect(fitFooter(hints, 79)).toBe('↑↓/jk · c · u if unhealthy · Enter confirm · Esc back · ? help · q quit');
    expect(fitFooter(hints, 100)).toBe('↑↓/jk move · c show commands · u if unhealthy · Enter confirm · Esc back · ? help · q quit');
  });
});

async function checkScreen(g: Rendered, cols: number, rows: number, step: string): Promise<void> {
  const f = g.frame();
  const lines = f.split('\n');
  for (const line of lines) expect(line.length, `line wider than ${cols}: ${line}`).toBeLessThanOrEqual(cols);
  expect(lines.length).toBeLessThanOrEqual(Math.max(rows, lines.length)); // scrolling is allowed; width is not
  const header = lines[0] ?? '';
  // The breadcrumb is whole on its first line: the current step, and (when it fits) the last step.
  expect(header).toContain(step);
  if (breadcrumbForm(cols, step) !== 'compact') expect(header.trimEnd().endsWith('Summary') || header.includes(` ${step} `)).toBe(true);
  if (breadcrumbForm(cols, step) !== 'compact') expect(header).toContain('Summary');
  expect(lines[1]?.trim() ?? '').toBe(''); // nothing of the header wrapped onto the next line
  const footer = lines.filter((l) => l.trim() !== '').at(-1) ?? '';
  expect(footer).not.toMatch(/…\s*$/);
}

describe('screens at 60x20, 80x24 and 160x45', () => {
  for (const [cols, rows] of [
    [60, 20],
    [80, 24],
    [160, 45],
  ] as const) {
    it(`${cols}x${rows}: recipe, backup, plan, c, confirm and help fit; no wrapped header, no garbled breadcrumb, footer hints whole`, async () => {
      const control = fakeDeps();
      const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
      g.resize(cols, rows);
      await g.waitFor('What do you want to do with story-portal?');
      await checkScreen(g, cols, rows, 'Recipe');
      await g.press(keys.enter, '2026-01-18 01:45Z');
      await checkScreen(g, cols, rows, 'Backup');
      await g.press(keys.enter, 'IN-PLACE restore of story-portal');
      await checkScreen(g, cols, rows, 'Plan');
      expect(g.frame()).toMatch(/\bu\b/);
      if (cols >= 80) expect(g.frame()).toMatch(/u if unhealthy/);
      await g.press('j', /›\s+2\./);
      await g.press('c', '$ ');
      await checkScreen(g, cols, rows, 'Plan');
      await g.press('?', 'Keys');
      for (const line of g.frame().split('\n')) expect(line.length).toBeLessThanOrEqual(cols);
      await g.press(keys.escape, 'IN-PLACE restore of story-portal');
      await g.press(keys.enter, 'Type agentic_platform');
      await checkScreen(g, cols, rows, 'Confirm');
      // A burst with backspaces in one write, then Enter in another: the word is right.
      await g.press('agentic_platformxx\x7f\x7f', (f) => f.includes('> agentic_platform') && !f.includes('agentic_platformx'));
      await g.press(keys.enter, 'Engine starting');
      expect(control.runPlans).toHaveLength(1);
    });
  }

  it('the confirm word typed in bursts (text, backspaces, more text, Enter, all in one write) is taken exactly', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.enter, '2026-01-18 01:45Z');
    await g.press(keys.enter, 'IN-PLACE restore of story-portal');
    await g.press(keys.enter, 'Type agentic_platform');
    g.instance.stdin.write('agen');
    g.instance.stdin.write('tix\x7fc_pl');
    g.instance.stdin.write('atfxy\x7f\x7for');
    g.instance.stdin.write('m\r');
    await g.waitFor('Engine starting');
    expect(control.runPlans).toHaveLength(1);
  });
});

describe('the plan list and the step detail say the same thing', () => {
  it('a step that renames aside: "changes, copy kept" in the list, "loses nothing" in the detail; a real loss says DESTROYS both times', async () => {
    const { stepMark, destroysLine } = await import('../../source/ui/screens/PlanScreen.js');
    const base = { id: 's', title: 'Rename database shop aside', phase: 'postgres', component: 'postgres', actions: [] } as unknown as PlanStep;
    const rename = { ...base, destructive: true, destroys: 'nothing: database shop is renamed to shop__pre and kept', safetyCopy: { component: 'postgres', kind: 'rename', location: 'shop__pre', description: 'renamed' } } as typeof base;
    expect(stepMark(rename)).toBe('changes, copy kept');
    expect(destroysLine(rename)).toBe('Changes the target, loses nothing: database shop is renamed to shop__pre and kept');
    const drop = { ...base, destructive: true, destroys: 'database shop and everything in it', safetyCopy: { component: 'postgres', kind: 'none', location: '', description: 'none' } } as typeof base;
    expect(stepMark(drop)).toBe('DESTROYS, no copy');
    expect(destroysLine(drop)).toBe('Destroys: database shop and everything in it');
    const read = { ...base, destructive: false } as typeof base;
    expect(stepMark(read)).toBe('');
    expect(destroysLine(read)).toMatch(/^Destroys: nothing/);
  });
});

describe('errors the guide ends on', () => {
  it('a permission error is the operator\'s situation (exit 9, what to do), not "Internal error ... a bug"; every error keeps its stack for RESTORE_ASSISTANT_DEBUG', async () => {
    const { toGuideError } = await import('../../source/ui/App.js');
    const { ExitCode } = await import('../../source/exit-codes.js');
    const eacces = Object.assign(new Error("EACCES: permission denied, open '/var/lib/restore-assistant/evidence/x'"), { code: 'EACCES', syscall: 'open', path: '/var/lib/restore-assistant/evidence/x' });
    const e = toGuideError(eacces);
    expect(e.message).toBe('Permission denied: this user cannot read /var/lib/restore-assistant/evidence/x.');
    expect(e.message).not.toMatch(/Internal error/);
    expect(e.exitCode).toBe(ExitCode.preflightFailed);
    expect(e.next).toContain('as root');
    expect(e.stack).toContain('EACCES');
    const bug = toGuideError(new TypeError('x is undefined'));
    expect(bug).toMatchObject({ message: 'Internal error: x is undefined', exitCode: ExitCode.internal });
    expect(bug.stack).toContain('TypeError');
  });
});

describe('overall progress during the run', () => {
  it('says which step of how many, how many are done, and the engine\'s ETA for the running step', async () => {
    const { emptyRunView, foldRunEvent, overallProgressLine } = await import('../../source/ui/run-view.js');
    const { formatDuration } = await import('../../source/ui/format.js');
    let v = emptyRunView();
    const at = (body: Parameters<typeof foldRunEvent>[1] extends infer E ? E : never): void => {
      v = foldRunEvent(v, body);
    };
    const ev = (seq: number, body: Record<string, unknown>) => ({ seq, t: seq, ts: new Date(1_800_000_000_000 + seq).toISOString(), ...body }) as unknown as Parameters<typeof foldRunEvent>[1];
    expect(overallProgressLine(v, 19, formatDuration)).toBe('Step 1 of 19 · 0 done');
    for (let i = 0; i < 8; i++) {
      at(ev(2 * i, { type: 'step-started', stepId: `s${i}`, title: `step ${i}` }));
      at(ev(2 * i + 1, { type: 'step-finished', stepId: `s${i}`, title: `step ${i}`, durationMs: 5 }));
    }
    at(ev(20, { type: 'step-started', stepId: 'pg', title: 'Restore PostgreSQL database shop' }));
    expect(overallProgressLine(v, 19, formatDuration)).toBe('Step 9 of 19 · 8 done');
    at(ev(21, { type: 'progress', stepId: 'pg', unit: 'bytes', done: 10, total: 20, etaMs: 8000 }));
    expect(overallProgressLine(v, 19, formatDuration)).toBe(`Step 9 of 19 · 8 done · about ${formatDuration(8000)} left in Restore PostgreSQL database shop`);
    at(ev(22, { type: 'step-started', stepId: 'redis', title: 'Restore Redis' }));
    expect(overallProgressLine(v, 19, formatDuration)).toMatch(/^Steps 9–10 of 19 · 8 done/);
  });
});

/** The frame below what Static printed (confirmed line, finished steps): from its breadcrumb on. */
function frameFrom(f: string, step: string): string[] {
  const lines = f.split('\n');
  const at = lines.findIndex((l) => l.startsWith('restore-assistant ') || l.startsWith(' Step ') || /^Recipe › /.test(l));
  expect(at, `no breadcrumb for ${step} in:\n${f}`).toBeGreaterThan(-1);
  return lines.slice(at);
}

function checkFrame(f: string, cols: number, step: string): void {
  for (const line of f.split('\n')) expect(line.length, `line wider than ${cols}: ${line}`).toBeLessThanOrEqual(cols);
  const lines = frameFrom(f, step);
  const header = lines[0] ?? '';
  expect(header).toContain(step);
  if (breadcrumbForm(cols, step) !== 'compact') expect(header).toContain('Summary');
  expect(lines[1]?.trim() ?? '').toBe('');
  const footer = lines.filter((l) => l.trim() !== '').at(-1) ?? '';
  expect(footer).not.toMatch(/…\s*$/);
}

describe('run, summary and history at 60x20, 80x24 and 160x45', () => {
  const longPath = '/var/lib/restore-assistant/state/restore-assistant/runs/20260118T050000Z-restore-story-portal-6633';
  for (const [cols, rows] of [
    [60, 20],
    [80, 24],
    [160, 45],
  ] as const) {
    it(`${cols}x${rows}: the run (parallel steps, each with its own output), the summary's incident block and history fit`, async () => {
      const control = fakeDeps({
        history: [
          { runId: 'r2', kind: 'drill', startedAt: '2026-01-15T05:00:00.000Z', outcome: 'rollback-incomplete', backupId: '2026-01-15_01-45-00', rtoMs: 240_000, rpoMs: 3 * 3600_000, dir: '/e/r2' },
          { runId: 'r1', kind: 'restore', startedAt: '2026-01-10T05:00:00.000Z', outcome: 'restored', backupId: '2026-01-10_01-45-00', rtoMs: 300_000, dir: '/e/r1' },
        ],
      });
      const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
      g.resize(cols, rows);
      await g.waitFor('What do you want to do with story-portal?');
      await g.press(keys.enter, '2026-01-18 01:45Z');
      await g.press(keys.enter, 'IN-PLACE restore of story-portal');
      await g.press(keys.enter, 'Type agentic_platform');
      await g.type('agentic_platform', 'Engine starting');
      control.emit({ type: 'step-started', stepId: 'pg', title: 'Restore PostgreSQL database agentic_platform' });
      control.emit({ type: 'step-started', stepId: 'redis', title: 'Stop Redis' });
      control.emit({ type: 'command-output', stepId: 'redis', commandId: 'c2', stream: 'stdout', line: 'redis-sandbox stopped (pid 42)' });
      control.emit({ type: 'command-output', stepId: 'pg', commandId: 'c1', stream: 'stderr', line: 'pg_restore: creating TABLE "app.users"' });
      control.emit({ type: 'progress', stepId: 'pg', unit: 'items', done: 40, total: 125, etaMs: 8000 });
      const run = await g.waitFor('redis-sandbox stopped');
      checkFrame(run, cols, 'Run');
      // Each step's output sits under that step, not under the one that started last.
      const lines = run.split('\n');
      const pgAt = lines.findIndex((l) => l.includes('▸ Restore PostgreSQL database'));
      const redisAt = lines.findIndex((l) => l.includes('▸ Stop Redis'));
      const pgOut = lines.findIndex((l) => l.includes('creating TABLE'));
      const redisOut = lines.findIndex((l) => l.includes('redis-sandbox stopped'));
      expect(pgAt).toBeLessThan(pgOut);
      expect(pgOut).toBeLessThan(redisAt);
      expect(redisAt).toBeLessThan(redisOut);
      expect(run.replace(/\s+/g, ' ')).toMatch(/Steps 1–2 of \d+ · 0 done · about 8\.0 s left in Restore PostgreSQL database agentic_platform/);
      control.emit({ type: 'step-finished', stepId: 'redis', title: 'Redis stopped', durationMs: 300 });
      control.emit({ type: 'step-finished', stepId: 'pg', title: 'PostgreSQL database agentic_platform restored', durationMs: 64_000, detail: '125 of 125 items' });
      control.emit({ type: 'health-check', name: 'api http', ok: true, attempts: 1, durationMs: 900, detail: '200' });
      control.finishRun({ summary: { ...(await import('../support/ui-fixtures.js')).summaryFixture() }, evidenceDir: longPath });
      let summary = await g.waitFor('p print');
      checkFrame(summary, cols, 'Summary');
      // The summary fits the terminal, the verdict on its first line; what does not fit scrolls under it (j / ↓).
      expect(frameFrom(summary, 'Summary').length).toBeLessThanOrEqual(rows);
      expect(frameFrom(summary, 'Summary')[2]).toContain('✔ Restore of story-portal');
      const evidenceShown = (f: string): boolean => {
        const b = frameFrom(f, 'Summary');
        const at = b.findIndex((l) => l.startsWith('Evidence:     '));
        return at > -1 && at + 1 < b.findIndex((l) => /^(↓ | {2})lines \d/.test(l) || l.startsWith('p print') || l.startsWith('↑↓/jk'));
      };
      for (let i = 0; i < 40 && !evidenceShown(summary); i++) {
        const before = summary;
        summary = await g.press('j', (f) => f !== before);
        expect(frameFrom(summary, 'Summary')[2]).toContain('✔ Restore of story-portal');
        expect(frameFrom(summary, 'Summary').length).toBeLessThanOrEqual(rows);
      }
      checkFrame(summary, cols, 'Summary');
      // The block wraps under its value column, never into the labels.
      const block = frameFrom(summary, 'Summary');
      const evidence = block.findIndex((l) => l.startsWith('Evidence:     '));
      expect(evidence).toBeGreaterThan(-1);
      if (longPath.length + 15 > cols) expect(block[evidence + 1]).toMatch(/^ {15}\S/);
      g.instance.unmount();

      const h = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
      h.resize(cols, rows);
      await h.waitFor('What do you want to do with story-portal?');
      await h.press(keys.down, '› Drill');
      await h.press(keys.down, '› History');
      const hist = await h.press(keys.enter, 'Drill RTO trend');
      for (const line of hist.split('\n')) expect(line.length).toBeLessThanOrEqual(cols);
      const rowsShown = hist.split('\n');
      expect(rowsShown[0]).toContain('History');
      expect(rowsShown[1]?.trim()).toBe('');
      // The result is never cut ("failed, ROLLBACK INCO…"), at any width.
      expect(hist).toContain('failed, ROLLBACK INCOMPLETE');
      const report = await h.press(keys.enter, 'lines 1–');
      for (const line of report.split('\n')) expect(line.length).toBeLessThanOrEqual(cols);
      const footer = report.split('\n').filter((l) => l.trim() !== '').at(-1) ?? '';
      expect(footer).toContain('? help');
      expect(footer).not.toMatch(/…\s*$/);
    });
  }
});
