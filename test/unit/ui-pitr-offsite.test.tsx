import { describe, expect, it } from 'vitest';
import type { BackupSet } from '../../source/catalog/types.js';
import { RestoreAssistantError } from '../../source/errors.js';
import { ExitCode } from '../../source/exit-codes.js';
import type { PitrTarget } from '../../source/pitr/target.js';
import type { Plan } from '../../source/plan/types.js';
import { checkTypedTarget, encryptionLines, keyLabel, windowLine } from '../../source/ui/pitr-view.js';
import type { PitrBaseView } from '../../source/ui/types.js';
import { initialState } from '../../source/ui/wizard.js';
import { keys } from '../support/keys.js';
import { fakeDeps, planFixture, recipeFixture, reportFixture, setFixture, summaryFixture } from '../support/ui-fixtures.js';
import { renderGuide } from '../support/ui-render.js';

/**
 * The guide's point-in-time restore (issue 16) and off-site sets (issue 15), screen by screen with
 * fake deps (pure logic): the window on the backup list, the target screen (strict parse, the
 * window enforced), the cluster plan and confirmation naming the data directory and the time, the
 * recovery's progress, the summary's target and replayed WAL; off-site sets with where they live,
 * the staging shown before the plan, a rejection while staging with its reason, the key named.
 */

const WINDOW = { from: '2026-12-01T03:00:05.000Z', to: '2026-12-01T03:10:00.500Z', lastSegment: '00000001000000000000000A' };
const base = (extra: Partial<PitrBaseView> = {}): PitrBaseView => ({
  startLsn: '0/2000028',
  endLsn: '0/2000100',
  startTime: '2026-12-01T03:00:00.000Z',
  window: WINDOW,
  problems: [],
  ...extra,
});

function physicalRecipe(): ReturnType<typeof recipeFixture> {
  return recipeFixture({
    name: 'pitr-shop',
    backups: { root: '/backups/pg', layout: 'physical', walArchive: '/backups/wal' },
    components: {
      postgres: {
        database: 'postgres',
        port: 5432,
        cluster: { dataDir: '/var/lib/postgresql/15/main', osUser: 'postgres', service: { stop: ['svc', 'stop', 'pg'], start: ['svc', 'start', 'pg'] } },
      },
    },
  });
}

function pitrPlan(set: BackupSet, recipe: ReturnType<typeof recipeFixture>, target: PitrTarget): Plan {
  const plan = planFixture({ set, recipe, mode: 'restore' });
  plan.targets = { postgres: 'PostgreSQL cluster /var/lib/postgresql/15/main (127.0.0.1:5432), to latest' };
  plan.backup.time = target.kind === 'time' ? target.time : WINDOW.to;
  plan.steps = [
    { ...plan.steps[0]!, id: 'postgres:stop', title: 'Stop PostgreSQL' },
    {
      ...plan.steps[2]!,
      id: 'postgres:extract',
      title: `Extract base backup ${set.id}`,
      destroys: "the cluster's current state in /var/lib/postgresql/15/main (kept at /var/lib/postgresql/15/main.pre-pitr-1)",
      safetyCopy: undefined,
    },
    { ...plan.steps[0]!, id: 'postgres:follow-recovery', title: 'Follow recovery to the target' },
  ];
  return plan;
}

function pitrDeps(bases: Record<string, PitrBaseView>) {
  const control = fakeDeps();
  const recipe = physicalRecipe();
  const sets = Object.keys(bases).map((id) => ({ ...setFixture(id, bases[id]!.startTime), layout: 'physical' as const }));
  const targets: PitrTarget[] = [];
  control.deps.listRecipes = async () => [{ name: recipe.recipe.name, file: recipe.file, loaded: recipe }];
  control.deps.listSets = async () => ({ sets, warnings: [], pitr: bases });
  control.deps.preparePitr = async (_r, set, target, o) => {
    targets.push(target);
    o.onProgress({ check: 'pg_verifybackup against backup_manifest, WAL 000000010000000000000002 .. 00000001000000000000000A' });
    const plan = pitrPlan(set, recipe, target);
    control.builtPlans.push(plan);
    return { plan, report: reportFixture(set, true), target, dataDir: '/var/lib/postgresql/15/main', server: '127.0.0.1:5432', segments: 9, walBytes: 9 * 16 * 1024 * 1024 };
  };
  return { control, recipe, targets };
}

