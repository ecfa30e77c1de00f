#!/usr/bin/env node
import { formatError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { main } from './cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${formatError(error)}\n`);
    process.exitCode = ExitCode.internal;
  },
);
