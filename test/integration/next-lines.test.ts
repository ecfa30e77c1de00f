import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupStoryPortal,
  fingerprintPostgres,
  SandboxGroup,
  seedPostgres,
  type PostgresFingerprint,
  type PostgresSandbox,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';
import { runCli, type CliResult } from '../support/cli.js';
import { Terminal } from '../support/terminal.js';

/**
 * Every "Next:" command an error prints works when pasted. The real CLI is driven into each error
 * (a real PostgreSQL, real backup sets, crafted recipes); every `restore-assistant ...` command in
 * its Next: line is split into argv as a POSIX shell would and run through the built CLI, and its
 * exit code and effect are checked.
 *
 * Completeness: the source is scanned for every error detail (`next:`) that names a
 * `restore-assistant` command; each must be listed in SITES, with the scenario that produces it
 * (or, for the few that need a world this file cannot build, where it is exercised). A new one
 * without an entry fails here.
 */

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DB = 'nextdb';

/** Split a pasted command the way sh does for what the tool prints: words, '...' quoting, \' escapes. */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated quote in ${text}`);
      cur += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '\\') {
      cur += text[i + 1] ?? '';
      i++;
      inWord = true;
    } else if (ch === '"') {
      const end = text.indexOf('"', i + 1);
      cur += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** The Next: line of an error (stderr), and the `restore-assistant ...` commands in it. */
function nextLine(r: CliResult): string {
  const line = r.stderr.split('\n').find((l) => l.startsWith('Next: ')) ?? r.stdout.split('\n').find((l) => / Next: /.test(l));
  if (!line) throw new Error(`no Next: line\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return line;
}

