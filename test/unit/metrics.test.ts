import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BackupComponent, BackupSet } from '../../source/catalog/types.js';
import type { HistoryRun } from '../../source/evidence/history.js';
import { assessBackupHealth } from '../../source/health/backups.js';
import { collectMetrics, isSuccess } from '../../source/metrics/collect.js';
import { renderExposition } from '../../source/metrics/exposition.js';
import { pushgatewayUrl, textfileName, writeTextfile } from '../../source/metrics/export.js';
import { recipeSchema } from '../../source/recipe/schema.js';

const NOW = new Date('2026-06-01T12:00:00Z');

function comp(kind: BackupComponent['kind'], size: number, extra: Partial<BackupComponent> = {}): BackupComponent {
  const format = kind === 'postgres' ? 'pg-custom' : kind === 'redis' ? 'redis-rdb' : 'prometheus-tar-gz';
  return { kind, format, path: `/b/${kind}`, size, checksum: 'present', ...extra };
}

function set(id: string, time: string, components: BackupComponent[]): BackupSet {
  return {
    id,
    layout: 'metachat',
    root: '/b',
    location: '/b',
    time,
    timeSource: 'name',
    components,
    metadata: {},
    warnings: [],
    totalSize: components.reduce((s, c) => s + c.size, 0),
  };
}

function run(over: Partial<HistoryRun>): HistoryRun {
  return {
    runId: over.runId ?? `r-${Math.random()}`,
    dir: '/e/x',
    kind: 'drill',
    recipe: 'app',
    operator: 'root',
    startedAt: '2026-05-01T00:00:00.000Z',
    finishedAt: '2026-05-01T00:10:00.000Z',
    backup: { id: 'b', time: '2026-04-30T00:00:00.000Z' },
    outcome: 'restored',
    finished: true,
    exitCode: 0,
    rtoMs: 600_000,
    rpoMs: 86_400_000,
    objectives: { rtoMinutes: 15, rpoMinutes: 1440 },
    rtoMet: true,
    rpoMet: true,
    evidence: 'sealed',
    indexed: true,
    sealHash: 'x',
    ...over,
  };
}

const recipe = recipeSchema.parse({
  name: 'app',
  backups: { root: '/b', layout: 'metachat', database: 'app' },
  components: { postgres: { database: 'app' } },
  objectives: { rtoMinutes: 15, rpoMinutes: 1440 },
  drill: { intervalDays: 7 },
});

describe('backup health', () => {
  it('is ok for fresh, steady, checksummed sets', () => {
    const sets = [
      set('3', '2026-06-01T06:00:00Z', [comp('postgres', 1000)]),
      set('2', '2026-05-31T06:00:00Z', [comp('postgres', 990)]),
      set('1', '2026-05-30T06:00:00Z', [comp('postgres', 980)]),
    ];
    const h = assessBackupHealth(sets, { rpoMinutes: 1440 }, NOW);
    expect(h.problems).toEqual([]);
    expect(h.ok).toBe(true);
    expect(h.newest).toEqual([{ component: 'postgres', setId: '3', time: '2026-06-01T06:00:00Z', size: 1000, medianOfPrevious: 985 }]);
  });

  it('flags a dump far smaller than the median of the recent ones (GitLab 2017), per set in list', () => {
    const sets = [
      set('4', '2026-06-01T06:00:00Z', [comp('postgres', 20), comp('redis', 500)]),
      set('3', '2026-05-31T06:00:00Z', [comp('postgres', 1000), comp('redis', 510)]),
      set('2', '2026-05-30T06:00:00Z', [comp('postgres', 1100), comp('redis', 490)]),
      set('1', '2026-05-29T06:00:00Z', [comp('postgres', 900), comp('redis', 500)]),
    ];
    const h = assessBackupHealth(sets, {}, NOW);
    expect(h.problems.map((p) => `${p.check}:${p.component}`)).toEqual(['size_drop:postgres']);
    expect(h.problems[0]?.message).toMatch(/4: postgres is 20 B, 98% smaller than the median of the 3 sets before it/);
    expect(h.bySet).toEqual({ '4': ['size_drop'] });
    // one set before it is not enough to judge
    expect(assessBackupHealth(sets.slice(2), {}, NOW).problems).toEqual([]);
  });

  it('flags a stale newest set against the RPO, skewed component times, and missing checksums', () => {
    const sets = [
      set('2', '2026-05-29T00:00:00Z', [
        comp('postgres', 1000, { time: '2026-05-29T00:00:00Z', checksum: 'absent' }),
        comp('redis', 10, { time: '2026-05-29T03:00:00Z' }),
      ]),
    ];
    const h = assessBackupHealth(sets, { rpoMinutes: 1440, maxSkewMinutes: 60 }, NOW);
    expect(h.problems.map((p) => p.check)).toEqual(['stale', 'time_skew', 'checksum_missing']);
    expect(h.problems[0]?.message).toMatch(/the newest set 2 is 3d 12h old, older than the RPO target of 24h 0m/);
    expect(h.problems[2]?.message).toMatch(/no checksum recorded for postgres/);
    expect(assessBackupHealth(sets, { maxSkewMinutes: 240 }, NOW).problems.map((p) => p.check)).toEqual(['checksum_missing']);
  });

  it('no sets at all is a problem of its own', () => {
    expect(assessBackupHealth([], {}, NOW).problems.map((p) => p.check)).toEqual(['no_backups']);
  });
});

