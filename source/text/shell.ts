/**
 * POSIX shell quoting, for text a person reads or pastes (a plan's commands, manual rollback steps,
 * a "Next:" fix). Nothing the tool runs goes through a shell: commands are argv arrays
 * (source/exec/run.ts). SQL identifiers and literals are quoted in targets/postgres.ts.
 */

/** One argument, quoted when it has anything but plainly safe characters. */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_\-+=.,/:@%]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
