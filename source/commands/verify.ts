import { notYet } from './not-yet.js';

export async function verifyCommand(..._args: unknown[]): Promise<number> {
  return notYet('verifyCommand');
}

