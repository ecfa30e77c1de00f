#!/usr/bin/env node
import { formatError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { main } from './cli.js';
import { installLastResort } from './last-resort.js';

// An error nothing handled is a bug: say so, release the locks unless a restore is in flight, exit 70.
installLastResort();

let settled = false;
main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (error: unknown) => {
    settled = true;
    process.stderr.write(`${formatError(error)}\n`);
    process.exitCode = ExitCode.internal;
  },
);

// A command whose work never settles (a promise nothing resolves) would otherwise end with exit 0
// as if it had succeeded: say so and exit `internal` instead.
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write(
    'Internal error: the command stopped before finishing (nothing was left to run). This is a bug; ' +
      'if it was a restore, run `restore-assistant recover` to see the state of the targets.\n',
  );
  process.exitCode = ExitCode.internal;
});
