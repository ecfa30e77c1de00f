import { notYet } from './not-yet.js';

export async function demoCommand(..._args: unknown[]): Promise<number> {
  return notYet('demoCommand');
}

