import { notYet } from './not-yet.js';

export async function drillCommand(..._args: unknown[]): Promise<number> {
  return notYet('drillCommand');
}

