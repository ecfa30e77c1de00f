import { notYet } from './not-yet.js';

export async function guideCommand(..._args: unknown[]): Promise<number> {
  return notYet('guideCommand');
}

