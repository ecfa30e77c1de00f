import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * Helpers staging shares with encrypted local sets (local.ts), apart from stage.ts so that a
 * restore from local disk does not load the AWS SDK stage.ts needs (issue 14: memory, start-up).
 */

/** A set or recipe name as one safe path component. */
export const safeName = (id: string): string =>
  id
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 120) || 'set';

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
