import { Command, CommanderError, Option } from 'commander';
import { ExitCode, exitCodeDocs } from './exit-codes.js';
import { formatError, operatorErrorOf, RestoreAssistantError, UsageError } from './errors.js';
import { runAfterOutcome } from './evidence/deferred.js';
import { toolVersion } from './version.js';

/**
 * Argument parsing and routing. This is the single place that sets the exit code: commands
 * return an exit code or throw a RestoreAssistantError.
 */

type Handler = () => Promise<number>;

const exitCodesHelp = `\nExit codes:\n${exitCodeDocs.map(([c, d]) => `  ${String(c).padEnd(4)} ${d}`).join('\n')}\n`;

const envHelp = `
Environment:
  RESTORE_ASSISTANT_RECIPES   colon-separated directories searched for recipes (before ./recipes)
  RESTORE_ASSISTANT_EVIDENCE_DIR  evidence directory when a recipe names none
  XDG_STATE_HOME              default evidence lives in $XDG_STATE_HOME/restore-assistant/runs
  RESTORE_ASSISTANT_STATE_DIR where the seal-signing key, the journal index and list's cache live
                              (default /var/lib/restore-assistant as root, else
                              $XDG_STATE_HOME/restore-assistant)
  NO_COLOR                    disable colour
  COLUMNS                     the width \`history\` fits its table to when stdout is not a terminal
`;

