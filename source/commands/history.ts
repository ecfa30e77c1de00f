import { notYet } from './not-yet.js';

export async function historyCommand(..._args: unknown[]): Promise<number> {
  return notYet('historyCommand');
}

