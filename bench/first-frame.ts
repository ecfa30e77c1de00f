import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { spawn } from 'node-pty';
import { writeBenchSection } from './benchmarks-doc.js';
import { median } from './common.js';
import { benchCli, machine, processCpuMs, repo } from './build-cli.js';

/**
 * The guide's first frame (issue 14: under 0.5 s after launch): the built CLI started in a real
 * pseudo-terminal (node-pty, 100x30, TERM xterm-256color), timed from spawn to the first output
 * that holds visible text once ANSI sequences are stripped, with the CPU time the process had used
 * by then (/proc/<pid>/stat). Two launches: `guide` (the recipe screen) and
 * `guide --recipe recipes/story-portal.yaml` (the recipe is parsed and the journal read first).
 * Runs interleave; median of FIRST_FRAME_RUNS (default 7). With BENCH_BASELINE_CLI=<another
 * build's bin.js> the same launches of that build interleave too (before/after).
 *
 *   node --import tsx bench/first-frame.ts     (BENCH_CLI to reuse a build)
 */

interface Frame {
  wallMs: number;
  cpuMs: number;
  text: string;
}

async function firstFrame(cli: string, args: string[], cwd: string, env: Record<string, string>): Promise<Frame> {
  const t0 = performance.now();
  const pty = spawn(process.execPath, [cli, ...args], { name: 'xterm-256color', cols: 100, rows: 30, cwd, env });
  try {
    return await new Promise<Frame>((resolve, reject) => {
      let raw = '';
      let done = false;
      const timer = setTimeout(() => reject(new Error(`no frame after 60 s; the terminal showed: ${raw.slice(-500)}`)), 60_000);
      pty.onData((d) => {
        raw += d;
        if (done) return;
        const text = stripVTControlCharacters(raw).trim();
        if (text === '') return;
        done = true;
        const wallMs = performance.now() - t0;
        clearTimeout(timer);
        void processCpuMs(pty.pid).then((cpuMs) => resolve({ wallMs, cpuMs: cpuMs ?? Number.NaN, text }));
      });
      pty.onExit(({ exitCode }) => {
        if (!done) {
          clearTimeout(timer);
          reject(new Error(`the guide exited (${exitCode}) before drawing anything: ${raw.slice(-500)}`));
        }
      });
    });
  } finally {
    await new Promise((r) => setTimeout(r, 100));
    try {
      pty.kill();
    } catch {
      // already gone
    }
  }
}

export async function runFirstFrameBench(): Promise<void> {
  const runs = Number(process.env['FIRST_FRAME_RUNS'] ?? 7);
  const base = await mkdtemp(path.join(os.tmpdir(), 'ra-bench-frame-'));
  try {
    const cli = await benchCli(path.join(base, 'cli'));
    const baseline = process.env['BENCH_BASELINE_CLI'] ? path.resolve(process.env['BENCH_BASELINE_CLI']) : undefined;
    const cwd = path.join(base, 'cwd');
    await mkdir(cwd);
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? base,
      TERM: 'xterm-256color',
      RESTORE_ASSISTANT_STATE_DIR: path.join(base, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: path.join(base, 'locks'),
      RESTORE_ASSISTANT_RECIPES: path.join(repo, 'recipes'),
    };
    const launches: Array<{ label: string; args: string[] }> = [
      { label: '`guide`', args: ['guide'] },
      { label: '`guide --recipe story-portal.yaml`', args: ['guide', '--recipe', path.join(repo, 'recipes', 'story-portal.yaml')] },
    ];
    const builds = [{ name: 'this build', cli }, ...(baseline ? [{ name: 'baseline', cli: baseline }] : [])];
    const results = new Map<string, Frame[]>();
    const load0 = os.loadavg()[0] ?? 0;
    for (const b of builds) for (const l of launches) await firstFrame(b.cli, l.args, cwd, env); // warm-up
    for (let i = 0; i < runs; i++) {
      for (const b of builds)
        for (const l of launches) {
          const key = `${b.name}|${l.label}`;
          const f = await firstFrame(b.cli, l.args, cwd, env);
          results.set(key, [...(results.get(key) ?? []), f]);
        }
      process.stderr.write(`first-frame bench: run ${i + 1}/${runs}\n`);
    }
    const load1 = os.loadavg()[0] ?? 0;
    const ms = (v: number): string => (Number.isFinite(v) ? `${Math.round(v)} ms` : 'n/a');
    const rows: string[] = [];
    for (const b of builds)
      for (const l of launches) {
        const fs = results.get(`${b.name}|${l.label}`) ?? [];
        rows.push(
          `| ${l.label}${builds.length > 1 ? ` (${b.name})` : ''} | ${ms(median(fs.map((f) => f.wallMs)))} | ${ms(median(fs.map((f) => f.cpuMs)))} | ${ms(Math.min(...fs.map((f) => f.wallMs)))} |`,
        );
      }
    const main = results.get(`this build|${launches[0]!.label}`) ?? [];
    const wall = median(main.map((f) => f.wallMs));
    const firstLine = (main[0]?.text ?? '').split('\n')[0]?.trim() ?? '';
    const all = [...results.entries()]
      .map(([k, fs]) => `${k.replace('|', ' ')}: ${fs.map((f) => Math.round(f.wallMs)).join(', ')}`)
      .join('; ');
    const section = `## The guide's first frame

\`npm run bench -- first-frame\` (bench/first-frame.ts), ${new Date().toISOString().slice(0, 10)}, on ${machine()}. Load average (1 min) ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end.

The built CLI (\`node dist/bin.js\`) started in a pseudo-terminal (node-pty, 100x30), timed from
spawn to the first output with visible text (ANSI stripped), e.g. "${firstLine}"; CPU is the
process's user + system time at that moment (/proc). Runs interleave; median of ${runs}, after one warm-up each.

| launch | wall (median) | CPU by the first frame (median) | wall (fastest) |
| --- | ---: | ---: | ---: |
${rows.join('\n')}

Target: under 500 ms: ${wall < 500 ? `met (${ms(wall)})` : `NOT met on the wall clock (${ms(wall)}; CPU ${ms(median(main.map((f) => f.cpuMs)))})`}.
What the first frame still loads: Node itself, commander, Ink (with React, react-reconciler, yoga-layout's
WebAssembly and es-toolkit/compat, which Ink imports whole) and the guide's screens. The recipe parser,
the catalog, evidence, the session, the engine, listr2, the verifiers and the AWS SDK load after it,
when a screen first asks (session/guide-deps.ts).

Runs (wall ms): ${all}.
`;
    process.stdout.write(`${section}\n`);
    await writeBenchSection("The guide's first frame", section);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runFirstFrameBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
