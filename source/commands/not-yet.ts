import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';

/** Placeholder for commands still being built. */
export function notYet(name: string): never {
  throw new RestoreAssistantError(`\`${name}\` is not implemented yet.`, ExitCode.usage, { untouched: 'Nothing was touched.' });
}
