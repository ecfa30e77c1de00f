import { notYet } from './not-yet.js';

export async function listCommand(..._args: unknown[]): Promise<number> {
  return notYet('listCommand');
}

