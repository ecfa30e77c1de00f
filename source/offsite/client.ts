import { ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { S3Location } from '../recipe/schema.js';
import { sanitizeText } from '../text/sanitize.js';
import { offsiteUrl } from './url.js';

/**
 * The S3 client of an off-site source (@aws-sdk/client-s3). Credentials come from the variables the
 * recipe names (accessKeyIdEnv, secretAccessKeyEnv, sessionTokenEnv), else from the AWS SDK's own
 * chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles); never from the
 * recipe or the command line. Checksums are the tool's own (sha256 of every object), so the SDK's
 * optional CRC checks are off: many S3-compatible stores do not implement them.
 */

// The SDK warns on every run that versions published after January 2027 need Node 22; this tool
// pins a version that supports Node 20, so the warning only adds noise to the operator's terminal.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
  lastModified?: string;
}

export { offsiteUrl } from './url.js';

/**
 * `field` names the recipe section in messages (evidence.upload shares this client); `maxAttempts`
 * is the SDK's own retries per request (evidence upload retries a whole run itself, with backoff).
 */
export function offsiteClient(
  o: S3Location,
  env: NodeJS.ProcessEnv = process.env,
  opts: { field?: string; maxAttempts?: number } = {},
): S3Client {
  const field = opts.field ?? 'backups.offsite';
  const config: S3ClientConfig = {
    region: o.region,
    forcePathStyle: o.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: opts.maxAttempts ?? 4,
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  };
  if (o.accessKeyIdEnv || o.secretAccessKeyEnv) {
    const missing = [o.accessKeyIdEnv, o.secretAccessKeyEnv, o.sessionTokenEnv].filter((n): n is string => Boolean(n) && !env[n!]);
    if (!o.accessKeyIdEnv || !o.secretAccessKeyEnv || missing.length > 0) {
      throw new RestoreAssistantError(
        `The off-site credentials for ${offsiteUrl(o)} are not in the environment.`,
        ExitCode.preflightFailed,
        {
          problems: [
            !o.accessKeyIdEnv || !o.secretAccessKeyEnv
              ? `${field} names only one of accessKeyIdEnv / secretAccessKeyEnv: name both, or neither (the AWS SDK chain)`
              : `not set: ${missing.join(', ')}`,
          ],
          untouched: 'Nothing was touched.',
          next: `Export ${[o.accessKeyIdEnv, o.secretAccessKeyEnv].filter(Boolean).join(' and ')} (e.g. from your secret store) and run the command again.`,
        },
      );
    }
    config.credentials = {
      accessKeyId: env[o.accessKeyIdEnv]!,
      secretAccessKey: env[o.secretAccessKeyEnv]!,
      ...(o.sessionTokenEnv ? { sessionToken: env[o.sessionTokenEnv]! } : {}),
    };
  }
  return new S3Client(config);
}

/** The error for an S3 call that failed: what failed, nothing touched, what to check. */
export function offsiteError(o: S3Location, what: string, error: unknown, field = 'backups.offsite'): RestoreAssistantError {
  if (error instanceof RestoreAssistantError) return error;
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const why = sanitizeText(`${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(error)}`, 300);
  const denied = status === 403 || /AccessDenied|SignatureDoesNotMatch|InvalidAccessKeyId|credential/i.test(why);
  return new RestoreAssistantError(`Cannot ${what} ${offsiteUrl(o)}: ${why}`, ExitCode.preflightFailed, {
    untouched: 'Nothing was touched.',
    next: denied
      ? `Check the credentials (${o.accessKeyIdEnv ?? 'AWS_ACCESS_KEY_ID'} / ${o.secretAccessKeyEnv ?? 'AWS_SECRET_ACCESS_KEY'}) and the bucket policy, then run the command again.`
      : `Check ${field} (endpoint ${o.endpoint ?? 'AWS'}, region ${o.region}, bucket ${o.bucket}) and the network, then run the command again.`,
    cause: error,
  });
}

/** Every object under the prefix, paging through ListObjectsV2 (1000 keys a page) until the end. */
export async function listObjects(client: S3Client, o: S3Location, maxObjects = 1_000_000): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: o.bucket,
          ...(o.prefix ? { Prefix: o.prefix } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const c of page.Contents ?? []) {
        if (!c.Key || c.Key.endsWith('/')) continue;
        out.push({
          key: c.Key,
          size: c.Size ?? 0,
          etag: c.ETag ?? '',
          ...(c.LastModified ? { lastModified: c.LastModified.toISOString() } : {}),
        });
      }
      const next = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !next) throw new Error('the listing is truncated but carries no continuation token');
      token = next;
      if (out.length > maxObjects) throw new Error(`more than ${maxObjects} objects under the prefix; narrow backups.offsite.prefix`);
    } while (token);
  } catch (error) {
    throw offsiteError(o, 'list', error);
  }
  return out;
}
