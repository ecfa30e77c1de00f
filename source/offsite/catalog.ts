import { METACHAT_DUMP, METACHAT_RDB, parseCompactStamp, parseDashedStamp, stampInName, STORY_PORTAL_DIR } from '../catalog/names.js';
import { pairByTime, timedSets, type Timed } from '../catalog/sets.js';
import type { BackupComponent, BackupSet, ComponentFormat, ComponentKind, Layout } from '../catalog/types.js';
import type { OffsiteSource } from '../recipe/schema.js';
import { sanitizeText } from '../text/sanitize.js';
import type { ObjectInfo } from './client.js';

/**
 * Backup sets in a bucket listing: the same layouts as on disk (story-portal, metachat, flat),
 * inside the prefix, told apart by object names only (list never downloads). Encrypted components
 * are the layout's names plus ".gpg" or ".age". Each set carries the keys to download to stage it.
 * Every key is hostile: a key that is not a plain relative path (.., empty or control characters)
 * is ignored with a warning.
 */

export type Encryption = 'gpg' | 'age';

export interface OffsiteSet {
  set: BackupSet;
  /** Every object to download to stage the set (components, sidecars, SHA256SUMS, metadata.txt). */
  objects: ObjectInfo[];
  /** Component path (s3://...) → how it is encrypted. */
  encrypted: Map<string, Encryption>;
}

export interface OffsiteListing {
  layout: Layout;
  sets: OffsiteSet[];
  warnings: string[];
  objectCount: number;
}

export function encryptionOf(name: string): { plain: string; enc?: Encryption } {
  const lower = name.toLowerCase();
  if (lower.endsWith('.gpg')) return { plain: name.slice(0, -4), enc: 'gpg' };
  if (lower.endsWith('.age')) return { plain: name.slice(0, -4), enc: 'age' };
  return { plain: name };
}

/** A relative key that is safe to mirror on disk, or undefined. */
export function safeRelKey(rel: string): string | undefined {
  if (rel === '' || rel.length > 1024 || rel.startsWith('/')) return undefined;
  if (/[\u0000-\u001f\u007f\\]/.test(rel)) return undefined;
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.length > 255)) return undefined;
  return rel;
}

/** What a component name (without .gpg/.age) is, by name alone: list does not download. */
export function classifyName(name: string, strict: boolean): { kind: ComponentKind; format: ComponentFormat } | undefined {
  const n = name.toLowerCase();
  if (n.endsWith('.sql.gz')) return { kind: 'postgres', format: 'pg-plain-gz' };
  if (n.endsWith('.sql')) return { kind: 'postgres', format: 'pg-plain' };
  // pg_dump -Fc by its name; the staged file's first bytes decide (the local catalog sniffs them).
  if (n.endsWith('.dump') || n.endsWith('.backup') || n.endsWith('.pgdump')) return { kind: 'postgres', format: 'pg-custom' };
  if (n.endsWith('.rdb')) return { kind: 'redis', format: 'redis-rdb' };
  if ((n.endsWith('.tar.gz') || n.endsWith('.tgz')) && (!strict || n.includes('prom')))
    return { kind: 'prometheus', format: 'prometheus-tar-gz' };
  return undefined;
}

const isSums = (name: string): boolean => /^sha256sums(\.txt)?$/i.test(name);

function detect(rels: string[]): Layout {
  if (rels.some((r) => STORY_PORTAL_DIR.test(r.split('/')[0] ?? '') && r.includes('/'))) return 'story-portal';
  const metachat = rels.some((r) => {
    const [dir, name, more] = r.split('/');
    if (more !== undefined || !name) return false;
    const plain = encryptionOf(name).plain;
    return (dir === 'postgres' && METACHAT_DUMP.test(plain)) || (dir === 'redis' && METACHAT_RDB.test(plain));
  });
  return metachat ? 'metachat' : 'flat';
}

