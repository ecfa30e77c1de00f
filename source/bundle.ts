import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Set to `true` by scripts/build.ts in the shipped CLI's bundle (esbuild `define`); not defined in
 * tsc output, from source (tsx), or in the separate self-contained entries (service-ctl, demo app).
 */
declare const RESTORE_ASSISTANT_BUNDLE: boolean | undefined;

/** Whether this code runs from a chunk of the shipped bundle (dist/chunk-<hash>.js). */
export const inBundle: boolean = typeof RESTORE_ASSISTANT_BUNDLE !== 'undefined' && RESTORE_ASSISTANT_BUNDLE;

/**
 * The file of a module that is also run as its own process (`node <file>`): the module itself
 * (`metaUrl`, tsc output or source), or, from a chunk of the bundle, its separate entry at
 * `<dist>/<entry>` (the chunks sit in <dist> itself: scripts/build.ts).
 */
export function entryFile(metaUrl: string, entry: string): string {
  const self = fileURLToPath(metaUrl);
  return inBundle ? path.join(path.dirname(self), entry) : self;
}