describe('exposition format', () => {
  it('escapes label values and leaves out families without samples', () => {
    const text = renderExposition([
      { name: 'x_total', help: 'a\nb', type: 'counter', samples: [{ labels: { b: 'q"\\\n', a: '1' }, value: 2 }] },
      { name: 'y', help: 'none', type: 'gauge', samples: [] },
    ]);
    expect(text).toBe('# HELP x_total a\\nb\n# TYPE x_total counter\nx_total{a="1",b="q\\"\\\\\\n"} 2\n');
  });

  it('refuses invalid names and duplicate series', () => {
    expect(() => renderExposition([{ name: 'bad-name', help: '', type: 'gauge', samples: [{ labels: {}, value: 1 }] }])).toThrow(
      /invalid metric name/,
    );
    expect(() =>
      renderExposition([
        {
          name: 'a',
          help: '',
          type: 'gauge',
          samples: [
            { labels: { x: '1' }, value: 1 },
            { labels: { x: '1' }, value: 2 },
          ],
        },
      ]),
    ).toThrow(/twice/);
  });
});

describe('metrics from history and catalog', () => {
  const sets = [
    set('2', '2026-06-01T06:00:00Z', [comp('postgres', 20)]),
    set('1', '2026-05-31T06:00:00Z', [comp('postgres', 1000)]),
    set('0', '2026-05-30T06:00:00Z', [comp('postgres', 1000)]),
  ];

  it('last run by kind and outcome, last success, RTO/RPO vs target, verify result, newest backup and health', () => {
    const runs = [
      run({ runId: 'old-ok', startedAt: '2026-05-01T00:00:00.000Z', finishedAt: '2026-05-01T00:10:00.000Z', rtoMs: 600_000 }),
      run({
        runId: 'new-bad',
        startedAt: '2026-05-20T00:00:00.000Z',
        finishedAt: '2026-05-20T00:01:00.000Z',
        outcome: 'refused',
        exitCode: 3,
        rtoMs: null,
        rpoMs: 3_600_000,
      }),
      run({
        runId: 'v',
        kind: 'verify',
        startedAt: '2026-05-10T00:00:00.000Z',
        finishedAt: '2026-05-10T00:00:30.000Z',
        outcome: 'verified',
        rtoMs: null,
      }),
      run({ runId: 'other', recipe: 'other', outcome: 'failed' }),
    ];
    const health = assessBackupHealth(sets, { rpoMinutes: 1440 }, NOW);
    const text = renderExposition(collectMetrics({ recipe, runs, catalog: { sets }, health, now: NOW }));
    const s = (t: string): number => Date.parse(t) / 1000;
    expect(text).toContain(
      `restore_assistant_last_run_timestamp_seconds{kind="drill",outcome="refused",recipe="app"} ${s('2026-05-20T00:01:00Z')}\n`,
    );
    expect(text).toContain(
      `restore_assistant_last_run_timestamp_seconds{kind="drill",outcome="restored",recipe="app"} ${s('2026-05-01T00:10:00Z')}\n`,
    );
    expect(text).toContain('restore_assistant_last_run_success{kind="drill",recipe="app"} 0\n');
    expect(text).toContain('restore_assistant_last_run_exit_code{kind="drill",recipe="app"} 3\n');
    expect(text).toContain(`restore_assistant_last_success_timestamp_seconds{kind="drill",recipe="app"} ${s('2026-05-01T00:10:00Z')}\n`);
    expect(text).toContain('restore_assistant_last_run_success{kind="verify",recipe="app"} 1\n');
    expect(text).toContain('restore_assistant_drill_interval_seconds{recipe="app"} 604800\n');
    expect(text).toContain('restore_assistant_rto_seconds{kind="drill",recipe="app"} 600\n');
    expect(text).toContain('restore_assistant_rto_target_seconds{recipe="app"} 900\n');
    expect(text).toContain('restore_assistant_rpo_seconds{kind="drill",recipe="app"} 3600\n');
    expect(text).toContain('restore_assistant_rpo_target_seconds{recipe="app"} 86400\n');
    // the newest verification is the drill refused with exit 3 (its set was rejected)
    expect(text).toContain('restore_assistant_verify_success{recipe="app"} 0\n');
    expect(text).toContain(
      `restore_assistant_backup_newest_timestamp_seconds{component="postgres",recipe="app"} ${s('2026-06-01T06:00:00Z')}\n`,
    );
    expect(text).toContain('restore_assistant_backup_newest_age_seconds{component="postgres",recipe="app"} 21600\n');
    expect(text).toContain('restore_assistant_backup_newest_size_bytes{component="postgres",recipe="app"} 20\n');
    expect(text).toContain('restore_assistant_backup_previous_median_size_bytes{component="postgres",recipe="app"} 1000\n');
    expect(text).toContain('restore_assistant_backup_health_problem{check="size_drop",recipe="app"} 1\n');
    expect(text).toContain('restore_assistant_backup_health_problem{check="stale",recipe="app"} 0\n');
    expect(text).toContain('restore_assistant_backup_catalog_ok{recipe="app"} 1\n');
    expect(text).not.toContain('other');
  });

  it('no successful drill: no last-success series (the overdue alert fires on its absence); tampered evidence never counts', () => {
    const runs = [
      run({ runId: 't', evidence: 'tampered' }),
      run({ runId: 'u', finished: false, outcome: 'interrupted', finishedAt: null, exitCode: null }),
    ];
    expect(isSuccess(runs[0]!)).toBe(false);
    const text = renderExposition(collectMetrics({ recipe, runs, catalog: { error: 'ENOENT' }, now: NOW }));
    expect(text).not.toContain('restore_assistant_last_success_timestamp_seconds');
    expect(text).toContain('restore_assistant_last_run_timestamp_seconds{kind="drill",outcome="interrupted",recipe="app"}');
    expect(text).toContain('restore_assistant_backup_catalog_ok{recipe="app"} 0\n');
    expect(text).not.toContain('restore_assistant_backup_newest');
  });
});