/** Group a listing into sets. `url` builds a component's s3:// path from its key. */
export function catalogObjects(
  objects: ObjectInfo[],
  o: OffsiteSource,
  requested: 'auto' | Layout,
  opts: { database?: string; pairWindowMinutes?: number } = {},
): OffsiteListing {
  const warnings: string[] = [];
  const byRel = new Map<string, ObjectInfo>();
  for (const obj of objects) {
    const rel = obj.key.startsWith(o.prefix) ? obj.key.slice(o.prefix.length).replace(/^\/+/, '') : undefined;
    const safe = rel === undefined ? undefined : safeRelKey(rel);
    if (!safe) {
      warnings.push(`object ${JSON.stringify(sanitizeText(obj.key, 120))} is not a plain relative key under the prefix (ignored)`);
      continue;
    }
    byRel.set(safe, obj);
  }
  const rels = [...byRel.keys()].sort();
  const layout = requested === 'auto' ? detect(rels) : requested;
  const url = (rel: string): string => `s3://${o.bucket}/${o.prefix}${rel}`;
  const encrypted = new Map<string, Encryption>();
  const component = (rel: string, cls: { kind: ComponentKind; format: ComponentFormat }, enc: Encryption | undefined): BackupComponent => {
    const obj = byRel.get(rel)!;
    const { plain } = encryptionOf(rel);
    const sidecar = byRel.has(`${rel}.sha256`) || (enc !== undefined && byRel.has(`${plain}.sha256`));
    const c: BackupComponent = {
      kind: cls.kind,
      format: cls.format,
      path: url(rel),
      size: obj.size,
      checksum: sidecar ? 'present' : 'absent',
    };
    if (sidecar) c.checksumSource = 'sidecar';
    if (enc) encrypted.set(c.path, enc);
    return c;
  };
  /** The component's object and its sidecars (of the ciphertext and of the plaintext). */
  const withSidecars = (rel: string): ObjectInfo[] => {
    const { plain } = encryptionOf(rel);
    return [rel, `${rel}.sha256`, ...(plain !== rel ? [`${plain}.sha256`] : [])].flatMap((r) => (byRel.has(r) ? [byRel.get(r)!] : []));
  };
  const sumsIn = (dir: string): ObjectInfo[] =>
    rels
      .filter(
        (r) =>
          (dir === '' ? !r.includes('/') : r.startsWith(`${dir}/`) && !r.slice(dir.length + 1).includes('/')) &&
          isSums(r.split('/').pop() ?? ''),
      )
      .map((r) => byRel.get(r)!);

  const sets: OffsiteSet[] = [];
  if (layout === 'story-portal') {
    const dirs = new Map<string, string[]>();
    for (const r of rels) {
      const [dir, name, more] = r.split('/');
      if (!dir || !name || more !== undefined || !STORY_PORTAL_DIR.test(dir)) continue;
      dirs.set(dir, [...(dirs.get(dir) ?? []), r]);
    }
    for (const [dir, files] of dirs) {
      const time = parseDashedStamp(dir);
      if (!time) {
        warnings.push(`${dir}/ is not a valid date (ignored)`);
        continue;
      }
      const components: BackupComponent[] = [];
      for (const r of files) {
        const name = r.split('/')[1]!;
        const { plain, enc } = encryptionOf(name);
        const cls = classifyName(plain, false);
        if (cls) components.push(component(r, cls, enc));
      }
      const set: BackupSet = {
        id: dir,
        layout,
        root: url(''),
        location: url(`${dir}/`),
        time,
        timeSource: 'name',
        components,
        metadata: {},
        warnings: files.some((r) => r.toLowerCase().endsWith('/metadata.txt')) ? [] : [`${dir}/metadata.txt is missing`],
        totalSize: components.reduce((s, c) => s + c.size, 0),
      };
      sets.push({ set, objects: files.map((r) => byRel.get(r)!), encrypted });
    }
  } else {
    const items: Timed[] = [];
    const relOf = new Map<BackupComponent, string>();
    const dirOf = new Map<BackupComponent, string>();
    const otherDbs = new Set<string>();
    for (const r of rels) {
      const parts = r.split('/');
      const dir = parts.length === 2 ? parts[0]! : parts.length === 1 ? '' : undefined;
      const name = parts[parts.length - 1]!;
      if (dir === undefined || name.endsWith('.sha256') || isSums(name)) continue;
      const { plain, enc } = encryptionOf(name);
      let cls: { kind: ComponentKind; format: ComponentFormat } | undefined;
      let iso: string | undefined;
      let stamp: string | undefined;
      let database: string | undefined;
      if (layout === 'metachat') {
        if (dir === 'postgres') {
          const m = METACHAT_DUMP.exec(plain);
          if (m && m[3]) {
            iso = parseCompactStamp(m[2]!);
            stamp = m[2]!;
            database = m[1]!;
            cls = classifyName(plain, false);
            if (opts.database && database !== opts.database) {
              otherDbs.add(database);
              continue;
            }
          }
        } else if (dir === 'redis') {
          const m = METACHAT_RDB.exec(plain);
          if (m) {
            iso = parseCompactStamp(m[1]!);
            stamp = m[1]!;
            cls = { kind: 'redis', format: 'redis-rdb' };
          }
        }
      } else if (dir === '') {
        cls = classifyName(plain, true);
        const s = stampInName(plain);
        iso = s?.iso;
        stamp = s?.stamp;
      }
      if (!cls || !iso || !stamp) {
        if (layout === 'metachat' && (dir === 'postgres' || dir === 'redis'))
          warnings.push(`${r} does not match the metachat names (ignored)`);
        continue;
      }
      const c = component(r, cls, enc);
      if (database) c.database = database;
      c.time = iso;
      relOf.set(c, r);
      dirOf.set(c, dir);
      items.push({ component: c, stamp, time: Date.parse(iso) });
    }
    if (otherDbs.size > 0)
      warnings.push(`dumps of other databases ignored: ${[...otherDbs].sort().join(', ')} (the recipe names ${opts.database})`);
    const groups = pairByTime(items, (opts.pairWindowMinutes ?? 30) * 60_000);
    const built = timedSets(groups, layout, url(''), new Map());
    built.forEach((set, i) => {
      const comps = groups[i]!.components;
      const objs = comps.flatMap((c) => withSidecars(relOf.get(c)!));
      const dirs = new Set(comps.map((c) => dirOf.get(c)!));
      for (const d of dirs) objs.push(...sumsIn(d));
      sets.push({ set, objects: [...new Map(objs.map((x) => [x.key, x])).values()], encrypted });
    });
  }
  return { layout, sets, warnings, objectCount: objects.length };
}
