import { readFile } from 'node:fs/promises';

/** The uid of an OS user from /etc/passwd (undefined when it is not there). */
export async function lookupUid(name: string): Promise<number | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 7) {
      const uid = Number(f[2]);
      return Number.isInteger(uid) ? uid : undefined;
    }
  }
  return undefined;
}
