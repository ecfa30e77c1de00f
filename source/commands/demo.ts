import { writeFile } from 'node:fs/promises';
import { demoEvidenceDir } from '../state/paths.js';
import path from 'node:path';
import { buildDemoWorld, type DemoWorld } from '../demo/world.js';
import type { DockerDemoWorld } from '../demo/docker-world.js';
import { UsageError } from '../errors.js';
import { releaseFromExitGuard } from '../sandbox/exit-guard.js';
import { serviceCtlArgv } from '../sandbox/service-ctl.js';
import { createOutput, paint } from '../output.js';
import { ownCommandSignals } from '../session/signals.js';
import { shellJoin } from '../text/shell.js';
import { narrationWidth, wrapWords } from '../text/wrap.js';

/**
 * `restore-assistant demo`: the whole incident flow on a sandbox, for a first try. Builds a
 * "production" (real PostgreSQL, Redis, Prometheus and a shop API on loopback ports), backs it up
 * in the story-portal layout, breaks it, writes a recipe for it, and opens the guided restore on
 * it (`--yes`: the same restore without prompts). Everything is stopped and removed on exit,
 * unless --keep. The run's evidence stays in the demo evidence dir.
 */

export interface DemoCommandOptions {
  yes?: boolean;
  keep?: boolean;
  /** The story-portal deployment in containers of a private dockerd (demo --docker). */
  docker?: boolean;
}

export async function demoCommand(opts: DemoCommandOptions): Promise<number> {
  const out = createOutput();
  const c = paint(out.color);
  // The narration is wrapped at the terminal's width (at most 80), never inside a word or a path.
  const say = (line: string): void => {
    for (const l of wrapWords(line, narrationWidth())) out.info(l);
  };
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!opts.yes && !interactive) {
    throw new UsageError('The demo opens the guided interface, which needs a terminal.', {
      next: 'Run it in a terminal, or pass --yes to run the same restore without prompts.',
    });
  }
  let world: DemoWorld | DockerDemoWorld | undefined;
  // The one signal owner (session/signals.ts), from here: while the sandbox is built and broken a
  // signal cancels the demo (once the step under way is done; the finally block removes the
  // sandbox, exit `cancelled`); the restore or the guide below owns them while it runs; after it, a
  // signal only says the sandbox is being removed.
  const signals = ownCommandSignals({
    notify: (line) => out.info(line),
    what: 'the demo',
    again: shellJoin(['restore-assistant', ...process.argv.slice(2)]),
    finishing: 'comparing production with the backup, removing the sandbox',
  });
  try {
    if (opts.docker) {
      const { buildDockerDemoWorld } = await import('../demo/docker-world.js');
      world = await buildDockerDemoWorld({ evidenceDir: demoEvidenceDir(), log: say });
    } else {
      world = await buildDemoWorld({ evidenceDir: demoEvidenceDir(), log: say });
    }
    signals.throwIfCancelled('the building of the sandbox');
    for (const [k, v] of Object.entries(world.env)) process.env[k] = v;
    out.info('');
    out.info(c('bold', 'Incident! Production just broke:'));
    for (const line of await world.breakProduction()) out.info(`  ${c('red', '✖')} ${line}`);
    signals.throwIfCancelled('the breaking of the sandbox production');
    out.info('');
    say(`Backups are in ${world.backupRoot}: two sets, newest first. The recipe for this sandbox is ${world.recipeFile}.`);
    say(
      opts.yes
        ? 'Restoring the latest backup without prompts (--yes)...'
        : `Opening the guided restore on the recipe "${opts.docker ? 'demo-docker' : 'demo'}": choose "Restore in place" (or "Drill", which leaves production broken), the latest backup, review the plan, type "${opts.docker ? 'agentic_platform' : 'shop'}" to confirm.`,
    );
    out.info('');

    let code: number;
    if (opts.yes) {
      const { restoreCommand } = await import('./restore.js');
      code = await restoreCommand({ recipe: world.recipeFile, backup: 'latest', yes: true });
    } else {
      const { guideCommand } = await import('./guide.js');
      code = await guideCommand({ recipe: world.recipeFile });
    }
    signals.finishing();

    out.info('');
    out.info(c('bold', 'Production now, compared with the backup (a drill or a cancel leaves it broken):'));
    const comparison = await world.compare();
    for (const row of comparison) out.result(`  ${row.ok ? c('green', '✔') : c('red', '✖')} ${row.line}`);
    for (const l of wrapWords(
      `Evidence of this run: ${demoEvidenceDir()} (restore-assistant history --json reads it with RESTORE_ASSISTANT_EVIDENCE_DIR set there)`,
      narrationWidth(process.stdout),
    ))
      out.result(l);
    if (opts.keep) {
      releaseFromExitGuard();
      const envFile = path.join(world.base, 'demo.env');
      await writeFile(
        envFile,
        Object.entries(world.env)
          .map(([k, v]) => `export ${k}=${v}\n`)
          .join(''),
        { mode: 0o600 },
      );
      out.info(`Sandbox left running (--keep): ${world.base}`);
      out.info(`  . ${envFile}   # the demo database password (mode 0600)`);
      out.info(`  restore-assistant plan --recipe ${world.recipeFile}`);
      out.info('  Stop it when done:');
      if ('daemon' in world) {
        out.info(`    docker -H ${world.daemon.host} rm -f -v ${Object.values(world.deployment.names).join(' ')}`);
        out.info(
          `    kill $(cat ${path.join(world.daemon.rootDir, 'dockerd.pid')}); umount ${path.join(world.daemon.rootDir, 'exec', 'netns', 'default')}; rm -rf ${world.base} ${world.daemon.rootDir}`,
        );
      } else {
        for (const spec of [path.join(world.base, 'shop-api.service.json'), world.redis.spec, world.prom.spec])
          out.info(`    ${serviceCtlArgv('stop', spec).join(' ')}`);
        out.info(`    pkill -f ${world.pg.dataDir}; rm -rf ${world.base}`);
      }
    }
    return code;
  } finally {
    signals.finishing();
    try {
      if (world && !opts.keep) {
        out.info('Stopping the sandbox and removing its files...');
        await world.teardown();
        out.info('Sandbox removed.');
      }
    } finally {
      signals.dispose();
    }
  }
}