export function buildProgram(setHandler: (h: Handler) => void): Command {
  const program = new Command();
  program
    .name('restore-assistant')
    .description('Guided, verified restores of PostgreSQL, Redis and Prometheus from backups, with evidence of RTO and RPO.')
    .version(toolVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .addHelpText('after', `${exitCodesHelp}${envHelp}`)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  program
    .command('guide', { isDefault: true })
    .description('walk through a restore or drill step by step (interactive; the default on a terminal)')
    .option('--recipe <recipe>', 'start with this recipe (name or path)')
    .action(async (opts: { recipe?: string }) => {
      setHandler(async () => (await import('./commands/guide.js')).guideCommand(opts));
    });

  program
    .command('list')
    .description('list backup sets, newest first')
    .option('--recipe <recipe>', 'recipe name or path')
    .option('--root <dir>', 'a backup root directory (layout detected)')
    .option('--json', 'print JSON')
    .option('--no-cache', 'catalog every set afresh (do not read or write the list cache in the state directory)')
    .action(async (opts: { recipe?: string; root?: string; json?: boolean; cache?: boolean }) => {
      setHandler(async () => (await import('./commands/list.js')).listCommand(opts));
    });

  program
    .command('verify')
    .description('prove a backup set is restorable without touching any system')
    .argument('<set>', 'set id, "latest", or a path to a set directory or dump file')
    .option('--recipe <recipe>', 'recipe name or path')
    .option('--root <dir>', 'a backup root directory')
    .option('--quick', 'checksums and headers only (skip whole-stream checks)')
    .option('--to <target>', "physical layout: check the WAL up to this target: latest (default), immediate, or a time with its zone ('2026-12-01 03:12:00Z')")
    .option('--json', 'print JSON')
    .action(async (set: string, opts: { recipe?: string; root?: string; quick?: boolean; json?: boolean; to?: string }) => {
      setHandler(async () => (await import('./commands/verify.js')).verifyCommand(set, opts));
    });

  const restoreOptions = (cmd: Command): Command =>
    cmd
      .requiredOption('--recipe <recipe>', 'recipe name or path')
      .option('--backup <id>', 'backup set id or "latest"', 'latest')
      .option('--only <components>', 'comma-separated subset: postgres,redis,prometheus')
      .addOption(new Option('--missing-roles <choice>', 'roles the dump needs but the server lacks').choices(['create', 'skip-ownership', 'fail']))
      .option('--jobs <n>', 'connections: pg_restore --jobs, or plain dumps split at their section markers (default: CPU cores)', (v) => parsePositiveInt(v, '--jobs'))
      .option('--no-parallel', 'restore components one after another')
      .option('--to <target>', "point-in-time (physical layout): latest (default), immediate, or a time with its zone, e.g. '2026-12-01 03:12:00Z'");

  restoreOptions(program.command('plan'))
    .description('print the restore plan (the dry run): every step, its exact commands, what it destroys and how it is undone')
    .option('--offline', 'do not probe targets (read-only) for facts; use the recipe only')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/plan.js')).planCommand(opts));
    });

  restoreOptions(program.command('restore'))
    .description('restore a backup set in place over the recipe\'s real targets')
    .option('-y, --yes', 'do not ask for confirmation (required without a TTY)')
    .option('--rollback-on-unhealthy', 'roll back when health checks fail (default: keep the restored state)')
    .option('--drop-safety-copies', 'remove safety copies after a healthy restore')
    .option('--quick-verify', 'verify only checksums and headers first, not every byte (huge dumps; damage then shows mid-restore and is rolled back)')
    .option('--force-unverified <reason>', 'restore a set that failed verification; the reason is recorded')
    .option('--allow-database-mismatch <reason>', "restore a set whose dump or metadata names another database than the recipe's target; the reason is recorded")
    .option('--json', 'print the final summary as JSON on stdout')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/restore.js')).restoreCommand(opts));
    });

  program
    .command('recover')
    .description('find a restore that was killed before it finished (journal), show what it left, and roll it back or finish it')
    .option('--recipe <recipe>', 'only runs on this recipe\'s targets')
    .option('--run <id>', 'the unfinished run to recover')
    .option('--rollback', 'put the pre-restore state back from the safety copies')
    .option('--finish', 'run the remaining steps and the health checks')
    .option('-y, --yes', 'do not ask for confirmation (required without a TTY)')
    .option('--json', 'print JSON (without --rollback/--finish: the unfinished runs)')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/recover.js')).recoverCommand(opts));
    });

  const safetyCopies = program
    .command('safety-copies')
    .description('list the safety copies earlier restores kept (size, age, the run that made it, pre-incident or not)')
    .option('--recipe <recipe>', 'only this recipe\'s targets (default: every recipe found)')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/safety-copies.js')).safetyCopiesListCommand(opts));
    });
  safetyCopies
    .command('drop')
    .description('remove kept safety copies, by identity (never one an unfinished run needs: see recover)')
    .argument('[id]', 'the copy to drop: its database name or path, as `safety-copies` lists it')
    .option('--older-than <age>', 'every droppable copy older than this (30m, 12h, 7d, 2w)')
    .option('--recipe <recipe>', 'only this recipe\'s targets')
    .option('-y, --yes', 'do not ask for confirmation (required without a TTY)')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, _opts: Record<string, unknown>, cmd: Command) => {
      // --recipe and --json are the parent's options too: commander gives them to whichever it parses first.
      const opts = cmd.optsWithGlobals<Record<string, unknown>>();
      setHandler(async () => (await import('./commands/safety-copies.js')).safetyCopiesDropCommand(id, opts));
    });

  program
    .command('drill')
    .description('restore a set into throwaway scratch services and prove it (never touches real targets)')
    .requiredOption('--recipe <recipe>', 'recipe name or path')
    .option('--backup <id>', 'backup set id or "latest"', 'latest')
    .addOption(new Option('--pick <how>', 'choose the set: random-recent (at random within drill.intervalDays) or oldest-retained').choices(['random-recent', 'oldest-retained']))
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--keep', 'leave the scratch services running and print how to connect')
    .option('--to <target>', 'physical recipes: recover the scratch cluster to latest, immediate or a time with its zone (default latest)')
    .option('--json', 'print the final summary as JSON on stdout')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/drill.js')).drillCommand(opts));
    });

  program
    .command('demo')
    .description('build a sandbox "production", back it up, break it, and walk through restoring it')
    .option('-y, --yes', 'run the whole incident flow without prompts')
    .option('--keep', 'leave the sandbox running afterwards')
    .option('--docker', 'the audited story-portal deployment in containers of a private Docker engine (needs root and Debian\'s docker.io)')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/demo.js')).demoCommand(opts));
    });

  program
    .command('history')
    .description('past runs (restores, drills) newest first, with RTO/RPO and drill freshness')
    .option('--recipe <recipe>', 'recipe name or path')
    .option('--json', 'print JSON')
    .option('--markdown', 'print a Markdown table for the runbook')
    .option('--fleet <source>', 'a directory of evidence directories from many hosts: one line per host and recipe (last drill, outcome, RTO trend, overdue, backup age)')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/history.js')).historyCommand(opts));
    });

  program
    .command('schedule')
    .description('run the recipe\'s drill on a schedule: systemd service + timer units, or a Kubernetes CronJob (printed, or installed with --install)')
    .requiredOption('--recipe <recipe>', 'recipe name or path')
    .option('--systemd', 'a oneshot service and a timer (RandomizedDelaySec, Persistent)')
    .option('--kubernetes', 'a ConfigMap with the recipe and a CronJob (concurrencyPolicy Forbid), as YAML')
    .option('--every <period>', 'how often: 1h..12h, 1d, 7d, 30d, 90d', '7d')
    .option('--install', 'systemd: write the units and a 0600 EnvironmentFile, then enable the timer')
    .option('--unit-dir <dir>', 'systemd: where the units go', '/etc/systemd/system')
    .option('--secrets-file <file>', 'systemd: EnvironmentFile with the recipe\'s secrets (default /etc/restore-assistant/<recipe>.env)')
    .option('--image <image>', 'kubernetes: container image with restore-assistant and the database binaries')
    .option('--namespace <ns>', 'kubernetes: namespace of the objects')
    .option('--secret <name>', 'kubernetes: Secret holding the recipe\'s *Env values (default restore-assistant-<recipe>)')
    .option('--backups-claim <pvc>', 'kubernetes: PVC with the backups, mounted read-only at backups.root')
    .option('--evidence-claim <pvc>', 'kubernetes: PVC that keeps the evidence')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/schedule.js')).scheduleCommand(opts));
    });

  program
    .command('report')
    .description('re-render the report of a run')
    .argument('<run>', 'run directory or run id')
    .option('--recipe <recipe>', 'recipe name or path (to find run ids)')
    .addOption(new Option('--format <format>', 'output format').choices(['md', 'json']).default('md'))
    .action(async (run: string, opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/report.js')).reportCommand(run, opts));
    });

  const evidence = program.command('evidence').description('check recorded evidence; send runs off-site and fetch them back');
  evidence
    .command('verify')
    .description('check a run\'s hash chain and seal (exit 0 only for an intact sealed run; with --key, only one signed by that key)')
    .argument('<run-dir>', 'run directory')
    .option('--key <pub>', 'require the seal to be signed by this public key (ed25519:<base64>, or a file holding it; `evidence key` prints it)')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/evidence.js')).evidenceVerifyCommand(dir, opts));
    });
  evidence
    .command('upload')
    .description('send sealed runs to the recipe\'s evidence.upload bucket: RUN, or every sealed run not uploaded yet (recorded in history.jsonl)')
    .argument('[run]', 'run directory or run id (default: every sealed run of the recipe not uploaded yet)')
    .option('--recipe <recipe>', 'recipe name or path (default with RUN: the recipe the run names)')
    .option('--json', 'print JSON')
    .action(async (run: string | undefined, opts: Record<string, unknown>) => {
      setHandler(async () => (await import('./commands/evidence.js')).evidenceUploadCommand(run, opts));
    });
  evidence
    .command('fetch')
    .description('copy a run back from the recipe\'s evidence.upload bucket into DIR/RUN (then `evidence verify DIR/RUN`)')
    .argument('<run>', 'run id')
    .argument('<dir>', 'directory to put the run directory in (created if missing)')
    .requiredOption('--recipe <recipe>', 'recipe name or path')
    .option('--json', 'print JSON')
    .action(async (run: string, dir: string, opts: { recipe: string; json?: boolean }) => {
      setHandler(async () => (await import('./commands/evidence.js')).evidenceFetchCommand(run, dir, opts));
    });
  evidence
    .command('key')
    .description('print this host\'s seal-signing public key (created on first use in the state directory)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      setHandler(async () => (await import('./commands/evidence.js')).evidenceKeyCommand(opts));
    });

  const recipes = program
    .command('recipes')
    .description('list recipes (from $RESTORE_ASSISTANT_RECIPES and ./recipes)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      setHandler(async () => (await import('./commands/recipes.js')).recipesListCommand(opts));
    });
  recipes
    .command('check')
    .description('validate a recipe file; problems are printed with line numbers')
    .argument('<file>', 'recipe file')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      setHandler(async () => (await import('./commands/recipes.js')).recipesCheckCommand(file, opts));
    });
  recipes
    .command('schema')
    .description('print the recipe JSON Schema (for editors)')
    .action(async () => {
      setHandler(async () => (await import('./commands/recipes.js')).recipesSchemaCommand());
    });

  return program;
}