function commandsIn(line: string): string[][] {
  return [...line.matchAll(/`(restore-assistant [^`]+)`/g)].map((m) => shellWords(m[1] ?? '').slice(1));
}

/** Sites in the source whose Next: names a command, and what covers them. */
type Site = { file: string; starts: string; scenario: string } | { file: string; starts: string; elsewhere: string };

const SITES: Site[] = [
  {
    file: 'source/catalog/find.ts',
    starts: '`Run \\`${listCommand(scope)}\\` to see what the backup root holds',
    scenario: 'latest-empty',
  },
  { file: 'source/catalog/find.ts', starts: '`Run \\`${listCommand(scope)}\\` to see the set ids', scenario: 'no-such-set' },
  { file: 'source/catalog/find.ts', starts: '`Check the path, or run \\`${listCommand(scope)}\\`', scenario: 'missing-path' },
  { file: 'source/catalog/resolve.ts', starts: '', scenario: 'need-source' },
  { file: 'source/session/session.ts', starts: '`${onlyFix} another set', scenario: 'component-missing' },
  {
    file: 'source/session/session.ts',
    starts: "`Check the recipe's components and the set",
    elsewhere: 'a drill of a set holding nothing the recipe restores (prepare refuses it earlier, in plan/build.ts)',
  },
  { file: 'source/commands/restore.ts', starts: '`Pick the set of ${database}', scenario: 'database-mismatch' },
  { file: 'source/commands/restore.ts', starts: '`Check the plan (', scenario: 'restore-no-tty' },
  { file: 'source/commands/drill.ts', starts: '`Confirm on the command line:', scenario: 'drill-no-tty' },
  { file: 'source/commands/guide.ts', starts: 'opts.recipe', scenario: 'guide-no-tty' },
  { file: 'source/commands/report.ts', starts: "`\\`${raCommand('history'", scenario: 'no-such-run' },
  {
    file: 'source/plan/build.ts',
    starts: "`Pick another set (\\`${raCommand('list', '--recipe', recipe.file)}\\`), or drop",
    scenario: 'only-not-in-set',
  },
  {
    file: 'source/plan/build.ts',
    starts: "`Pick another set (\\`${raCommand('list', '--recipe', recipe.file)}\\`) or check",
    elsewhere: 'a set and recipe with no component in common: not driven here; the same list command as only-not-in-set, which is',
  },
  { file: 'source/drill/pick.ts', starts: '`Check that the backup job writes there', scenario: 'pick-empty' },
  {
    file: 'source/offsite/local.ts',
    starts: '`Pick another set (',
    elsewhere: 'an encrypted local set whose ciphertext checksum does not match: test/integration/offsite-local.test.ts pastes it',
  },
  {
    file: 'source/drill/isolate.ts',
    starts: "'This is a bug in restore-assistant",
    elsewhere: 'a drill plan that reaches a real target (a bug): the isolation checks in test/integration/drill.test.ts',
  },
  {
    file: 'source/drill/production-overlap.ts',
    starts: 'scratchElsewhere(',
    elsewhere:
      "a drill whose scratch would be production's (TMPDIR inside a production data dir): test/unit/drill-production-overlap.test.ts drives startDrillScratch into it",
  },
  {
    file: 'source/journal/detect.ts',
    starts: "`Run \\`${raCommand('recover'",
    elsewhere: 'a killed restore: test/integration/recover-kill.test.ts',
  },
  {
    file: 'source/probe/index.ts',
    starts: '`Build the plan again',
    elsewhere: 'a backup file that changes between plan and run: test/integration/probe.test.ts',
  },
  { file: 'source/recipe/load.ts', starts: '`Fix the lines above;', scenario: 'recipe-invalid' },
  { file: 'source/recipe/load.ts', starts: "'Check the path, or run `restore-assistant recipes`", scenario: 'recipe-missing' },
  { file: 'source/evidence/verify.ts', starts: '"`restore-assistant history` lists runs', scenario: 'evidence-not-a-run' },
  {
    file: 'source/evidence/verify.ts',
    starts: '"Pass one run\'s directory',
    elsewhere: 'an evidence directory passed instead of a run: not driven here; the same history command as evidence-not-a-run, which is',
  },
  {
    file: 'source/evidence/signing.ts',
    starts: "'Pass the key `restore-assistant evidence key` prints",
    elsewhere: 'a malformed --key: test/integration/evidence-trust.test.ts',
  },
  {
    file: 'source/commands/recover.ts',
    starts: '`restore-assistant recover --recipe ${recipeRef} --rollback|--finish',
    elsewhere: 'recover --json (a field for tools, naming both choices): test/integration/recover-kill.test.ts',
  },
  {
    file: 'source/commands/recover.ts',
    starts: "`Choose: \\`${raCommand('recover'",
    elsewhere: 'a killed restore: test/integration/recover-kill.test.ts',
  },
  {
    file: 'source/engine/lock.ts',
    starts: '`Run \\`${recoverCommand(recipe)}\\`',
    elsewhere: 'a stale lock of a dead run: test/unit/locks.test.ts',
  },
  {
    file: 'source/last-resort.ts',
    starts: "`\\`${raCommand('recover')}\\` clears stale locks",
    elsewhere:
      'a crash with no restore in flight whose lock could not be removed: test/unit/last-resort.test.ts; that recover releases them: test/integration/recover-stale-locks.test.ts',
  },
  // Landed by other parts in this wave; their commands are bare (no backticks) and are exercised by their own tests.
  {
    file: 'source/commands/safety-copies.ts',
    starts: "'restore-assistant safety-copies'",
    elsewhere: 'safety-copies (issue 11): test/integration/safety-copies.test.ts',
  },
  {
    file: 'source/commands/safety-copies.ts',
    starts: '`restore-assistant safety-copies${recipeArg}`',
    elsewhere: 'safety-copies (issue 11): test/integration/safety-copies.test.ts',
  },
  {
    file: 'source/commands/safety-copies.ts',
    starts: '',
    elsewhere: 'safety-copies (issue 11): the recover command for a copy an unfinished run needs, test/integration/safety-copies.test.ts',
  },
  {
    file: 'source/commands/safety-copies.ts',
    starts: '`Pass --yes to confirm on the command line: restore-assistant safety-copies drop',
    elsewhere: 'safety-copies (issue 11): test/integration/safety-copies.test.ts',
  },
  {
    file: 'source/probe/index.ts',
    starts: '`Free space on the file system holding ${d.path}, or point TMPDIR',
    elsewhere:
      'room to stage a parallel plain restore (issue 14): the --jobs 1 restore, pasted, test/integration/split-staging-room.test.ts',
  },
  {
    file: 'source/probe/index.ts',
    starts: '',
    elsewhere: 'room for safety copies (issue 11): the safety-copies drop command, test/integration/safety-copies.test.ts',
  },
  {
    file: 'source/pitr/session.ts',
    starts: '`Run \\`restore-assistant verify latest --recipe',
    elsewhere: 'point-in-time recovery: a target past a WAL gap (restore refused, exit 3), test/integration/pitr.test.ts',
  },
  {
    file: 'source/evidence/upload.ts',
    starts: '`Pass a run id such as',
    elsewhere: 'evidence fetch of a malformed run id (issue 15): pasted in test/integration/evidence-upload.test.ts',
  },
  {
    file: 'source/evidence/upload.ts',
    starts: "`\\`${raCommand('history', '--recipe', loaded.file)}\\` shows each run's upload",
    elsewhere: 'evidence fetch of a run the bucket lacks (issue 15): pasted in test/integration/evidence-upload.test.ts',
  },
  {
    file: 'source/commands/evidence.ts',
    starts: "`\\`${raCommand('evidence', 'upload', '--recipe', header.file",
    elsewhere: "evidence upload with another recipe than the run's (issue 15): pasted in test/integration/evidence-upload.test.ts",
  },
  {
    file: 'source/session/guide-pitr.ts',
    starts: '`Fix the problems listed, then choose the base again',
    elsewhere:
      "the guide's point-in-time preflight refusal: its `plan --recipe F --backup ID --to T` is run as pasted in test/e2e/guide-pitr.test.ts",
  },
  {
    file: 'source/pitr/session.ts',
    starts: "`${ts.next[0]?.toUpperCase() ?? ''}${ts.next.slice(1)}; or choose a base without tablespaces",
    elsewhere: 'a base with a tablespace archive refused in preflight (exit 9), test/integration/pitr-timelines.test.ts',
  },
  {
    file: 'source/drill/pitr.ts',
    starts: "`\\`${raCommand('list', '--recipe', o.recipeRef)}\\` shows the bases",
    elsewhere:
      'drill --pick on a physical recipe whose bases have no window (the list command of a recipe: pasted in the list scenarios here)',
  },
  {
    file: 'source/drill/pitr.ts',
    starts: '`Check the base with',
    elsewhere: 'a point-in-time drill of a base whose major is unknown (verify of a base: test/integration/pitr.test.ts)',
  },
  {
    file: 'source/errors.ts',
    starts: '`free space there (df -h',
    elsewhere:
      'a full disk reaching the CLI: the text in test/unit/operator-errors.test.ts; `restore-assistant safety-copies` needs no recipe',
  },
];

