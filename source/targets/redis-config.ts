import { lstat, open } from 'node:fs/promises';
import path from 'node:path';
import type { RedisTarget } from '../recipe/schema.js';

/**
 * What a stopped Redis will do when it starts, learned without the server (issue 11): its config
 * file (the recipe's `configFile`, else Debian's /etc/redis/redis.conf when the recipe's service is
 * Debian's `redis-server` unit), else the files in its data dir (an `appendonlydir` there means the
 * AOF was on). Read-only; the config file is read as data (no `include` is followed, nothing runs).
 */

/** Debian's redis-server package keeps its config here. */
export const DEBIAN_REDIS_CONF = '/etc/redis/redis.conf';

/** Settings of redis.conf the restore depends on; absent when the file does not set them. */
export interface RedisConfSettings {
  dir?: string;
  dbfilename?: string;
  appendonly?: boolean;
  appenddirname?: string;
  appendfilename?: string;
}

/** How Redis reads a config line: words split on blanks, "double" (with \ escapes) or 'single' quoted. */
function confWords(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    let word = '';
    const q = line[i];
    if (q === '"' || q === "'") {
      i++;
      while (i < line.length && line[i] !== q) {
        if (q === '"' && line[i] === '\\' && i + 1 < line.length) {
          const n = line[i + 1]!;
          word += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          i += 2;
          continue;
        }
        word += line[i];
        i++;
      }
      if (i >= line.length) return undefined; // unbalanced quotes: Redis refuses the line too
      i++;
    } else {
      while (i < line.length && !/\s/.test(line[i]!)) word += line[i++];
    }
    out.push(word);
  }
  return out;
}

/** The restore-relevant settings of a redis.conf text; the last occurrence wins (as in Redis). */
export function parseRedisConf(text: string): RedisConfSettings {
  const out: RedisConfSettings = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const words = confWords(line);
    if (!words || words.length !== 2) continue;
    const [key, value] = [words[0]!.toLowerCase(), words[1]!];
    if (key === 'dir') {
      // A relative dir is relative to Redis's working directory, which is not known here.
      if (path.posix.isAbsolute(value)) out.dir = value;
    } else if (key === 'dbfilename') out.dbfilename = value;
    else if (key === 'appendonly') {
      if (/^yes$/i.test(value)) out.appendonly = true;
      else if (/^no$/i.test(value)) out.appendonly = false;
    } else if (key === 'appenddirname') out.appenddirname = value;
    else if (key === 'appendfilename') out.appendfilename = value;
  }
  return out;
}

/** The config file to read for this recipe's Redis, or undefined (containers: not readable from the host). */
export function redisConfigFile(t: RedisTarget): string | undefined {
  if (t.configFile) return t.configFile;
  if (t.exec.kind !== 'host') return undefined;
  const svc = [...t.service.stop, ...t.service.start];
  return svc.some((a) => a === 'redis-server' || a === 'redis-server.service') ? DEBIAN_REDIS_CONF : undefined;
}

/** At most this much of a config file is read (redis.conf is ~100 KiB). */
const MAX_CONF_BYTES = 4 * 1024 * 1024;

export interface OfflineRedisFacts {
  configFile?: string;
  /** Why the config file could not be read (not found, permission...). */
  configError?: string;
  conf: RedisConfSettings;
  /** Whether <dir>/<appenddirname> (or the single-file AOF) exists, when the dir is known and on this host. */
  aofFound?: boolean;
}

async function readSmall(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    const buf = Buffer.alloc(Math.min(st.size, MAX_CONF_BYTES));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

async function present(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** What can be learned about a stopped Redis from its config file and its data dir. Never throws. */
export async function offlineRedisFacts(t: RedisTarget): Promise<OfflineRedisFacts> {
  const out: OfflineRedisFacts = { conf: {} };
  const file = redisConfigFile(t);
  if (file) {
    out.configFile = file;
    try {
      out.conf = parseRedisConf(await readSmall(file));
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      out.configError = e.code === 'ENOENT' ? 'it does not exist' : e.code === 'EACCES' ? 'permission denied' : e.message;
    }
  }
  const dir = out.conf.dir ?? t.dataDir;
  if (dir && t.exec.kind === 'host' && path.isAbsolute(dir)) {
    const dirname = out.conf.appenddirname ?? t.appenddirname ?? 'appendonlydir';
    const single = out.conf.appendfilename ?? 'appendonly.aof';
    out.aofFound = (await present(path.join(dir, dirname))) || (await present(path.join(dir, single)));
  }
  return out;
}
