import path from 'node:path';
import { listBackupSets } from '../catalog/index.js';
import { sanitizeText } from '../text/sanitize.js';
import { formatUtc } from '../catalog/names.js';
import { needSourceError, resolveBackupSource } from '../catalog/resolve.js';
import { isPhysicalSource } from '../pitr/source.js';
import type { BackupSet } from '../catalog/types.js';
import { ExitCode } from '../exit-codes.js';
import { assessBackupHealth, healthCell } from '../health/backups.js';
import { createOutput, formatAge, formatBytes, paint } from '../output.js';
import { RestoreAssistantError } from '../errors.js';
import { byRecordedTime } from '../catalog/sets.js';
import type { OffsiteListing } from '../offsite/catalog.js';
import type { SetWhere } from '../offsite/index.js';

export interface ListCommandOptions {
  recipe?: string;
  root?: string;
  json?: boolean;
  /** false (--no-cache): catalog every set afresh, without reading or writing the list cache. */
  cache?: boolean;
}

function componentsCell(set: BackupSet): string {
  if (set.components.length === 0) return '(none)';
  // An encrypted off-site component says how (its object name ends .gpg / .age).
  const enc = (p: string): string => (/\.(gpg|age)$/i.test(p) ? ` (${p.slice(-3).toLowerCase()})` : '');
  return set.components.map((c) => `${c.kind} ${formatBytes(c.size)}${enc(c.path)}`).join(', ');
}

function checksumCell(set: BackupSet): string {
  const files = set.components.filter((c) => c.format !== 'pg-directory');
  const present = files.filter((c) => c.checksum !== 'absent').length;
  if (files.length === 0) return '-';
  if (present === 0) return 'none';
  return present === files.length ? 'all present' : `${present}/${files.length} present`;
}

/** A table without borders: columns padded to their widest cell. */
export function renderTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Without an off-site source: the local sets, one per id, newest first (as offsite/pick.ts mergeListings). */
function localOnly(sets: BackupSet[]): Array<{ set: BackupSet; where: SetWhere }> {
  const out = new Map<string, { set: BackupSet; where: SetWhere }>();
  for (const s of sets) out.set(s.id, { set: s, where: 'local' });
  return [...out.values()].sort((a, b) => byRecordedTime(a.set, b.set));
}