/** A restore-assistant command named in an error's text (backticked or bare), or built by the helpers. */
const COMMAND =
  /restore-assistant (guide|list|verify|plan|restore|recover|drill|demo|history|schedule|report|evidence|recipes|safety-copies|pitr)\b|raCommand\(|listCommand\(|recoverCommand\(/;

/** Every `next:` / `next =` in source/ (the guide's screens excluded) whose text names a restore-assistant command. */
function scanSites(): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'ui' && name !== 'sandbox') walk(p);
      } else if (/\.tsx?$/.test(name)) {
        const lines = readFileSync(p, 'utf8').split('\n');
        lines.forEach((line, i) => {
          const m = /\bnext(?::| =)\s*(.*)$/.exec(line);
          if (!m || /^\s*(\/\/|\*)/.test(line)) return;
          // The value may continue on the next lines (a ternary, a long template).
          const text = [m[1] ?? '', ...lines.slice(i + 1, i + 4)].join('\n');
          const value = (m[1] ?? '').trim() === '' || (m[1] ?? '').trim() === 'opts.recipe' ? text : (m[1] ?? '');
          if (COMMAND.test(value)) out.push({ file: relative(repo, p), text: (m[1] ?? '').trim() });
        });
      }
    }
  };
  walk(join(repo, 'source'));
  return out;
}

