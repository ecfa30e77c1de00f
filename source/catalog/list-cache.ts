import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inBundle } from '../bundle.js';
import { createRedactor } from '../exec/redact.js';
import { createExclusive } from '../exec/safe-fs.js';
import { stateDir } from '../state/paths.js';
import { toolVersion } from '../version.js';
import { buildDirSet } from './sets.js';
import { COMPONENT_KINDS, type Layout } from './types.js';

/**
 * The `list` cache: what one set directory (story-portal, or a flat set directory) was cataloged
 * as, kept in the machine-wide state directory so that listing 1,000 sets does not read every
 * metadata.txt, checksum file and sidecar again.
 *
 * It is never trusted blindly (docs/architecture.md, "The list cache"):
 * - An entry is used only when every file it summarises is unchanged: the set directory and each of
 *   its entries (and the files of a pg_dump -Fd directory in it) have the same device, inode, size,
 *   mtime and ctime (nanoseconds) as when the entry was made. Adding, removing or renaming a file
 *   changes the directory's mtime; rewriting one changes its size, mtime and ctime (ctime cannot be
 *   set back by anyone but root). A set whose files changed in the last 2 s is not cached (the
 *   file system's clock is coarser than its timestamps' resolution).
 * - The stamps are taken before the set is cataloged, so a file that changes while it is read is
 *   caught the next time.
 * - The file is read only when it is a regular file owned by us with one link, under 64 MiB, in a
 *   state directory owned by us that nobody else can write; it is JSON whose every entry is checked
 *   field by field. Anything else (corrupt, foreign-owned, another tool version or another build of
 *   the catalog code) is ignored and rewritten.
 * - It is written atomically: a new file (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, exec/safe-fs.ts)
 *   renamed over the old one. A failure to read or write it never fails a listing.
 * - It holds what `list --json` prints (paths, sizes, digests, metadata.txt keys, warnings) and
 *   never a secret: a set with anything credential-shaped in it (exec/redact.ts) is not cached.
 * - Only `list` uses it. `verify`, `restore`, `plan` and `drill` catalog the set afresh, and verify
 *   hashes the files themselves: the cache feeds listing and ordering, never a verdict.
 */

export const LIST_CACHE_FORMAT = 'restore-assistant/list-cache@1';
const MAX_CACHE_BYTES = 64 * 1024 * 1024;
/** Changes this recent are too close to the clock's granularity to be told apart: not cached. */
const RACY_MS = 2_000;
/** A set directory with more entries than this is cataloged every time. */
const MAX_STAMPS = 10_000;
/** The catalog code whose output is cached: another build of any of these is another cache. */
const CODE_MODULES = ['sets', 'files', 'metadata', 'checksums', 'names', 'list-cache'];

type DirSetValue = Awaited<ReturnType<typeof buildDirSet>>;

/**
 * What identifies a file's bytes without reading them, from stat(2) (following symlinks, as the
 * catalog does): [name relative to the set directory ('' for the directory itself),
 * 'dev:ino:size:mtimeNs:ctimeNs:d|f'].
 */
type Stamp = [string, string];

interface CacheEntry {
  layout: Layout;
  nameTime: string | null;
  deps: Stamp[];
  value: DirSetValue;
}

interface CacheFile {
  format: typeof LIST_CACHE_FORMAT;
  tool: string;
  code: string;
  root: string;
  entries: Record<string, CacheEntry>;
}

export interface ListCache {
  /** buildDirSet, answered from the cache when nothing the entry summarises changed. */
  dirSet(dir: string, root: string, layout: Layout, nameTime: string | undefined): Promise<DirSetValue>;
  /** Write the cache when anything changed. Never throws. */
  save(): Promise<void>;
  readonly stats: { hits: number; misses: number; ignored?: string };
}

function myUid(): number {
  return process.getuid?.() ?? -1;
}

function stampOf(rel: string, s: BigIntStats): Stamp {
  return [rel, `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.isDirectory() ? 'd' : 'f'}`];
}

function racy(s: BigIntStats, now: bigint): boolean {
  const limit = now - BigInt(RACY_MS) * 1_000_000n;
  return s.mtimeNs > limit || s.ctimeNs > limit;
}

