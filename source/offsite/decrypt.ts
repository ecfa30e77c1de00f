import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { RestoreAssistantError } from '../errors.js';
import { StagingRejection } from './rejection.js';
import { ExitCode } from '../exit-codes.js';
import type { Redactor } from '../exec/redact.js';
import { run } from '../exec/run.js';
import { createExclusive } from '../exec/safe-fs.js';
import { expandHome } from '../recipe/load.js';
import type { EncryptionKeys } from '../recipe/schema.js';
import { sanitizeText } from '../text/sanitize.js';
import type { Encryption } from './catalog.js';

/**
 * Decrypting a staged component: gpg (public-key or symmetric) or age, streamed from the staged
 * ciphertext into the staged set (mode 0600; the restore needs a file: pg_restore and Redis read
 * one). Secrets never reach argv: the gpg passphrase goes on stdin (--passphrase-fd 0, pinentry
 * loopback) to a gpg whose GNUPGHOME is private to the staging dir; age reads its identity file
 * (-i FILE: a path, not a secret). Both authenticate what they decrypt (gpg's MDC / AEAD, age's
 * ChaCha20-Poly1305 chunks): a failed decryption is a rejected set, exit 3, before anything
 * destructive, naming the key that was tried.
 */

export interface DecryptResult {
  /** The key that was used, for the evidence and messages: never a secret. */
  keyUsed: string;
}

function rejected(file: string, tool: Encryption, tried: string, detail: string, next: string): StagingRejection {
  return new StagingRejection(
    tried === 'none' || /is not set/.test(detail) ? 'key-missing' : 'decrypt-failed',
    `${path.basename(file)} cannot be decrypted with ${tool}: ${sanitizeText(detail, 300)}`,
    { problems: [`key tried: ${tried}`], next, file },
  );
}

async function gpgFingerprints(home: string, redact: Redactor): Promise<string[]> {
  const r = await run(['gpg', '--batch', '--homedir', home, '--with-colons', '--list-secret-keys'], { redact, timeoutMs: 30_000 });
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('fpr:'))
    .map((l) => l.split(':')[9] ?? '')
    .filter(Boolean);
}

/** A private GNUPGHOME (0700) in the staging dir, with the recipe's secret key imported. */
async function gpgHome(
  stagingDir: string,
  keys: NonNullable<EncryptionKeys['gpg']>,
  env: NodeJS.ProcessEnv,
  redact: Redactor,
): Promise<string> {
  const home = path.join(stagingDir, 'gnupg');
  await rm(home, { recursive: true, force: true });
  await mkdir(home, { mode: 0o700 });
  await chmod(home, 0o700);
  if (keys.secretKeyFile) {
    const file = path.resolve(expandHome(keys.secretKeyFile));
    const passphrase = keys.passphraseEnv ? env[keys.passphraseEnv] : undefined;
    const r = await run(
      [
        'gpg',
        '--batch',
        '--no-tty',
        '--homedir',
        home,
        '--pinentry-mode',
        'loopback',
        ...(passphrase !== undefined ? ['--passphrase-fd', '0'] : []),
        '--import',
        file,
      ],
      { redact, timeoutMs: 60_000, ...(passphrase !== undefined ? { input: `${passphrase}\n` } : {}) },
    );
    if (!r.ok)
      throw new RestoreAssistantError(`The gpg secret key file ${file} cannot be imported.`, ExitCode.preflightFailed, {
        problems: r.stderrTail.slice(-3).map((l) => sanitizeText(l, 200)),
        untouched: 'Nothing was touched.',
        next: 'Point backups.encryption.gpg.secretKeyFile at an exported secret key (gpg --export-secret-keys --armor KEYID > key.asc, mode 0600).',
      });
  }
  return home;
}

/** Stops the gpg-agent a private GNUPGHOME started (it would outlive the run). */
export async function stopGpgAgent(home: string, redact: Redactor): Promise<void> {
  await run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent'], { redact, timeoutMs: 15_000 }).catch(() => undefined);
}

