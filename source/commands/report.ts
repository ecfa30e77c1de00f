import { notYet } from './not-yet.js';

export async function reportCommand(..._args: unknown[]): Promise<number> {
  return notYet('reportCommand');
}

