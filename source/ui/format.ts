import type { BackupSet, ComponentKind } from '../catalog/types.js';
import type { Outcome } from '../engine/events.js';
import { formatAge, formatBytes, formatDuration } from '../output.js';
import { sanitizeText } from '../text/sanitize.js';
import type { Recipe } from '../recipe/schema.js';
import type { GuideHistoryEntry } from './types.js';

/** Text helpers shared by the screens (pure). */

/** The screens' name for catalog/types.ts `componentLabel` (the one table of labels). */
export { componentLabel as kindLabel } from '../catalog/types.js';

/** Cut to a width, with every control character shown escaped (screens show names from outside). */
export function truncate(raw: string, width: number): string {
  const text = sanitizeText(raw);
  if (width <= 0) return '';
  if (text.length <= width) return text;
  if (width === 1) return '…';
  return `${text.slice(0, width - 1)}…`;
}

export function cell(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const t = truncate(text, width);
  return align === 'left' ? t.padEnd(width) : t.padStart(width);
}

/** "2026-01-18 01:45Z": a backup's recorded time, in UTC so every operator reads the same. */
export function formatUtc(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

export function ageOf(iso: string, now: Date): number {
  return Math.max(0, now.getTime() - new Date(iso).getTime());
}

export function formatMinutes(minutes: number): string {
  return formatAge(minutes * 60_000);
}

/** "PostgreSQL app · Redis · Prometheus". */
export function componentsLabel(recipe: Recipe): string {
  const parts: string[] = [];
  const c = recipe.components;
  if (c.postgres) parts.push(`PostgreSQL ${c.postgres.database}`);
  if (c.redis) parts.push('Redis');
  if (c.prometheus) parts.push('Prometheus');
  return parts.join(' · ') || 'no components';
}

export function targetsLabel(recipe: Recipe): string[] {
  const c = recipe.components;
  const lines: string[] = [];
  const where = (exec: { kind: string; container?: string; service?: string }): string =>
    exec.kind === 'host' ? 'host' : exec.kind === 'docker' ? `docker ${exec.container ?? ''}` : `compose ${exec.service ?? ''}`;
  if (c.postgres) lines.push(`PostgreSQL ${c.postgres.database} on ${c.postgres.host}:${c.postgres.port} (${where(c.postgres.exec)})`);
  if (c.redis) lines.push(`Redis on ${c.redis.host}:${c.redis.port} (${where(c.redis.exec)})`);
  if (c.prometheus) lines.push(`Prometheus ${c.prometheus.url} (${where(c.prometheus.exec)})`);
  return lines;
}

export function checksumLabel(set: BackupSet): string {
  const statuses = set.components.map((c) => c.checksum);
  if (statuses.length === 0) return 'none';
  if (statuses.includes('mismatch')) return 'MISMATCH';
  if (statuses.every((s) => s === 'verified')) return 'verified';
  if (statuses.every((s) => s === 'absent')) return 'none';
  const recorded = statuses.filter((s) => s !== 'absent').length;
  return recorded === statuses.length ? 'recorded' : `${recorded}/${statuses.length} rec.`;
}

export function componentSize(set: BackupSet, kind: ComponentKind): string {
  const comps = set.components.filter((c) => c.kind === kind);
  if (comps.length === 0) return '—';
  return formatBytes(comps.reduce((n, c) => n + c.size, 0));
}

export const outcomeLabel: Record<Outcome | 'killed', string> = {
  restored: 'restored, healthy',
  unhealthy: 'restored, UNHEALTHY',
  'rolled-back': 'failed, rolled back',
  'rollback-incomplete': 'failed, ROLLBACK INCOMPLETE',
  failed: 'drill FAILED (scratch discarded)',
  interrupted: 'interrupted, rolled back',
  cancelled: 'cancelled (nothing touched)',
  refused: 'refused (nothing touched)',
  verified: 'verified',
  dropped: 'safety copies dropped',
  rejected: 'rejected',
  killed: 'killed mid-run (no seal)',
};

export function lastRunLabel(entry: GuideHistoryEntry | undefined, now: Date): string {
  if (!entry) return 'no restore or drill recorded yet';
  const ago = formatAge(ageOf(entry.startedAt, now));
  const rto = entry.rtoMs !== undefined ? `, RTO ${formatDuration(entry.rtoMs)}` : '';
  return `${entry.kind} ${ago} ago: ${outcomeLabel[entry.outcome]}${rto}`;
}

export { formatAge, formatBytes, formatDuration, sanitizeText };