function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} takes a whole number of 1 or more (got "${value}").`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  let handler: Handler | undefined;
  const program = buildProgram((h) => {
    handler = h;
  });
  const first = argv[0];
  if (first !== undefined && !first.startsWith('-')) {
    const known = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    if (!known.includes(first)) {
      process.stderr.write(`error: unknown command '${first}' (commands: ${known.filter((k) => k !== 'help').join(', ')})\n`);
      process.stderr.write('Run `restore-assistant --help` for usage. Nothing was touched.\n');
      return ExitCode.usage;
    }
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return ExitCode.ok;
      // commander already printed the problem; add the usage hint.
      process.stderr.write('Run `restore-assistant --help` for usage. Nothing was touched.\n');
      return ExitCode.usage;
    }
    process.stderr.write(`${formatError(error)}\n`);
    return error instanceof RestoreAssistantError ? error.exitCode : ExitCode.usage;
  }
  if (!handler) return ExitCode.ok;
  let code: number;
  try {
    code = await handler();
  } catch (thrown) {
    const error = operatorErrorOf(thrown) ?? thrown;
    process.stderr.write(`${formatError(error)}\n`);
    if (process.env['RESTORE_ASSISTANT_DEBUG'] && thrown instanceof Error) process.stderr.write(`${thrown.stack ?? ''}\n`);
    code = error instanceof RestoreAssistantError ? error.exitCode : ExitCode.internal;
  }
  // What a run left for after its outcome (the evidence upload: evidence/deferred.ts), now that the
  // outcome is printed; it never changes the exit code.
  await runAfterOutcome((error) => process.stderr.write(`Warning: ${error instanceof Error ? error.message : String(error)}\n`));
  return code;
}

