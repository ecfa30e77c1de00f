import { render } from 'ink-testing-library';
import { stripVTControlCharacters } from 'node:util';
import { App, type GuideOutcome } from '../../source/ui/App.js';
import { ThemeContext, themeFor } from '../../source/ui/theme.js';
import type { GuideDeps } from '../../source/ui/types.js';
import { initialState, type WizardState } from '../../source/ui/wizard.js';
import { keys } from './keys.js';

/** Rendering and keystroke helpers for the guided-interface tests (ink-testing-library, stripped frames). */


export interface Rendered {
  instance: ReturnType<typeof render>;
  /** The last frame without ANSI codes. */
  frame: () => string;
  /** Resolves when the guide ends. */
  outcome: Promise<GuideOutcome>;
  /** Wait until the stripped frame contains `text` (or the predicate holds); fails with the frame. */
  waitFor: (text: string | RegExp | ((frame: string) => boolean), timeoutMs?: number) => Promise<string>;
  /** Write keys, then wait until the frame shows `expect`. */
  press: (input: string, expect: string | RegExp | ((frame: string) => boolean)) => Promise<string>;
  /** Write text then Enter as separate writes (as a terminal delivers typing). */
  type: (text: string, expect: string | RegExp | ((frame: string) => boolean)) => Promise<string>;
  /** Pretend the terminal was resized. */
  resize: (columns: number, rows?: number) => void;
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

export function renderGuide(
  deps: GuideDeps,
  options: { initial?: WizardState; env?: NodeJS.ProcessEnv; subscribeInterrupts?: (fn: () => void) => () => void; onPrint?: (lines: string[]) => void } = {},
): Rendered {
  let resolveOutcome!: (o: GuideOutcome) => void;
  const outcome = new Promise<GuideOutcome>((r) => {
    resolveOutcome = r;
  });
  const instance = render(
    <ThemeContext.Provider value={themeFor(options.env ?? { NO_COLOR: '1' })}>
      <App deps={deps} initial={options.initial ?? initialState()} onDone={resolveOutcome} {...(options.onPrint ? { onPrint: options.onPrint } : {})} {...(options.subscribeInterrupts ? { subscribeInterrupts: options.subscribeInterrupts } : {})} />
    </ThemeContext.Provider>,
  );
  const frame = (): string => stripVTControlCharacters(instance.lastFrame() ?? '');
  const matches = (f: string, want: string | RegExp | ((frame: string) => boolean)): boolean =>
    typeof want === 'string' ? f.includes(want) : want instanceof RegExp ? want.test(f) : want(f);
  const waitFor = async (want: string | RegExp | ((frame: string) => boolean), timeoutMs = 5000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = frame();
      if (matches(f, want)) {
        await settle(); // let effects subscribe their input handlers before the next keystroke
        return frame();
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${String(want)} in frame:\n${f}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const press = async (input: string, want: string | RegExp | ((frame: string) => boolean)): Promise<string> => {
    instance.stdin.write(input);
    return waitFor(want);
  };
  const type = async (text: string, want: string | RegExp | ((frame: string) => boolean)): Promise<string> => {
    instance.stdin.write(text);
    await waitFor(text);
    instance.stdin.write(keys.enter);
    return waitFor(want);
  };
  const resize = (columns: number, rows = 24): void => {
    Object.defineProperty(instance.stdout, 'columns', { configurable: true, get: () => columns });
    Object.defineProperty(instance.stdout, 'rows', { configurable: true, get: () => rows });
    instance.stdout.emit('resize');
  };
  return { instance, frame, outcome, waitFor, press, type, resize };
}
