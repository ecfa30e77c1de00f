import { render } from 'ink';
import { App, type GuideOutcome } from './App.js';
import { ThemeContext, themeFor } from './theme.js';
import type { GuideDeps } from './types.js';
import { initialState } from './wizard.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { ExitCode } from '../exit-codes.js';

export interface RunGuideOptions {
  pinned?: LoadedRecipe;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
  subscribeInterrupts?: (onInterrupt: () => void) => () => void;
}

/** Render the guided flow until it ends; resolves with its outcome (the exit code is decided in the wizard). */
export async function runGuide(deps: GuideDeps, options: RunGuideOptions = {}): Promise<GuideOutcome> {
  let outcome: GuideOutcome | undefined;
  let printed: string[] | undefined;
  const initial = initialState(options.pinned ? { pinned: options.pinned } : {});
  const instance = render(
    <ThemeContext.Provider value={themeFor(options.env ?? process.env)}>
      <App
        deps={deps}
        initial={initial}
        onDone={(o) => {
          outcome = o;
        }}
        onPrint={(lines) => {
          printed = lines;
        }}
        {...(options.subscribeInterrupts ? { subscribeInterrupts: options.subscribeInterrupts } : {})}
      />
    </ThemeContext.Provider>,
    {
      exitOnCtrlC: false,
      ...(options.stdin ? { stdin: options.stdin } : {}),
      ...(options.stdout ? { stdout: options.stdout } : {}),
      ...(options.stderr ? { stderr: options.stderr } : {}),
    },
  );
  await instance.waitUntilExit();
  // p on the summary: the incident block once more, plain text (no colour, no frame) to paste.
  if (printed) (options.stdout ?? process.stdout).write(`\n${printed.join('\n')}\n`);
  return outcome ?? { exitCode: ExitCode.internal, state: initial };
}
