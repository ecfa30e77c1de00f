import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { BackupSet, StagedObject } from '../catalog/types.js';

/**
 * A set rejected while it was being staged (downloaded or decrypted): a truncated object, a
 * checksum mismatch, a wrong or missing key. Exit 3 like a rejected verification; it carries the
 * set and what was staged so the rejection is recorded as a verify run in the recipe's evidence
 * (source/offsite/record.ts), not only printed.
 */
export type StagingProblemCode = 'checksum-mismatch' | 'download-truncated' | 'decrypt-failed' | 'key-missing';

export class StagingRejection extends RestoreAssistantError {
  readonly code: StagingProblemCode;
  /** The set as listed (id, time, where it lives); set by the stager. */
  set: BackupSet | undefined;
  /** The objects (or local ciphertext files) staged before the rejection. */
  objects: StagedObject[] = [];
  /** The file the problem is about. */
  readonly file: string | undefined;

  constructor(code: StagingProblemCode, message: string, details: { problems?: string[]; next: string; file?: string }) {
    super(message, ExitCode.backupRejected, {
      problems: details.problems ?? [],
      untouched: 'Nothing was touched: the set is rejected before any step that changes a target.',
      next: details.next,
    });
    this.name = 'StagingRejection';
    this.code = code;
    this.file = details.file;
  }
}

/** Attach the set (and the staged objects) to a staging rejection on its way out. */
export function withSet(error: unknown, set: BackupSet, objects: StagedObject[]): unknown {
  if (error instanceof StagingRejection && !error.set) {
    error.set = set;
    error.objects = objects;
  }
  return error;
}