describe('textfile and Pushgateway targets', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ra-metrics-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes <dir>/restore_assistant_<recipe>.prom atomically, mode 0644, leaving no temp file', () => {
    const target = writeTextfile(dir, 'app', 'a 1\n');
    expect(target).toBe(path.join(dir, textfileName('app')));
    expect(readFileSync(target, 'utf8')).toBe('a 1\n');
    expect(statSync(target).mode & 0o777).toBe(0o644);
    writeTextfile(dir, 'app', 'a 2\n');
    expect(readdirSync(dir)).toEqual(['restore_assistant_app.prom']);
    expect(readFileSync(target, 'utf8')).toBe('a 2\n');
  });

  it('replaces a symlink planted at the target instead of writing through it', () => {
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, path.join(dir, textfileName('app')));
    writeTextfile(dir, 'app', 'a 1\n');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(path.join(dir, textfileName('app'))).isSymbolicLink()).toBe(false);
  });

  it('refuses a directory that is a symlink or missing', () => {
    const real = path.join(dir, 'real');
    const link = path.join(dir, 'link');
    rmSync(real, { force: true });
    symlinkSync(dir, link);
    expect(() => writeTextfile(link, 'app', 'a 1\n')).toThrow(/is a symlink/);
    expect(() => writeTextfile(path.join(dir, 'nope'), 'app', 'a 1\n')).toThrow(/is not there/);
  });

  it('builds the Pushgateway grouping key, base64 for values a path cannot carry', () => {
    expect(pushgatewayUrl('http://pg:9091/', 'restore_assistant', 'db-1', 'app')).toBe(
      'http://pg:9091/metrics/job/restore_assistant/instance/db-1/recipe/app',
    );
    expect(pushgatewayUrl('http://pg:9091', 'j', 'a/b', 'app')).toBe(
      `http://pg:9091/metrics/job/j/instance@base64/${Buffer.from('a/b').toString('base64url')}/recipe/app`,
    );
  });
});
