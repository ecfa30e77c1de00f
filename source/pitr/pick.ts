import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { raCommand } from '../text/next.js';
import { sanitizeText } from '../text/sanitize.js';
import type { PitrCatalog } from './catalog.js';
import { chooseBase, type PitrTarget } from './target.js';
import type { PitrBase } from './window.js';

/** The base for `ref` ("latest" or an id) and a target: the newest that reaches the target when ref is "latest". */
export function pickBase(cat: PitrCatalog, ref: string, target: PitrTarget, listCommand = raCommand('list', '--root', cat.root)): PitrBase {
  if (ref !== 'latest') {
    const b = cat.bases.find((x) => x.set.id === ref);
    if (!b)
      throw new RestoreAssistantError(`No base backup "${sanitizeText(ref, 80)}" in ${cat.root}/base.`, ExitCode.usage, {
        problems: cat.bases.map((x) => `base: ${sanitizeText(x.set.id, 80)}`),
        untouched: 'Nothing was touched.',
        next: `Pick one of the bases \`${listCommand}\` shows, or "latest".`,
      });
    return b;
  }
  const chosen = chooseBase(cat.bases, target);
  if (chosen) return chosen;
  const any = [...cat.bases].sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime))[0];
  if (any) return any;
  throw new RestoreAssistantError(`No base backups in ${cat.root}/base.`, ExitCode.backupRejected, {
    untouched: 'Nothing was touched.',
    next: 'Take a base backup (pg_basebackup -Ft -D <root>/base/<stamp>), then run this again.',
  });
}