/**
 * Stamps of everything buildDirSet reads in `dir`: the directory, each entry, and the files of a
 * pg_dump -Fd directory among them. Undefined when the set should not be cached (an entry that
 * cannot be stat'ed, a change in the last 2 s, too many entries).
 */
async function stampDir(dir: string): Promise<Stamp[] | undefined> {
  const now = BigInt(Date.now()) * 1_000_000n;
  try {
    const top = await stat(dir, { bigint: true });
    if (!top.isDirectory() || racy(top, now)) return undefined;
    const names = await readdir(dir);
    if (names.length > MAX_STAMPS) return undefined;
    const stamps: Stamp[] = [stampOf('', top)];
    let ok = true;
    await Promise.all(
      names.map(async (name) => {
        const full = path.join(dir, name);
        const s = await stat(full, { bigint: true });
        if (racy(s, now)) ok = false;
        stamps.push(stampOf(name, s));
        if (!s.isDirectory()) return;
        // classifyPath looks for toc.dat (the directory's mtime covers it coming and going);
        // a pg_dump -Fd directory's size is the sum of its files.
        const inner = await readdir(full);
        if (!inner.includes('toc.dat')) return;
        if (inner.length > MAX_STAMPS) ok = false;
        else
          for (const i of inner) {
            const fs = await stat(path.join(full, i), { bigint: true });
            if (racy(fs, now)) ok = false;
            stamps.push(stampOf(`${name}/${i}`, fs));
          }
      }),
    );
    if (!ok) return undefined;
    return stamps.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  } catch {
    return undefined;
  }
}

async function depsUnchanged(dir: string, deps: Stamp[]): Promise<boolean> {
  const results = await Promise.all(
    deps.map(async ([rel, was]) => {
      try {
        return stampOf(rel, await stat(rel === '' ? dir : path.join(dir, rel), { bigint: true }))[1] === was;
      } catch {
        return false;
      }
    }),
  );
  return results.every(Boolean);
}

// ---- checking what was read back: every field, as hostile as the backups themselves ----

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const optional = (v: unknown, check: (x: unknown) => boolean): boolean => v === undefined || check(v);
const FORMATS = new Set(['pg-plain', 'pg-plain-gz', 'pg-custom', 'pg-directory', 'redis-rdb', 'prometheus-tar-gz', 'pg-base-tar']);
const CHECKSUMS = new Set(['verified', 'mismatch', 'present', 'absent']);
const SOURCES = new Set(['sidecar', 'SHA256SUMS', 'metadata']);

function inside(p: string, dir: string): boolean {
  return (
    p === dir ||
    (p.startsWith(`${dir}${path.sep}`) &&
      !p
        .slice(dir.length + 1)
        .split(path.sep)
        .includes('..'))
  );
}

const STAMP = /^\d{1,20}:\d{1,20}:\d{1,20}:\d{1,30}:\d{1,30}:[df]$/;

/** A name inside the set directory: '' (itself), a name, or dir/name (a pg_dump -Fd directory's file). */
function validRel(rel: string): boolean {
  if (rel === '') return true;
  const parts = rel.split('/');
  return parts.length <= 2 && parts.every((x) => x !== '' && x !== '.' && x !== '..' && !x.includes('\0'));
}

function validStamp(v: unknown): v is Stamp {
  return Array.isArray(v) && v.length === 2 && isStr(v[0]) && validRel(v[0]) && isStr(v[1]) && STAMP.test(v[1]);
}

function validComponent(v: unknown, dir: string): boolean {
  return (
    isObj(v) &&
    (COMPONENT_KINDS as readonly unknown[]).includes(v['kind']) &&
    FORMATS.has(v['format'] as string) &&
    isStr(v['path']) &&
    inside(v['path'], dir) &&
    isCount(v['size']) &&
    CHECKSUMS.has(v['checksum'] as string) &&
    optional(v['expectedSha256'], (x) => isStr(x) && /^[0-9a-f]{64}$/.test(x)) &&
    optional(v['checksumSource'], (x) => SOURCES.has(x as string)) &&
    optional(v['encryption'], (x) => x === 'gpg' || x === 'age') &&
    optional(v['database'], isStr) &&
    optional(v['time'], (x) => isStr(x) && !Number.isNaN(Date.parse(x)))
  );
}

