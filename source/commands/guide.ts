import { UsageError } from '../errors.js';
import { raCommand } from '../text/next.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { ownProcessSignals } from '../session/signals.js';

/**
 * `restore-assistant guide` (the default on a terminal): the guided flow. Refuses without a
 * terminal (never prompts into a pipe) and names the non-interactive flags instead. Returns the
 * exit code the guide ended with: the engine's (0/1/4/5/130) after a run, 0 when the operator
 * cancelled before anything ran (q, or Ctrl-C before the first step: ExitCode.cancelled), never 130
 * unless a run was interrupted and rolled back.
 */

export interface GuideCommandOptions {
  recipe?: string;
}

export interface GuideIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export async function guideCommand(
  opts: GuideCommandOptions = {},
  io: GuideIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  if (!io.stdin.isTTY || !io.stdout.isTTY) {
    throw new UsageError('The guided restore needs a terminal (stdin and stdout must be a TTY); it never prompts into a pipe.', {
      next: opts.recipe
        ? `Without a terminal, check the plan (\`${raCommand('plan', '--recipe', opts.recipe, '--backup', 'latest')}\`; \`${raCommand('list', '--recipe', opts.recipe)}\` shows the set ids), then restore non-interactively: \`${raCommand('restore', '--recipe', opts.recipe, '--backup', 'latest', '--yes')}\`. A drill: \`${raCommand('drill', '--recipe', opts.recipe, '--yes')}\`.`
        : `Without a terminal, name the recipe (\`${raCommand('recipes')}\` lists them) and restore non-interactively: restore-assistant restore --recipe NAME --backup latest --yes (check it first with restore-assistant plan --recipe NAME). A drill: restore-assistant drill --recipe NAME --yes.`,
    });
  }
  // Signals are owned from here (session/signals.ts): SIGINT, SIGTERM and SIGHUP count as Ctrl-C.
  // Before anything ran they cancel (exit `cancelled`); during a run they abort it and the engine
  // rolls back (a second within 3 s is absorbed: ui/App.tsx), instead of killing the process
  // half-way. A drill's scratch services stay until the engine has finished. One that arrives
  // before the screens are up is handed to them as soon as they are.
  const listeners = new Set<() => void>();
  let pending = 0;
  const releaseSignals = ownProcessSignals(() => {
    if (listeners.size === 0) pending++;
    for (const l of listeners) l();
  });
  try {
    return await guideOwned(opts, io, {
      subscribe: (fn) => {
        listeners.add(fn);
        for (; pending > 0; pending--) fn();
        return () => listeners.delete(fn);
      },
    });
  } finally {
    releaseSignals();
  }
}

async function guideOwned(
  opts: GuideCommandOptions,
  io: GuideIo,
  interrupts: { subscribe: (fn: () => void) => () => boolean },
): Promise<number> {
  // The first frame comes first (issue 14: under 0.5 s): everything not needed to draw it is loaded
  // later, when a screen asks for it (session/guide-deps.ts). With --recipe, the recipe and the
  // journal are read before the screens start; a guided restore over an unfinished run is refused
  // (the session, before it verifies).
  let pinned: LoadedRecipe | undefined;
  if (opts.recipe) {
    const [{ resolveRecipe }, { warnUnfinished }] = await Promise.all([import('../recipe/load.js'), import('../journal/detect.js')]);
    pinned = await resolveRecipe(opts.recipe);
    await warnUnfinished(pinned, opts.recipe, (t) => io.stderr.write(`${t}\n`), io.env);
  }

  // Loaded only on a terminal: Ink and React are not needed by the non-interactive commands.
  const [{ runGuide }, { createGuideDeps }] = await Promise.all([import('../ui/run-guide.js'), import('../session/guide-deps.js')]);
  const deps = createGuideDeps({
    env: io.env,
    commandLine: ['restore-assistant', 'guide', ...(opts.recipe ? ['--recipe', opts.recipe] : [])],
  });

  try {
    const outcome = await runGuide(deps, {
      ...(pinned ? { pinned } : {}),
      stdin: io.stdin,
      stdout: io.stdout,
      stderr: io.stderr,
      env: io.env,
      subscribeInterrupts: (fn) => {
        const off = interrupts.subscribe(fn);
        return () => {
          off();
        };
      },
    });
    // Ink leaves the cursor at the end of its last frame: end the line so the shell prompt (or the
    // demo's comparison) starts on a line of its own.
    io.stdout.write('\n');
    // RESTORE_ASSISTANT_DEBUG=1: the stack of the error the guide ended on (as the other commands print it).
    const ended = outcome.state;
    if (io.env['RESTORE_ASSISTANT_DEBUG'] && ended.screen === 'error' && ended.error.stack) io.stderr.write(`${ended.error.stack}\n`);
    return outcome.exitCode;
  } finally {
    await deps.dispose().catch(() => undefined);
  }
}
