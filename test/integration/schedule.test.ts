import { execFile } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { EventBus } from '../../source/engine/events.js';
import { createRedactor } from '../../source/exec/redact.js';
import { attachEvidence, newRunId } from '../../source/evidence/writer.js';
import { loadRecipeFile } from '../../source/recipe/load.js';
import { metachatTimestamp } from '../../source/sandbox/backups.js';
import { runCli } from '../support/cli.js';

/**
 * schedule: the systemd units pass `systemd-analyze verify` (no warnings either), secrets stay out
 * of them, the EnvironmentFile is 0600; the Kubernetes manifest validates against the Kubernetes
 * API schema (kubernetes-models, offline) and is sized from the last drill's evidence.
 */

const run = promisify(execFile);
const SECRET = 'pw-Sched-7f3e1c';

async function analyze(files: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run('/usr/bin/systemd-analyze', ['verify', '--man=no', ...files], { cwd: path.dirname(files[0] ?? '.') });
    return { code: 0, out: `${r.stdout}${r.stderr}` };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('schedule', () => {
  let base: string;
  let recipeFile: string;
  let evidenceDir: string;

  beforeAll(async () => {
    // A recipe in a directory whose name systemd would expand or split if written raw.
    base = mkdtempSync(path.join(tmpdir(), 'ra-schedule-'));
    const odd = path.join(base, 'my recipes $HOME %n');
    mkdirSync(odd);
    evidenceDir = path.join(base, 'evidence');
    const root = path.join(base, 'backups');
    mkdirSync(path.join(root, 'postgres'), { recursive: true });
    writeFileSync(path.join(root, 'postgres', `app_${metachatTimestamp(new Date(Date.now() - 3_600_000))}.dump`), Buffer.alloc(4096, 1));
    recipeFile = path.join(odd, 'sched-a.yaml');
    writeFileSync(
      recipeFile,
      stringify({
        name: 'sched-a',
        backups: { root, layout: 'metachat', database: 'app' },
        components: { postgres: { database: 'app', passwordEnv: 'PGPASSWORD_APP' } },
        drill: { intervalDays: 7 },
        evidence: { dir: evidenceDir },
        metrics: { textfileDir: base, pushgateway: { url: 'http://127.0.0.1:9/' } },
      }),
    );
    // The last drill took two hours (recorded by the evidence writer, clock moved on while it "ran").
    const loaded = await loadRecipeFile(recipeFile);
    const start = new Date(Date.now() - 2 * 86_400_000);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(start);
      const bus = new EventBus();
      const runId = newRunId('drill', 'sched-a', start);
      const h = attachEvidence(bus, {
        evidenceDir,
        runId,
        kind: 'drill',
        recipe: { name: 'sched-a', file: loaded.file, digest: loaded.digest },
        redact: createRedactor([]),
        drillIntervalDays: 7,
      });
      bus.emit({
        type: 'run-started',
        runId,
        kind: 'drill',
        operator: 'ci',
        host: 'h',
        toolVersion: 't',
        recipe: { name: 'sched-a', file: loaded.file, digest: loaded.digest },
        backup: { id: 'gone', time: start.toISOString(), location: root },
        confirmedAt: start.toISOString(),
      });
      vi.setSystemTime(new Date(start.getTime() + 2 * 3_600_000));
      bus.emit({
        type: 'run-finished',
        outcome: 'restored',
        exitCode: 0,
        rtoMs: 7_000_000,
        rpoMs: 1000,
        safetyCopies: [],
        state: [],
        nextSteps: [],
      });
      await h.close();
    } finally {
      vi.useRealTimers();
    }
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('--systemd --install writes a service and a timer that systemd-analyze verify accepts without a warning', async () => {
    const unitDir = path.join(base, 'units');
    const secrets = path.join(base, 'etc', 'sched-a.env');
    const r = await runCli(
      ['schedule', '--recipe', recipeFile, '--systemd', '--every', '7d', '--install', '--unit-dir', unitDir, '--secrets-file', secrets],
      { env: { PGPASSWORD_APP: SECRET } },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const service = path.join(unitDir, 'restore-assistant-drill-sched-a.service');
    const timer = path.join(unitDir, 'restore-assistant-drill-sched-a.timer');
    const v = await analyze([service, timer]);
    expect(v.out).toBe('');
    expect(v.code).toBe(0);

    const s = readFileSync(service, 'utf8');
    const t = readFileSync(timer, 'utf8');
    expect(s).toMatch(/^Type=oneshot$/m);
    // the odd path is quoted, with $ and % escaped so systemd expands nothing
    expect(s).toContain(
      '"' +
        path
          .dirname(recipeFile)
          .replace('$HOME', () => '$$HOME')
          .replace('%n', () => '%%n') +
        '/sched-a.yaml"',
    );
    expect(s).toMatch(/^SuccessExitStatus=130$/m);
    expect(s).toContain(`EnvironmentFile=-${secrets}`);
    expect(s).toMatch(new RegExp(`^ReadWritePaths=${evidenceDir} ${base}$`, 'm'));
    expect(s).toMatch(/^ProtectSystem=strict$/m);
    // four times the last drill's two hours
    expect(s).toMatch(/^TimeoutStartSec=28800$/m);
    expect(t).toMatch(/^OnCalendar=Mon \*-\*-\* 04:30:00$/m);
    expect(t).toMatch(/^RandomizedDelaySec=\d+$/m);
    expect(t).toMatch(/^Persistent=true$/m);
    for (const text of [s, t, r.stdout]) expect(text).not.toContain(SECRET);

    expect(statSync(secrets).mode & 0o777).toBe(0o600);
    expect(readFileSync(secrets, 'utf8')).toMatch(/^#PGPASSWORD_APP=$/m);
    expect(statSync(service).mode & 0o777).toBe(0o644);
  });

  it('systemd-analyze does flag a broken unit (the check above can fail)', async () => {
    const dir = path.join(base, 'units');
    const broken = path.join(dir, 'broken-check.service');
    writeFileSync(
      broken,
      readFileSync(path.join(dir, 'restore-assistant-drill-sched-a.service'), 'utf8').replace(
        'Type=oneshot',
        'Type=oneshot\nRandomizedDelaySecs=1',
      ),
    );
    const v = await analyze([broken]);
    expect(v.out).toMatch(/Unknown key 'RandomizedDelaySecs'/);
    rmSync(broken);
  });

  it('an existing EnvironmentFile readable by others is made 0600; a symlink there is refused', async () => {
    const unitDir = path.join(base, 'units2');
    const secrets = path.join(base, 'etc2', 'sched-a.env');
    mkdirSync(path.dirname(secrets), { recursive: true });
    writeFileSync(secrets, `PGPASSWORD_APP=${SECRET}\n`);
    chmodSync(secrets, 0o644);
    const r = await runCli([
      'schedule',
      '--recipe',
      recipeFile,
      '--systemd',
      '--install',
      '--unit-dir',
      unitDir,
      '--secrets-file',
      secrets,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/was 644, fixed/);
    expect(statSync(secrets).mode & 0o777).toBe(0o600);
    expect(readFileSync(secrets, 'utf8')).toBe(`PGPASSWORD_APP=${SECRET}\n`);

    const link = path.join(base, 'etc2', 'link.env');
    symlinkSync('/etc/passwd', link);
    const bad = await runCli(['schedule', '--recipe', recipeFile, '--systemd', '--install', '--unit-dir', unitDir, '--secrets-file', link]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/is not a regular file/);
    expect(lstatSync('/etc/passwd').mode & 0o777).toBe(0o644);
  });

  it('--every refuses a period the schedulers cannot run exactly', async () => {
    const r = await runCli(['schedule', '--recipe', recipeFile, '--systemd', '--every', '5d']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--every "5d" is not a period/);
  });

  it('--kubernetes prints a ConfigMap and a CronJob that validate against the Kubernetes schema, sized from the last drill', async () => {
    const r = await runCli(
      [
        'schedule',
        '--recipe',
        recipeFile,
        '--kubernetes',
        '--every',
        '30d',
        '--image',
        'registry.example/restore-assistant:1',
        '--namespace',
        'dr',
      ],
      { env: { PGPASSWORD_APP: SECRET } },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(SECRET);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, unknown>);
    expect(docs.map((d) => d['kind'])).toEqual(['ConfigMap', 'CronJob']);
    const cm = new ConfigMap(docs[0] as ConstructorParameters<typeof ConfigMap>[0]);
    const cj = new CronJob(docs[1] as ConstructorParameters<typeof CronJob>[0]);
    expect(() => cm.validate()).not.toThrow();
    expect(() => cj.validate()).not.toThrow();
    expect(cm.data?.['recipe.yaml']).toBe(readFileSync(recipeFile, 'utf8'));
    const spec = cj.spec!;
    expect(spec.concurrencyPolicy).toBe('Forbid');
    expect(spec.schedule).toBe('30 4 1 * *');
    const job = spec.jobTemplate.spec!;
    expect(job.backoffLimit).toBe(0);
    expect(job.activeDeadlineSeconds).toBe(28_800);
    const c = job.template.spec!.containers[0]!;
    expect(c.env?.find((e) => e.name === 'PGPASSWORD_APP')?.valueFrom?.secretKeyRef).toEqual({
      name: 'restore-assistant-sched-a',
      key: 'PGPASSWORD_APP',
    });
    expect(c.resources?.requests).toMatchObject({ cpu: '1', memory: '2048Mi', 'ephemeral-storage': '2048Mi' });
    expect(c.args).toEqual(['drill', '--recipe', '/etc/restore-assistant/recipe.yaml', '--backup', 'latest', '--yes']);
    expect(cj.metadata?.namespace).toBe('dr');
  });

  it('the schema check does reject a wrong CronJob (the validation above can fail)', async () => {
    const r = await runCli(['schedule', '--recipe', recipeFile, '--kubernetes', '--image', 'x']);
    const doc = parseAllDocuments(r.stdout)[1]!.toJS() as { spec: Record<string, unknown> };
    doc.spec['concurrencyPolicy'] = 'Sometimes';
    expect(() => new CronJob(doc as unknown as ConstructorParameters<typeof CronJob>[0]).validate()).toThrow(/concurrencyPolicy/);
  });
});