function validValue(v: unknown, dir: string, root: string, layout: Layout): v is DirSetValue {
  if (!isObj(v)) return false;
  if (v['noTime'] === true) return Object.keys(v).length === 2 && isStrList(v['warnings']);
  return (
    v['id'] === path.basename(dir) &&
    v['layout'] === layout &&
    v['root'] === root &&
    v['location'] === dir &&
    isStr(v['time']) &&
    !Number.isNaN(Date.parse(v['time'])) &&
    (v['timeSource'] === 'metadata' || v['timeSource'] === 'name') &&
    Array.isArray(v['components']) &&
    v['components'].every((c) => validComponent(c, dir)) &&
    isObj(v['metadata']) &&
    Object.values(v['metadata']).every((m) => isStr(m) || isStrList(m)) &&
    isStrList(v['warnings']) &&
    isCount(v['totalSize']) &&
    v['origin'] === undefined
  );
}

function validEntry(v: unknown, dir: string, root: string, layout: Layout, nameTime: string | undefined): v is CacheEntry {
  return (
    isObj(v) &&
    v['layout'] === layout &&
    v['nameTime'] === (nameTime ?? null) &&
    Array.isArray(v['deps']) &&
    v['deps'].length > 0 &&
    v['deps'].every(validStamp) &&
    (v['deps'] as Stamp[]).some((d) => d[0] === '') &&
    validValue(v['value'], dir, root, layout)
  );
}

// ---- secrets: nothing credential-shaped is ever written to the cache ----

const redact = createRedactor();
const SECRET_KEY = /pass(word|wd|phrase)?|secret|token|api[_-]?key|credential|private[_-]?key/i;

function holdsSecretShape(value: DirSetValue): boolean {
  const texts: string[] = [...value.warnings];
  if (!('noTime' in value)) {
    texts.push(value.id, ...value.components.map((c) => c.path));
    for (const [k, v] of Object.entries(value.metadata)) {
      if (SECRET_KEY.test(k)) return true;
      for (const item of Array.isArray(v) ? v : [v]) texts.push(`${k}: ${item}`, item);
    }
  }
  return texts.some((t) => redact(t) !== t);
}

// ---- where it lives ----

/** A directory only we can write: owned by us, not group- or world-writable, not a symlink. */
async function ownedPrivateDir(dir: string): Promise<boolean> {
  try {
    const st = await lstat(dir);
    return st.isDirectory() && st.uid === myUid() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

async function ensurePrivateDir(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  }
  return ownedPrivateDir(dir);
}

async function codeStamp(): Promise<string> {
  const self = fileURLToPath(import.meta.url);
  if (inBundle) {
    // The shipped bundle (scripts/build.ts): the catalog code sits in chunks named by a hash of their
    // content, beside this one; their names are the build's identity.
    const names = await readdir(path.dirname(self)).catch(() => [] as string[]);
    const chunks = names.filter((n) => /^chunk-[\w-]+\.js$/.test(n)).sort();
    return createHash('sha256')
      .update(`bundle\n${chunks.join('\n')}`)
      .digest('hex')
      .slice(0, 32);
  }
  const ext = path.extname(self);
  const parts = await Promise.all(
    CODE_MODULES.map(async (m) => {
      try {
        const s = await stat(path.join(path.dirname(self), `${m}${ext}`));
        return `${m}:${s.size}:${s.mtimeMs}`;
      } catch {
        return `${m}:?`;
      }
    }),
  );
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32);
}

/** The cache file of a backup root: <state dir>/cache/list-<sha256 of the root>.json. */
export function listCacheFile(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), 'cache', `list-${createHash('sha256').update(root).digest('hex').slice(0, 32)}.json`);
}