export async function decryptFile(
  tool: Encryption,
  input: string,
  output: string,
  ctx: { keys: EncryptionKeys | undefined; stagingDir: string; env: NodeJS.ProcessEnv; redact: Redactor; label: string },
): Promise<DecryptResult> {
  // The plaintext file is ours (created exclusively, 0600, in a 0700 dir, no symlink followed) and
  // gpg/age write the plaintext to their stdout, which goes into it as bytes (run's binary stdout):
  // neither tool is handed a path to open or overwrite.
  await rm(output, { force: true });
  const handle = await createExclusive(output, 0o600);
  const plaintext = (): Writable => handle.createWriteStream();
  try {
    if (tool === 'age') {
      const idFile = ctx.keys?.age?.identityFile;
      if (!idFile) {
        throw rejected(
          input,
          'age',
          'none',
          'the recipe names no age identity',
          'Set backups.encryption.age.identityFile to the age identity (age-keygen output) of this backup, then verify again.',
        );
      }
      const id = path.resolve(expandHome(idFile));
      const pub = await run(['age-keygen', '-y', id], { redact: ctx.redact, timeoutMs: 15_000 });
      const tried = `age identity ${id}${pub.ok ? ` (recipient ${pub.stdout.trim().split('\n')[0]})` : ''}`;
      const r = await run(['age', '--decrypt', '-i', id, input], {
        redact: ctx.redact,
        stdout: 'buffer',
        stdoutTo: plaintext(),
        timeoutMs: 6 * 3600_000,
        streamLines: false,
      });
      if (!r.ok) {
        throw rejected(
          input,
          'age',
          tried,
          r.stderrTail.slice(-2).join(' | ') || `age exited with ${r.exitCode ?? r.signal}`,
          `Check that ${ctx.label} was encrypted to this identity's recipient (age-keygen -y ${id}) and that the file is complete; or set backups.encryption.age.identityFile to the right identity.`,
        );
      }
      return { keyUsed: tried };
    }
    const keys = ctx.keys?.gpg;
    if (!keys || (!keys.passphraseEnv && !keys.secretKeyFile)) {
      throw rejected(
        input,
        'gpg',
        'none',
        'the recipe names no gpg key or passphrase',
        'Set backups.encryption.gpg.passphraseEnv (symmetric) or secretKeyFile (public-key), then verify again.',
      );
    }
    const passphrase = keys.passphraseEnv ? ctx.env[keys.passphraseEnv] : undefined;
    if (keys.passphraseEnv && passphrase === undefined && !keys.secretKeyFile) {
      throw rejected(
        input,
        'gpg',
        `passphrase from $${keys.passphraseEnv}`,
        `$${keys.passphraseEnv} is not set`,
        `Export ${keys.passphraseEnv} and run the command again.`,
      );
    }
    const home = await gpgHome(ctx.stagingDir, keys, ctx.env, ctx.redact);
    try {
      const fprs = keys.secretKeyFile ? await gpgFingerprints(home, ctx.redact) : [];
      const tried = [
        ...(keys.secretKeyFile
          ? [`secret key ${path.resolve(expandHome(keys.secretKeyFile))}${fprs.length ? ` (fingerprint ${fprs.join(', ')})` : ''}`]
          : []),
        ...(keys.passphraseEnv ? [`passphrase from $${keys.passphraseEnv}`] : []),
      ].join('; ');
      const argv = ['gpg', '--batch', '--no-tty', '--homedir', home, '--pinentry-mode', 'loopback'];
      if (passphrase !== undefined) argv.push('--passphrase-fd', '0');
      // Refuse what gpg cannot authenticate (no MDC): a modified ciphertext must not decrypt "fine".
      argv.push('--no-symkey-cache', '--status-fd', '2', '--decrypt', input);
      const r = await run(argv, {
        redact: ctx.redact,
        stdout: 'buffer',
        stdoutTo: plaintext(),
        timeoutMs: 6 * 3600_000,
        streamLines: false,
        tailLines: 60,
        ...(passphrase !== undefined ? { input: `${passphrase}\n` } : {}),
      });
      const status = r.stderrTail.join('\n');
      const unprotected = /\[GNUPG:\] DECRYPTION_FAILED|\[GNUPG:\] BADMDC|message was not integrity protected/.test(status);
      const ok = r.ok && /\[GNUPG:\] DECRYPTION_OKAY/.test(status) && !unprotected;
      if (!ok) {
        const human = r.stderrTail.filter((l) => !l.startsWith('[GNUPG:]')).slice(-2);
        const forKey = /\[GNUPG:\] ENC_TO ([0-9A-F]+)/.exec(status)?.[1];
        throw rejected(
          input,
          'gpg',
          tried,
          [...human, ...(forKey ? [`the file is encrypted to key ID ${forKey}`] : [])].join(' | ') ||
            `gpg exited with ${r.exitCode ?? r.signal}`,
          `Check that ${ctx.label} was encrypted for this key or passphrase and that the file is complete; fix backups.encryption.gpg, then verify again.`,
        );
      }
      return { keyUsed: tried };
    } finally {
      await stopGpgAgent(home, ctx.redact);
    }
  } catch (error) {
    await rm(output, { force: true });
    throw error;
  } finally {
    await handle.close().catch(() => undefined);
    await chmod(output, 0o600).catch(() => undefined);
  }
}
