import type { S3Location } from '../recipe/schema.js';

/**
 * s3://bucket/prefix, for messages. Its own module, free of the AWS SDK, so that code which only
 * names a bucket in a message (a drill from local disk, `drill --pick`) does not load the SDK
 * (about 15 MB and a second of start-up; issue 14). The SDK itself is in ./client.js.
 */
export function offsiteUrl(o: S3Location): string {
  return `s3://${o.bucket}/${o.prefix}`;
}
