import { EventBus } from '../source/engine/events.js';
import { runPlan } from '../source/engine/run.js';
import { createRedactor } from '../source/exec/redact.js';
import type { Plan } from '../source/plan/types.js';

/**
 * One engine restore in its own process, for bench/restore.ts: reads a Plan (JSON) from argv,
 * runs it with the silent renderer, and prints {ms, maxRssKiB, outcome, events} as JSON on stdout.
 * Its own process, so the peak RSS is the engine's alone.
 */
async function main(): Promise<void> {
  const [planFile, lockDir] = process.argv.slice(2);
  if (!planFile || !lockDir) throw new Error('usage: restore-child <plan.json> <lock-dir>');
  const { readFile } = await import('node:fs/promises');
  const plan = JSON.parse(await readFile(planFile, 'utf8')) as Plan;
  const bus = new EventBus();
  // Where the memory is (RESTORE_CHILD_SAMPLE_MS, default 100): the peak of each part of process.memoryUsage().
  const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  const sample = (): void => {
    const m = process.memoryUsage();
    for (const k of Object.keys(peak) as (keyof typeof peak)[]) peak[k] = Math.max(peak[k], m[k]);
  };
  const sampler = setInterval(sample, Number(process.env['RESTORE_CHILD_SAMPLE_MS'] ?? 100));
  sampler.unref();
  sample();
  const baseKiB = process.resourceUsage().maxRSS;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const summary = await runPlan(plan, {
    bus,
    redact: createRedactor(),
    renderer: 'silent',
    runId: 'bench',
    kind: 'restore',
    lockDir,
    env: process.env,
  });
  const ms = performance.now() - started;
  clearInterval(sampler);
  sample();
  const peakMiB = Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v / 2 ** 20)]));
  const cpu = process.cpuUsage(cpu0);
  // The tool's own cost: CPU time of this Node process (not of psql/pg_restore, its children).
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const step = bus.history.find((e) => e.type === 'step-finished' && e.stepId === 'restore');
  process.stdout.write(
    `${JSON.stringify({ ms, cpuMs, stepMs: step && step.type === 'step-finished' ? step.durationMs : undefined, maxRssKiB: process.resourceUsage().maxRSS, baseRssKiB: baseKiB, peakMiB, outcome: summary.outcome, error: summary.error, events: bus.history.length })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
