/** The one key map of the tests: what a terminal sends for each key (ink-testing-library and the pty tests alike). */
export const keys = {
  enter: '\r',
  escape: '\u001B',
  up: '\u001B[A',
  down: '\u001B[B',
  pageUp: '\u001B[5~',
  pageDown: '\u001B[6~',
  ctrlC: '\u0003',
  backspace: '\u007F',
} as const;
