import { stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { expandHome } from '../recipe/home.js';
import { metadataValue } from './metadata.js';
import { sanitizeText } from '../text/sanitize.js';
import { METACHAT_DUMP, METACHAT_RDB, parseDashedStamp, parseRecordedTime, stampInName, STORY_PORTAL_DIR } from './names.js';
import type { BackupSet } from './types.js';
import { classifyPath, exists, readEntries, type Entry } from './files.js';
import { buildDirSet, byRecordedTime, loadSums, makeComponent, readMetadata } from './sets.js';
import { listCommand, type CommandScope } from '../text/next.js';

/** Finding one set: by id (with near-miss suggestions), or by a path to a set directory. */

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The ids nearest to `ref`: by time when ref reads as a time, else by spelling. */
export function nearestIds(sets: BackupSet[], ref: string, n = 3): string[] {
  const t = parseRecordedTime(ref) ?? stampInName(ref)?.iso;
  if (t) {
    const at = Date.parse(t);
    return [...sets]
      .sort((a, b) => Math.abs(Date.parse(a.time) - at) - Math.abs(Date.parse(b.time) - at))
      .slice(0, n)
      .map((s) => s.id);
  }
  return [...sets]
    .sort((a, b) => levenshtein(a.id, ref) - levenshtein(b.id, ref))
    .slice(0, n)
    .map((s) => s.id);
}

/**
 * Pick a set: its id, `latest` (the newest recorded time), or a path to its directory or to
 * one of its files. Throws a UsageError naming the nearest ids when nothing matches.
 */
export function findBackupSet(sets: BackupSet[], ref: string, scope?: CommandScope): BackupSet {
  const wanted = ref.trim();
  if (wanted === 'latest') {
    const newest = [...sets].sort(byRecordedTime)[0];
    if (!newest)
      throw new UsageError('There are no backup sets to choose "latest" from.', {
        next: `Run \`${listCommand(scope)}\` to see what the backup root holds.`,
      });
    return newest;
  }
  const byId = sets.find((s) => s.id === wanted);
  if (byId) return byId;
  if (wanted.includes('/') || wanted.startsWith('.')) {
    const abs = path.resolve(expandHome(wanted));
    const byPath = sets.find((s) => (s.location === abs && s.layout !== 'metachat') || s.components.some((c) => c.path === abs));
    if (byPath) return byPath;
  }
  const prefixed = sets.filter((s) => s.id.startsWith(wanted));
  if (wanted.length >= 4 && prefixed.length === 1 && prefixed[0]) return prefixed[0];
  const near = nearestIds(sets, wanted);
  throw new UsageError(`No backup set "${sanitizeText(wanted, 120)}".`, {
    problems:
      prefixed.length > 1
        ? [
            `"${sanitizeText(wanted, 60)}" matches ${prefixed.length} sets: ${prefixed
              .slice(0, 5)
              .map((s) => s.id)
              .join(', ')}`,
          ]
        : near.length > 0
          ? [`nearest: ${near.join(', ')}`]
          : ['the backup root holds no sets'],
    next: `Run \`${listCommand(scope)}\` to see the set ids, or pass "latest" or a path.`,
  });
}

/**
 * A set from a path outside any listing: a set directory, a pg_dump directory, or one dump
 * file. Its time comes from metadata.txt or a YYYYMMDD_HHMMSS / YYYY-MM-DD_HH-MM-SS in its (or
 * its directory's) name; a backup that records no time is refused, because evidence needs it.
 */
export async function loadBackupSetFromPath(ref: string, scope?: CommandScope): Promise<BackupSet> {
  const abs = path.resolve(expandHome(ref));
  let s;
  try {
    s = await stat(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`${abs} cannot be read (${code === 'ENOENT' ? 'does not exist' : code}).`, {
      next: `Check the path, or run \`${listCommand(scope)}\` to see the set ids.`,
    });
  }
  if (!s.isFile() && !s.isDirectory()) {
    throw new UsageError(`${abs} is neither a file nor a directory (a device, FIFO or socket); it is not read.`, {
      next: 'Pass the path of a backup file or set directory.',
    });
  }
  const name = path.basename(abs);
  const parentName = path.basename(path.dirname(abs));
  const noTime = (): UsageError =>
    new UsageError(`${abs} records no backup time.`, {
      problems: ['no metadata.txt "Backup Date", and no YYYYMMDD_HHMMSS or YYYY-MM-DD_HH-MM-SS in its name or its directory\'s name'],
      next: 'Rename it to carry its time (e.g. app_20260118_014513.dump), or put it in a set directory with a metadata.txt. The time is needed for RPO evidence.',
    });
  if (s.isDirectory() && !(await exists(path.join(abs, 'toc.dat')))) {
    const nameTime = parseDashedStamp(name) ?? stampInName(name)?.iso;
    const set = await buildDirSet(abs, path.dirname(abs), STORY_PORTAL_DIR.test(name) ? 'story-portal' : 'flat', nameTime);
    if ('noTime' in set) throw noTime();
    return set;
  }
  const cls = await classifyPath(abs, s.isDirectory());
  if (!cls) {
    throw new UsageError(`${abs} is not a backup file restore-assistant knows.`, {
      problems: [
        'known: *.sql, *.sql.gz, *.dump (pg_dump -Fc), pg_dump -Fd directories (toc.dat), *.rdb, *.tar.gz of a Prometheus data dir',
      ],
    });
  }
  const warnings: string[] = [];
  const dir = path.dirname(abs);
  const dirEntries = await readEntries(dir).catch(() => [] as Entry[]);
  const sumsFiles = await loadSums(dir, dirEntries, warnings, '');
  const component = await makeComponent(abs, s.isDirectory(), cls, sumsFiles, warnings, name);
  let time = stampInName(name)?.iso;
  let timeSource: BackupSet['timeSource'] = 'name';
  let metadata: Record<string, string | string[]> = {};
  const parentTime = parseDashedStamp(parentName) ?? stampInName(parentName)?.iso;
  const meta = dirEntries.find((e) => e.isFile && e.name.toLowerCase() === 'metadata.txt');
  if (!time && meta) {
    metadata = await readMetadata(meta.full, warnings, 'metadata.txt');
    const recorded = metadataValue(metadata, 'Backup Date', 'Date', 'Timestamp', 'Created');
    const t = typeof recorded === 'string' ? parseRecordedTime(recorded) : undefined;
    if (t) {
      time = t;
      timeSource = 'metadata';
    }
  }
  time ??= parentTime;
  if (!time) throw noTime();
  if (component.time === undefined && stampInName(name)) component.time = time;
  const m = METACHAT_DUMP.exec(name);
  if (cls.kind === 'postgres' && m) component.database = m[1];
  const id = stampInName(name)?.stamp ?? (STORY_PORTAL_DIR.test(parentName) ? parentName : name);
  return {
    id,
    layout: STORY_PORTAL_DIR.test(parentName) ? 'story-portal' : METACHAT_DUMP.test(name) || METACHAT_RDB.test(name) ? 'metachat' : 'flat',
    root: dir,
    location: dir,
    time,
    timeSource,
    components: [component],
    metadata,
    warnings,
    totalSize: component.size,
  };
}
