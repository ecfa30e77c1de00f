import { notYet } from './not-yet.js';

export async function evidenceVerifyCommand(..._args: unknown[]): Promise<number> {
  return notYet('evidenceVerifyCommand');
}