describe('guide: point-in-time restore (physical layout)', () => {
  it('window on the list; a typed time parsed strictly, refused outside the window; plan, confirmation, run and summary name the cluster and the time', async () => {
    const { control, recipe, targets } = pitrDeps({ '2026-12-01_03-00-00': base() });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipe }) });
    await g.waitFor('What do you want to do with pitr-shop?');
    const list = await g.press(keys.enter, 'Restorable window (UTC)');
    expect(list).toContain('2026-12-01 03:00:05 .. 03:10:00');
    expect(list.replace(/\s+/g, ' ')).toContain('restorable from 2026-12-01 03:00:05 UTC to 2026-12-01 03:10:00.500 UTC; changes after 2026-12-01 03:10:00.500 UTC lost');
    // A base backup's integrity is its manifest (pg_verifybackup), not a sidecar: no "no checksum" health line.
    expect(list).not.toContain('Health:');
    const t = await g.press(keys.enter, 'to which point in time?');
    expect(t).toContain('› Latest: to the last archived commit, 2026-12-01 03:10:00.500 UTC');
    expect(t).toContain('Immediately consistent: the end of the base, 2026-12-01 03:00:05 UTC');
    await g.press(keys.down, '› Immediately');
    await g.press(keys.down, '› A time inside the window');
    await g.press(keys.enter, 'Time with its zone');
    // No zone: refused (at 3 a.m. the host's zone, the operator's and the server's may all differ).
    let f = await g.type('2026-12-01 03:05:00', 'is not a time with its zone');
    expect(f).toContain('a time without a zone is refused');
    f = await g.type('2026-12-01 03:11:00Z', 'is after the last archived commit');
    expect(f.replace(/\s+/g, ' ')).toContain('the window is 2026-12-01 03:00:05 UTC .. 2026-12-01 03:10:00.500 UTC');
    f = await g.type('2026-12-01 02:59:00Z', 'is before the end of this base backup');
    expect(targets).toEqual([]);
    // Inside the window, typed in another zone: read back in UTC with the zone typed.
    const plan = await g.type('2026-12-01 04:05:30+01:00', 'IN-PLACE point-in-time restore of pitr-shop');
    expect(targets).toEqual([{ kind: 'time', time: '2026-12-01T03:05:30.000Z' }]);
    const flatPlan = plan.replace(/\s+/g, ' ');
    expect(flatPlan).toContain('Cluster: /var/lib/postgresql/15/main (127.0.0.1:5432): replaced as a whole');
    expect(flatPlan).toContain('Target: 2026-12-01 03:05:30 UTC (typed as 2026-12-01 04:05:30+01:00) · 9 WAL segments (144 MiB) verified');
    // The extraction replaces a directory the step before moved aside: a copy is kept.
    expect(plan).toMatch(/Extract base backup 2026-12-01_03-00-00\s+destroys, copy kept/);
    expect(plan).not.toContain('u if unhealthy');
    const confirm = await g.press(keys.enter, 'Type postgres');
    const flatConfirm = confirm.replace(/\s+/g, ' ');
    expect(flatConfirm).toContain('the WHOLE cluster /var/lib/postgresql/15/main (127.0.0.1:5432) is replaced');
    expect(flatConfirm).toContain('Type postgres to replace the cluster /var/lib/postgresql/15/main (127.0.0.1:5432) with its state at 2026-12-01 03:05:30 UTC');
    await g.type('postgres', 'Confirmed at');
    control.emit({ type: 'step-started', stepId: 'postgres:follow-recovery', title: 'Follow recovery to the target' });
    control.emit({ type: 'progress', stepId: 'postgres:follow-recovery', unit: 'bytes', done: 48 * 1024 * 1024, total: 96 * 1024 * 1024, etaMs: 30_000 });
    control.emit({ type: 'command-output', stepId: 'postgres:follow-recovery', commandId: 'c', stream: 'stdout', line: 'replayed 0/5000000 of 0/8000000, last commit 2026-12-01 03:04:10+00, about 30s left' });
    const run = await g.waitFor('replayed 0/5000000 of 0/8000000');
    expect(run).toContain('48 MiB of 96 MiB  50%  ETA 30 s');
    control.emit({
      type: 'step-finished',
      stepId: 'postgres:follow-recovery',
      title: 'Recovery followed',
      durationMs: 61_000,
      detail: 'out of recovery after 61s; replayed to 0/8000000; last replayed commit 2026-12-01 03:05:29.8+00',
    });
    control.finishRun({ summary: summaryFixture({ rpoMs: 5 * 60_000 }), evidenceDir: '/state/runs/pitr-1' });
    const s = await g.waitFor('p print');
    const flat = s.replace(/\s+/g, ' ');
    expect(flat).toContain('Target: 2026-12-01 03:05:30 UTC (typed as 2026-12-01 04:05:30+01:00); restored to 2026-12-01 03:05:30 UTC');
    expect(flat).toContain('Replayed WAL: out of recovery after 61s; replayed to 0/8000000; last replayed commit 2026-12-01 03:05:29.8+00; 9 segments (144 MiB) verified');
    expect(flat).toContain('RTO: 4m 12s from confirm to healthy');
    expect((await g.outcome).exitCode).toBe(0);
  });

  it('latest over a WAL gap asks for a time up to the gap; immediate needs no time; a base without a window is not offered a target', async () => {
    const { control, recipe, targets } = pitrDeps({
      '2026-12-02_03-00-00': base({ startTime: '2026-12-02T03:00:00.000Z', window: undefined, problems: ['no WAL from 000000010000000000000010 in the archive'] }),
      '2026-12-01_03-00-00': base({ problems: ['segment 00000001000000000000000B is missing: the window ends at 00000001000000000000000A'] }),
    });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipe }) });
    await g.waitFor('What do you want to do with pitr-shop?');
    const list = await g.press(keys.enter, 'Restorable window (UTC)');
    expect(list).toMatch(/2026-12-02 03:00Z.*none/);
    expect(list).toContain('2026-12-01 03:00:05 .. 03:10:00 (gap)');
    const refused = await g.press(keys.enter, 'has no restorable window');
    expect(refused).toContain('no WAL from 000000010000000000000010');
    await g.press(keys.down, '! segment 00000001000000000000000B is missing');
    await g.press(keys.enter, 'to which point in time?');
    const gap = await g.press(keys.enter, 'The WAL has a gap');
    expect(gap).toContain('Time with its zone');
    expect(targets).toEqual([]);
    await g.press(keys.escape, '› Latest');
    await g.press(keys.down, '› Immediately');
    await g.press(keys.enter, 'IN-PLACE point-in-time restore');
    expect(targets).toEqual([{ kind: 'immediate' }]);
  });

  it('Drill on a physical recipe never reaches the cluster plan (an in-place restore)', async () => {
    const { control, recipe, targets } = pitrDeps({ '2026-12-01_03-00-00': base() });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipe }) });
    await g.waitFor('What do you want to do with pitr-shop?');
    await g.press(keys.down, '› Drill');
    await g.press(keys.enter, 'Restorable window (UTC)');
    const f = await g.press(keys.enter, 'in place only; nothing was touched');
    expect(f).not.toContain('to which point in time?');
    expect(targets).toEqual([]);
    g.instance.unmount();
  });

  it('checkTypedTarget: strict parse, zone required, inside the window only', () => {
    const b = base();
    expect(checkTypedTarget('2026-12-01 03:05:00Z', b)).toMatchObject({ ok: true, target: { kind: 'time', time: '2026-12-01T03:05:00.000Z' }, label: '2026-12-01 03:05:00 UTC' });
    expect(checkTypedTarget('2026-12-01T05:05:00+02:00', b)).toMatchObject({ ok: true, target: { time: '2026-12-01T03:05:00.000Z' } });
    expect(checkTypedTarget('2026-12-01 03:05:00 UTC', b)).toMatchObject({ ok: true });
    for (const bad of ['2026-12-01 03:05:00', 'yesterday 3am', '2026-12-01 3:05Z', '2026-13-01 03:05:00Z', '']) expect(checkTypedTarget(bad, b).ok, bad).toBe(false);
    expect(checkTypedTarget('2026-12-01 03:10:00.500Z', b).ok).toBe(true);
    expect(checkTypedTarget('2026-12-01 03:10:00.600Z', b).ok).toBe(false);
    expect(checkTypedTarget('2026-12-01 03:00:04Z', b).ok).toBe(false);
    expect(windowLine(base({ window: undefined }))).toContain('no restorable window');
  });
});

