import { notYet } from './not-yet.js';

export async function restoreCommand(..._args: unknown[]): Promise<number> {
  return notYet('restoreCommand');
}