/** Read the cache file, or say why it is ignored. */
async function readCacheFile(
  file: string,
  root: string,
  tool: string,
  code: string,
): Promise<{ entries: Record<string, unknown> } | { ignored: string }> {
  let fh;
  try {
    fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    const codeName = (error as NodeJS.ErrnoException).code;
    return {
      ignored: codeName === 'ENOENT' ? 'none yet' : codeName === 'ELOOP' ? 'a symbolic link' : `unreadable (${codeName ?? 'error'})`,
    };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { ignored: 'not a regular file' };
    if (st.uid !== myUid()) return { ignored: `owned by uid ${st.uid}` };
    if (st.nlink !== 1) return { ignored: `${st.nlink} hard links` };
    if (st.size > MAX_CACHE_BYTES) return { ignored: 'too big' };
    const text = (await fh.readFile()).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { ignored: 'corrupt' };
    }
    if (!isObj(parsed) || parsed['format'] !== LIST_CACHE_FORMAT || !isObj(parsed['entries'])) return { ignored: 'corrupt' };
    if (parsed['tool'] !== tool || parsed['code'] !== code) return { ignored: 'another build' };
    if (parsed['root'] !== root) return { ignored: 'another root' };
    return { entries: parsed['entries'] };
  } finally {
    await fh.close();
  }
}

/**
 * The cache for one backup root (absolute), or undefined when the state directory is not ours
 * alone (then `list` catalogs every set, as without a cache).
 */
export async function openListCache(root: string, env: NodeJS.ProcessEnv = process.env): Promise<ListCache | undefined> {
  const state = stateDir(env);
  const dir = path.join(state, 'cache');
  const file = listCacheFile(root, env);
  // A state directory that exists but that others can write (or that is not ours): no cache at all.
  for (const d of [state, dir]) {
    const exists = await lstat(d).then(
      () => true,
      () => false,
    );
    if (exists && !(await ownedPrivateDir(d))) return undefined;
  }
  const tool = toolVersion();
  const code = await codeStamp();
  const read = await readCacheFile(file, root, tool, code);
  const loaded = 'entries' in read ? read.entries : {};
  const used: Record<string, CacheEntry> = Object.create(null) as Record<string, CacheEntry>;
  let dirty = 'ignored' in read;
  const stats: ListCache['stats'] = { hits: 0, misses: 0, ...('ignored' in read ? { ignored: read.ignored } : {}) };

  return {
    stats,
    async dirSet(setDir, setRoot, layout, nameTime) {
      const prior = Object.hasOwn(loaded, setDir) ? loaded[setDir] : undefined;
      if (setRoot === root && validEntry(prior, setDir, root, layout, nameTime) && (await depsUnchanged(setDir, prior.deps))) {
        stats.hits++;
        used[setDir] = prior;
        return prior.value;
      }
      stats.misses++;
      dirty = true;
      const deps = setRoot === root ? await stampDir(setDir) : undefined;
      const value = await buildDirSet(setDir, setRoot, layout, nameTime);
      if (deps && !holdsSecretShape(value)) {
        used[setDir] = { layout, nameTime: nameTime ?? null, deps, value: JSON.parse(JSON.stringify(value)) as DirSetValue };
      }
      return value;
    },
    async save() {
      if (!dirty && Object.keys(used).length === Object.keys(loaded).length) return;
      if (Object.keys(used).length === 0 && 'ignored' in read && read.ignored === 'none yet') return;
      const body: CacheFile = { format: LIST_CACHE_FORMAT, tool, code, root, entries: used };
      let tmp: string | undefined;
      try {
        await mkdir(path.dirname(state), { recursive: true, mode: 0o755 });
        if (!(await ensurePrivateDir(state)) || !(await ensurePrivateDir(dir))) return;
        tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
        const fh = await createExclusive(tmp, 0o600);
        try {
          await fh.writeFile(JSON.stringify(body));
        } finally {
          await fh.close();
        }
        // rename(2) replaces whatever has the name (a planted symlink is replaced, never followed).
        await rename(tmp, file);
        tmp = undefined;
      } catch {
        // A cache that cannot be written is only a slower next listing.
      } finally {
        if (tmp) await unlink(tmp).catch(() => undefined);
      }
    },
  };
}
