import { stripVTControlCharacters } from 'node:util';
import { keys } from './keys.js';
import { spawn, type IPty } from 'node-pty';
import { cliBin } from './cli.js';

/** Driving the real built binary in a pseudo-terminal, as a person at a keyboard would. */

/** A program in a pseudo-terminal, with the text it has shown so far (ANSI stripped). */
export class Terminal {
  private raw = '';
  private mark = 0;
  readonly exited: Promise<number>;
  private constructor(private readonly pty: IPty) {
    pty.onData((d) => {
      this.raw += d;
    });
    this.exited = new Promise((resolve) => pty.onExit(({ exitCode }) => resolve(exitCode)));
  }

  /** Starts the CLI with args; CI is removed from the environment (Ink renders nothing with CI set). */
  static start(
    args: string[],
    env: NodeJS.ProcessEnv,
    cwd: string,
    size: { cols: number; rows: number } = { cols: 100, rows: 30 },
  ): Terminal {
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined && k !== 'CI' && k !== 'CONTINUOUS_INTEGRATION') childEnv[k] = v;
    return new Terminal(
      spawn(process.execPath, [cliBin(), ...args], { name: 'xterm-256color', cols: size.cols, rows: size.rows, cwd, env: childEnv }),
    );
  }

  /** Everything shown, ANSI stripped. */
  text(): string {
    return stripVTControlCharacters(this.raw);
  }

  /** Text shown since the last `waitFor` matched (so an old frame cannot satisfy a new wait). */
  private fresh(): string {
    return stripVTControlCharacters(this.raw.slice(this.mark));
  }

  async waitFor(want: string | RegExp | ((fresh: string) => boolean), timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.fresh();
      const hit = typeof want === 'string' ? f.includes(want) : want instanceof RegExp ? want.test(f) : want(f);
      if (hit) {
        this.mark = this.raw.length;
        // Let the frame settle (Ink renders at most every ~33 ms) before the next keystroke.
        await new Promise((r) => setTimeout(r, 150));
        return f;
      }
      if (Date.now() > deadline)
        throw new Error(`Timed out waiting for ${String(want)}; the terminal showed:\n${this.text().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  write(data: string): void {
    this.pty.write(data);
  }

  /** Type text and Enter as separate writes, as a terminal delivers typing. */
  async type(text: string): Promise<void> {
    this.write(text);
    await this.waitFor(text);
    this.write(keys.enter);
  }

  /** Send a signal to the program (from outside, as `kill` or a closing terminal would). */
  signal(signal: NodeJS.Signals): void {
    process.kill(this.pty.pid, signal);
  }

  kill(): void {
    try {
      this.pty.kill();
    } catch {
      // already gone
    }
  }
}
