import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

/**
 * The AWS SDK (@aws-sdk/client-s3: ~15 MB, about a second of start-up) is loaded only when a run
 * reaches a bucket (issue 14): importing a command module for a restore or a drill from local disk
 * must not pull it in. Each module is imported in a fresh node (through tsx, as the sources) with a
 * module-resolution hook that refuses any @aws-sdk/ specifier, so a static import anywhere in the
 * module's graph fails the import and names the module that made it. The control: the off-site
 * client itself does fail under the same hook (the hook is live).
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

const hooks = `export async function resolve(specifier, context, next) {
  if (/^@aws-sdk\\//.test(specifier)) throw new Error('AWS SDK loaded: ' + specifier + ' imported by ' + context.parentURL);
  return next(specifier, context);
}`;
const child = `import { register } from 'node:module';
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});
await import(process.argv[1]);
process.stdout.write('imported without the AWS SDK\\n');`;

async function importAlone(module: string) {
  const url = pathToFileURL(join(root, module)).href;
  return execa(process.execPath, ['--import', tsx, '--input-type=module', '-e', child, url], { reject: false, cwd: root });
}

describe('the AWS SDK is not loaded by the local-disk paths', () => {
  it.each(['source/drill/pick.ts', 'source/commands/drill.ts', 'source/commands/drill-pitr.ts', 'source/commands/restore.ts'])(
    'importing %s does not load @aws-sdk',
    async (module) => {
      const result = await importAlone(module);
      expect(result.stderr).not.toMatch(/AWS SDK loaded/);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toContain('imported without the AWS SDK');
    },
    30_000,
  );

  it('control: the off-site client, which does import the SDK, fails under the same hook', async () => {
    const result = await importAlone('source/offsite/client.ts');
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/AWS SDK loaded: @aws-sdk\/client-s3 imported by file:.*\/source\/offsite\/client\.ts/);
  }, 30_000);
});