describe('every Next: command in every error works when pasted', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let set: StoryPortalBackup;
  let backupPg: PostgresFingerprint;
  let env: Record<string, string>;
  let both: string; // recipe: postgres + redis (the set has no redis)
  let pgOnly: string; // recipe: postgres
  const produced = new Map<string, string>();

  const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> =>
    runCli(args, { env: { ...env, ...extra }, cwd: base, timeoutMs: 240_000 });
  const show = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  async function recipe(name: string, body: Record<string, unknown>): Promise<string> {
    const file = join(base, `${name}.yaml`);
    await writeFile(
      file,
      JSON.stringify(
        { name, objectives: { rtoMinutes: 30, rpoMinutes: 1440 }, evidence: { dir: join(base, 'evidence') }, ...body },
        null,
        2,
      ),
    );
    return file;
  }
  const pgComponent = (database = DB): Record<string, unknown> => ({
    host: pg.host,
    port: pg.port,
    user: 'postgres',
    passwordEnv: 'NEXT_PG_PASSWORD',
    database,
    owner: 'app_owner',
    bin: pg.binDir,
  });

  /** Drive the CLI into an error; record its Next: line for the scenario. */
  async function errorOf(scenario: string, args: string[], exitCode: number): Promise<{ line: string; commands: string[][] }> {
    const r = await cli(args);
    expect(r.code, show(r)).toBe(exitCode);
    const line = nextLine(r);
    produced.set(scenario, line);
    const commands = commandsIn(line);
    // Every command it names carries the recipe (or a path), so it works from any directory.
    for (const c of commands)
      if (['list', 'verify', 'plan', 'restore', 'drill', 'history', 'recover'].includes(c[0] ?? '') && !c.includes('--recipe'))
        expect.fail(`${scenario}: ${c.join(' ')} has no --recipe`);
    return { line, commands };
  }
  const find = (commands: string[][], sub: string): string[] => {
    const c = commands.find((x) => x[0] === sub);
    if (!c) throw new Error(`no \`restore-assistant ${sub}\` in ${JSON.stringify(commands)}`);
    return c;
  };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-next-it-'));
    group = new SandboxGroup();
    pg = await group.postgres();
    await seedPostgres(pg, DB, { rows: 20 });
    set = await backupStoryPortal({ pg, db: DB }, join(base, 'backups'), { time: new Date(Date.now() - 60_000) });
    backupPg = await fingerprintPostgres(pg, DB);
    await mkdir(join(base, 'empty-backups'));
    env = {
      NEXT_PG_PASSWORD: pg.password,
      XDG_STATE_HOME: join(base, 'state'),
      XDG_RUNTIME_DIR: join(base, 'run'),
      RESTORE_ASSISTANT_LOCK_DIR: join(base, 'locks'),
    };
    const backups = { root: join(base, 'backups'), layout: 'story-portal' };
    both = await recipe('next-both', {
      backups,
      components: {
        postgres: pgComponent(),
        redis: { host: '127.0.0.1', port: 1, service: { stop: ['true'], start: ['true'], status: ['true'] } },
      },
    });
    pgOnly = await recipe('next-pg', { backups, components: { postgres: pgComponent() } });
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  });

  it('a set missing a component: --only restores what it holds; list and verify name the recipe', async () => {
    const { commands } = await errorOf('component-missing', ['restore', '--recipe', both, '--backup', set.id, '--yes'], 3);
    const list = await cli(find(commands, 'list'));
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toContain(set.id);
    const verify = await cli(find(commands, 'verify'));
    expect(verify.code, show(verify)).toBe(3); // it says "for details": the missing Redis backup
    expect(verify.stdout + verify.stderr).toMatch(/Redis/);
    await pg.psql('DROP TABLE app.comments', DB);
    const only = find(commands, 'restore');
    expect(only).toEqual(expect.arrayContaining(['--only', 'postgres', '--yes']));
    const restored = await cli(only);
    expect(restored.code, show(restored)).toBe(0);
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
  });

  it('no such set, latest of nothing, a path that is not there: list names the recipe', async () => {
    for (const [scenario, args] of [
      ['no-such-set', ['restore', '--recipe', pgOnly, '--backup', 'nope-2020', '--yes']],
      ['missing-path', ['verify', join(base, 'no-such-dir', 'x.sql.gz'), '--recipe', pgOnly]],
    ] as const) {
      const { commands } = await errorOf(scenario, [...args], 2);
      const list = await cli(find(commands, 'list'));
      expect(list.code, show(list)).toBe(0);
      expect(list.stdout).toContain(set.id);
    }
    const empty = await recipe('next-empty', {
      backups: { root: join(base, 'empty-backups'), layout: 'story-portal' },
      components: { postgres: pgComponent() },
    });
    const { commands } = await errorOf('latest-empty', ['restore', '--recipe', empty, '--backup', 'latest', '--yes'], 2);
    const list = await cli(find(commands, 'list'));
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout + list.stderr).toMatch(/no backup sets|0 sets|No sets/i);
    const pick = await errorOf('pick-empty', ['drill', '--recipe', empty, '--pick', 'oldest-retained', '--yes'], 3);
    expect((await cli(find(pick.commands, 'list'))).code).toBe(0);
  });

  it('list without a recipe or root: the pasted example names a recipe found and lists its sets', async () => {
    const r = await cli(['list'], { RESTORE_ASSISTANT_RECIPES: base });
    expect(r.code, show(r)).toBe(2);
    const line = nextLine(r);
    produced.set('need-source', line);
    const list = commandsIn(line)[0] ?? [];
    expect(list.slice(0, 2)).toEqual(['list', '--recipe']);
    const listed = await cli(list, { RESTORE_ASSISTANT_RECIPES: base });
    expect(listed.code, show(listed)).toBe(0);
  });

  it('--only a component the set lacks: list names the recipe', async () => {
    const { commands } = await errorOf(
      'only-not-in-set',
      ['plan', '--recipe', both, '--backup', set.id, '--only', 'redis', '--offline'],
      2,
    );
    const list = await cli(find(commands, 'list'));
    expect(list.code, show(list)).toBe(0);
  });

  it('a set naming another database: list names the recipe', async () => {
    const other = await recipe('next-other-db', {
      backups: { root: join(base, 'backups'), layout: 'story-portal' },
      components: { postgres: pgComponent('otherdb') },
    });
    const { commands } = await errorOf('database-mismatch', ['restore', '--recipe', other, '--backup', set.id, '--yes'], 3);
    const list = await cli(find(commands, 'list'));
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toContain(set.id);
  });

  it('restore, drill and guide without a terminal: the pasted commands plan, restore and drill', async () => {
    const r = await errorOf('restore-no-tty', ['restore', '--recipe', pgOnly, '--backup', set.id], 2);
    const plan = await cli(find(r.commands, 'plan'));
    expect(plan.code, show(plan)).toBe(0);
    expect(plan.stdout).toContain(set.id);
    await pg.psql('UPDATE app.users SET karma = -1', DB);
    const restore = await cli(find(r.commands, 'restore'));
    expect(restore.code, show(restore)).toBe(0);
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);

    const g = await errorOf('guide-no-tty', ['guide', '--recipe', pgOnly], 2);
    for (const sub of ['plan', 'list']) expect((await cli(find(g.commands, sub))).code).toBe(0);
    expect(find(g.commands, 'restore')).toEqual(['restore', '--recipe', pgOnly, '--backup', 'latest', '--yes']);

    const d = await errorOf('drill-no-tty', ['drill', '--recipe', pgOnly, '--backup', set.id], 2);
    const drill = await cli(find(d.commands, 'drill'));
    expect(drill.code, show(drill)).toBe(0);
    expect(drill.stdout).toMatch(/DRILL PASSED/);
    expect(find(g.commands, 'drill')).toEqual(['drill', '--recipe', pgOnly, '--yes']);
  });

  it('recipes: an invalid one is re-checked by the pasted command, a missing one is listed', async () => {
    const bad = join(base, 'bad.yaml');
    await writeFile(bad, 'name: bad\nbackups: 3\n');
    const { commands } = await errorOf('recipe-invalid', ['plan', '--recipe', bad, '--offline'], 2);
    const check = await cli(find(commands, 'recipes'));
    expect(check.code, show(check)).toBe(2); // it re-checks: the same problems, the same exit
    expect(check.stdout + check.stderr).toMatch(/backups/);
    const missing = await errorOf('recipe-missing', ['plan', '--recipe', join(base, 'gone.yaml'), '--offline'], 2);
    expect((await cli(find(missing.commands, 'recipes'))).code).toBe(0);
  });

  it('runs: report of a run that is not there and evidence verify of a non-run point at history', async () => {
    const { commands } = await errorOf('no-such-run', ['report', 'no-such-run', '--recipe', pgOnly], 2);
    const history = await cli(find(commands, 'history'));
    expect(history.code, show(history)).toBe(0);
    expect(history.stdout).toMatch(/restore/);
    const ev = await cli(['evidence', 'verify', join(base, 'no-such-run-dir')]);
    const line = nextLine(ev);
    produced.set('evidence-not-a-run', line);
    // history without --recipe lists the default evidence directory: it runs.
    expect((await cli(commandsIn(line)[0] ?? [])).code).toBe(0);
  });

  it('restore on a terminal: each running step says step N of M and how long it has run (listr2); the closing block ends stdout', async () => {
    await pg.psql('UPDATE app.users SET karma = -2', DB);
    const t = Terminal.start(
      ['restore', '--recipe', pgOnly, '--backup', set.id, '--yes'],
      { ...process.env, ...env, NO_COLOR: '1' },
      base,
      {
        cols: 120,
        rows: 40,
      },
    );
    const code = await t.exited;
    expect(code, t.text()).toBe(0);
    expect(t.text()).toMatch(/\(step \d+ of \d+, \d/);
    expect(t.text()).toMatch(/Verdict: +RESTORED and healthy/);
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
  });

  it('covers every error in the source whose Next: names a command', () => {
    const found = scanSites();
    const uncovered = found.filter((f) => !SITES.some((s) => s.file === f.file && f.text.startsWith(s.starts)));
    expect(uncovered, 'an error names a command in its Next: line: add a scenario here (or say where it is exercised)').toEqual([]);
    for (const s of SITES) {
      expect(
        found.some((f) => f.file === s.file && f.text.startsWith(s.starts)),
        `${s.file}: ${s.starts} is no longer in the source`,
      ).toBe(true);
      if ('scenario' in s) expect(produced.has(s.scenario), `scenario ${s.scenario} did not run`).toBe(true);
    }
  });
});