/** `restore-assistant list`: backup sets newest first (by the time each records), never hashing. */
export async function listCommand(opts: ListCommandOptions): Promise<number> {
  const out = createOutput();
  const source = await resolveBackupSource(opts);
  if (!source) throw await needSourceError('list');
  // The journal, off-site and PITR modules are loaded only when the source needs them: a plain
  // `list --root` starts without the AWS SDK, the recipe parser or the runner.
  if (source.recipe) {
    const { warnUnfinished } = await import('../journal/detect.js');
    await warnUnfinished(source.recipe, opts.recipe ?? source.recipe.file, (t) => process.stderr.write(`${t}\n`));
  }
  if (await isPhysicalSource(source)) return (await import('./pitr.js')).pitrListCommand(source, opts);
  const listLocal = (): ReturnType<typeof listBackupSets> =>
    listBackupSets({
      root: source.root,
      layout: source.layout,
      ...(source.database ? { database: source.database } : {}),
      ...(source.pairWindowMinutes ? { pairWindowMinutes: source.pairWindowMinutes } : {}),
      cache: opts.cache !== false,
    });
  // With an off-site source: the bucket's sets too (one paged listing, nothing downloaded), and a
  // local root that does not exist (a rebuilt host) is an empty local side, not an error.
  const offsiteSource = source.recipe?.recipe.backups.offsite;
  const offsiteMod = offsiteSource
    ? await Promise.all([import('../offsite/index.js'), import('../offsite/client.js'), import('../offsite/pick.js')])
    : undefined;
  const [localResult, offsite] = await Promise.all([
    offsiteSource
      ? listLocal().catch((error: unknown) => {
          if (!(error instanceof RestoreAssistantError)) throw error;
          return { sets: [], layout: source.layout === 'auto' ? ('flat' as const) : source.layout, warnings: [`local: ${error.message}`] };
        })
      : listLocal(),
    source.recipe && offsiteMod ? offsiteMod[0].listOffsite(source.recipe) : Promise.resolve<OffsiteListing | undefined>(undefined),
  ]);
  const c = 'cacheStats' in localResult ? localResult.cacheStats : undefined;
  if (process.env['RESTORE_ASSISTANT_DEBUG'] && c) {
    process.stderr.write(
      `list cache: ${c.hits} set(s) from the cache, ${c.misses} cataloged${c.ignored ? ` (cache file: ${c.ignored})` : ''}\n`,
    );
  }
  const merged = offsiteMod ? offsiteMod[2].mergeListings(localResult.sets, offsite) : localOnly(localResult.sets);
  const offsiteUrl = offsiteMod?.[1].offsiteUrl ?? ((): string => '');
  const where = new Map(merged.map((m) => [m.set.id, m.where]));
  const result = {
    sets: merged.map((m) => m.set),
    layout: offsite && localResult.sets.length === 0 ? offsite.layout : localResult.layout,
    warnings: [...localResult.warnings, ...(offsite?.warnings.map((w) => `off-site: ${w}`) ?? [])],
  };
  const now = Date.now();
  const root = path.resolve(source.root);
  const r = source.recipe?.recipe;
  const health = assessBackupHealth(
    result.sets,
    { ...(r?.backupHealth ?? {}), ...(r?.objectives.rpoMinutes !== undefined ? { rpoMinutes: r.objectives.rpoMinutes } : {}) },
    new Date(now),
  );
  if (opts.json) {
    out.json({
      root,
      layout: result.layout,
      ...(source.recipe ? { recipe: source.recipe.recipe.name } : {}),
      listedAt: new Date(now).toISOString(),
      ...(offsite && offsiteSource
        ? { offsite: { url: offsiteUrl(offsiteSource), objects: offsite.objectCount, sets: offsite.sets.length } }
        : {}),
      sets: result.sets.map((s) => ({
        ...s,
        ...(offsite ? { where: where.get(s.id) ?? 'local' } : {}),
        ageSeconds: Math.max(0, Math.round((now - Date.parse(s.time)) / 1000)),
        health: health.bySet[s.id] ?? [],
      })),
      warnings: result.warnings,
      health: {
        ok: health.ok,
        problems: health.problems,
        newest: health.newest,
        ...(r?.objectives.rpoMinutes !== undefined ? { rpoMinutes: r.objectives.rpoMinutes } : {}),
      },
    });
    return ExitCode.ok;
  }
  const p = paint(out.color);
  if (result.sets.length === 0) {
    out.info(`No backup sets found in ${root} (${result.layout} layout).`);
    for (const w of result.warnings) out.info(`  ! ${sanitizeText(w, 300)}`);
    out.info('Nothing was touched. Next: check that backups are being written there (cron, backup logs).');
    return ExitCode.ok;
  }
  const rows = result.sets.map((s) => [
    sanitizeText(s.id, 80),
    `${formatUtc(s.time)}${s.timeSource === 'metadata' ? '' : '*'}`,
    formatAge(Math.max(0, now - Date.parse(s.time))),
    componentsCell(s),
    checksumCell(s),
    s.warnings.length > 0 ? String(s.warnings.length) : '',
    healthCell(health.bySet[s.id]),
    ...(offsite ? [where.get(s.id) ?? 'local'] : []),
  ]);
  const lines = renderTable(['ID', 'TIME (UTC)', 'AGE', 'COMPONENTS', 'SHA256', 'WARNINGS', 'HEALTH', ...(offsite ? ['WHERE'] : [])], rows);
  out.result(p('bold', lines[0] ?? ''));
  for (const l of lines.slice(1)) out.result(l);
  const withWarnings = result.sets.filter((s) => s.warnings.length > 0);
  if (withWarnings.length > 0 || result.warnings.length > 0) {
    out.result('');
    out.result(p('yellow', 'Warnings:'));
    for (const w of result.warnings) out.result(`  ${sanitizeText(w, 300)}`);
    for (const s of withWarnings)
      for (const w of s.warnings) out.result(`  ${w.startsWith(`${s.id}/`) ? '' : `${sanitizeText(s.id, 80)}: `}${sanitizeText(w, 300)}`);
  }
  if (health.problems.length > 0) {
    out.result('');
    out.result(p('yellow', 'Backup health (newest set):'));
    for (const h of health.problems) out.result(`  ${h.check}: ${sanitizeText(h.message, 400)}`);
  }
  out.info(
    `${result.sets.length} backup set${result.sets.length === 1 ? '' : 's'} in ${root}${offsite && offsiteSource ? ` and ${offsiteUrl(offsiteSource)} (${offsite.objectCount} objects)` : ''} (${result.layout} layout), newest first by recorded time.` +
      (result.sets.some((s) => s.timeSource !== 'metadata') ? ' * time from the name (assumed UTC).' : ''),
  );
  return ExitCode.ok;
}
