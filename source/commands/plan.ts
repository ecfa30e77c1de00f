import { notYet } from './not-yet.js';

export async function planCommand(..._args: unknown[]): Promise<number> {
  return notYet('planCommand');
}