describe('guide: off-site sets', () => {
  function offsiteDeps(options: { reject?: boolean } = {}) {
    const control = fakeDeps();
    const recipe = recipeFixture({
      name: 'chat',
      backups: {
        root: '/backups/chat',
        layout: 'story-portal',
        offsite: { bucket: 'backups', prefix: 'chat/', region: 'us-east-1' },
        encryption: { age: { identityFile: '/etc/restore-assistant/age.key' }, gpg: { passphraseEnv: 'CHAT_GPG_PASSPHRASE' } },
      },
    });
    const remote = setFixture('2026-01-18_01-45-13', '2026-01-18T01:45:13.000Z');
    remote.components = remote.components.map((c) => (c.kind === 'postgres' ? { ...c, path: 's3://backups/chat/2026-01-18_01-45-13/postgres.sql.gz.age' } : c));
    const both = setFixture('2026-01-17_01-45-02', '2026-01-17T01:45:02.000Z');
    const staged = setFixture('2026-01-18_01-45-13', '2026-01-18T01:45:13.000Z', { location: '/state/staging/chat/2026-01-18_01-45-13/set' });
    const verified: BackupSet[] = [];
    control.deps.listRecipes = async () => [{ name: recipe.recipe.name, file: recipe.file, loaded: recipe }];
    control.deps.listSets = async () => ({ sets: [remote, both], warnings: [], where: { [remote.id]: 'off-site', [both.id]: 'both' }, offsiteUrl: 's3://backups/chat/' });
    let release: (() => void) | undefined;
    const stagingDone = new Promise<void>((r) => (release = r));
    control.deps.verify = async (_r, set, o) => {
      verified.push(set);
      if (set === remote) {
        o.onProgress({ staging: 'Staging set 2026-01-18_01-45-13 from s3://backups/chat/: 3 objects, 5.0 MiB (5.0 MiB to download)' });
        o.onProgress({ staging: '  downloading postgres.sql.gz.age: 1.0 MiB of 5.0 MiB (20%), 1.0 MiB/s, ETA 4 s' });
        o.onProgress({ staging: '  downloading postgres.sql.gz.age: 3.0 MiB of 5.0 MiB (60%), 1.0 MiB/s, ETA 2 s' });
        await stagingDone;
        if (options.reject)
          throw new RestoreAssistantError('Set 2026-01-18_01-45-13 is rejected: postgres.sql.gz.age does not match its checksum.', ExitCode.backupRejected, {
            problems: ['sha256 1111, postgres.sql.gz.age.sha256 says 2222'],
            untouched: 'Nothing was touched: the set is rejected before any step that changes a target.',
            next: 'Pick another set (`restore-assistant list`), or re-upload this one from a good copy.',
          });
        o.onProgress({ staging: '  decrypted postgres.sql.gz.age with age identity /etc/restore-assistant/age.key' });
      }
      return reportFixture(staged, true);
    };
    return { control, recipe, verified, release: () => release?.() };
  }

  it('the list says where each set lives and which key decrypts; choosing an off-site set shows the download and checks before the plan', async () => {
    const { control, recipe, release } = offsiteDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipe }) });
    await g.waitFor('What do you want to do with chat?');
    const list = await g.press(keys.enter, 'Where');
    expect(list).toMatch(/2026-01-18 01:45Z.*off-site/);
    expect(list).toMatch(/2026-01-17 01:45Z.*both/);
    const flat = list.replace(/\s+/g, ' ');
    expect(flat).toContain('off-site only, in s3://backups/chat/: downloaded to staging and checked before anything is touched');
    expect(flat).toContain('Key: postgres: age-encrypted, decrypted with age identity /etc/restore-assistant/age.key');
    const staging = await g.press(keys.enter, '3.0 MiB of 5.0 MiB (60%)');
    expect(staging).toContain('Staging (downloaded, checked, decrypted)');
    // Progress lines replace each other; the plan is not built yet.
    expect(staging).not.toContain('1.0 MiB of 5.0 MiB (20%)');
    expect(staging).toContain('ETA 2 s');
    expect(control.calls.some((c) => c.startsWith('buildPlan'))).toBe(false);
    release();
    const plan = await g.waitFor('IN-PLACE restore of chat');
    expect(plan).toContain('Backup taken');
    g.instance.unmount();
  });

  it('a rejection while staging is shown with its reason, nothing touched; Esc goes back to the list', async () => {
    const { control, recipe, release } = offsiteDeps({ reject: true });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipe }) });
    await g.waitFor('What do you want to do with chat?');
    await g.press(keys.enter, 'Where');
    await g.press(keys.enter, 'Staging (downloaded, checked, decrypted)');
    release();
    const err = await g.waitFor('does not match its checksum');
    expect(err).toContain('sha256 1111, postgres.sql.gz.age.sha256 says 2222');
    expect(err).toContain('Nothing was touched: the set is rejected before any step that changes a target.');
    expect(control.calls.some((c) => c.startsWith('buildPlan') || c.startsWith('runPlan'))).toBe(false);
    await g.press(keys.escape, 'Where');
    g.instance.unmount();
  });

  it('keys are named by their variable or file, never their value', () => {
    expect(keyLabel('gpg', { gpg: { passphraseEnv: 'P', secretKeyFile: '/k.asc' } })).toBe('secret key /k.asc + passphrase from $P');
    expect(keyLabel('age', undefined)).toContain('no age identity in the recipe');
    const set = setFixture('s', '2026-01-18T01:45:13.000Z');
    set.components[0]!.path = 's3://b/p/postgres.sql.gz.gpg';
    expect(encryptionLines(set, { gpg: { passphraseEnv: 'P' } })).toEqual(['postgres: gpg-encrypted, decrypted with passphrase from $P']);
  });
});
