/**
 * Pure layout decisions for the frame (tested at 60, 80 and 160 columns): the breadcrumb and the
 * footer key hints are shortened to fit the terminal, never cut mid-word or wrapped.
 */

export const FLOW_STEPS = ['Recipe', 'Backup', 'Verify', 'Plan', 'Confirm', 'Run', 'Summary'] as const;

export type BreadcrumbForm = 'full' | 'steps' | 'compact';

const PREFIX = 'restore-assistant ';
const SEP = ' › ';

/** Width of the breadcrumb in each form (the current step is shown with a space either side). */
export function breadcrumbWidth(form: BreadcrumbForm, current: string): number {
  const steps = FLOW_STEPS.join(SEP).length + 2;
  if (form === 'full') return PREFIX.length + steps;
  if (form === 'steps') return steps;
  return compactBreadcrumb(current).length + 2;
}

/** "Step 4 of 7: Plan" (without the leading "restore-assistant", for narrow terminals). */
export function compactBreadcrumb(current: string): string {
  const i = FLOW_STEPS.indexOf(current as (typeof FLOW_STEPS)[number]);
  return i < 0 ? current : `Step ${i + 1} of ${FLOW_STEPS.length}: ${current}`;
}

/** The widest breadcrumb form that fits `columns`. */
export function breadcrumbForm(columns: number, current: string): BreadcrumbForm {
  if (breadcrumbWidth('full', current) <= columns) return 'full';
  if (breadcrumbWidth('steps', current) <= columns) return 'steps';
  return 'compact';
}

export interface FooterHint {
  key: string;
  description: string;
  /** A shorter description, used when the full hints do not fit. */
  short?: string;
}

/**
 * The footer line that fits `columns`: full descriptions with wide separators; then narrow
 * separators; then short descriptions; then keys only for the least important hints (from the end,
 * keeping `? help`, which lists every key); never a cut word.
 */
export function fitFooter(hints: readonly FooterHint[], columns: number): string {
  const render = (items: Array<{ key: string; description: string }>, sep: string): string =>
    items.map((h) => (h.description ? `${h.key} ${h.description}` : h.key)).join(sep);
  const full = hints.map((h) => ({ key: h.key, description: h.description }));
  for (const sep of ['  ·  ', ' · ']) {
    const line = render(full, sep);
    if (line.length <= columns) return line;
  }
  const short = hints.map((h) => ({ key: h.key, description: h.short ?? shorten(h.description) }));
  let line = render(short, ' · ');
  if (line.length <= columns) return line;
  // Keys only, least needed first: movement, then the screen's own keys, Esc, Enter; help and quit
  // keep their words longest.
  const rank = (key: string): number => ({ '↑↓/jk': 0, Esc: 2, Enter: 3, q: 4, '?': 5 })[key] ?? 1;
  const order = short.map((_, i) => i).sort((a, b) => rank(short[a]?.key ?? '') - rank(short[b]?.key ?? '') || a - b);
  for (const i of order) {
    const h = short[i];
    if (!h || h.key === '?' || h.key === 'q') continue;
    short[i] = { key: h.key, description: '' };
    line = render(short, ' · ');
    if (line.length <= columns) return line;
  }
  // Then q, then every separator narrowed; `? help` keeps its word (it lists every key).
  for (const i of order) {
    const h = short[i];
    if (h && h.key !== '?') short[i] = { key: h.key, description: '' };
  }
  for (const sep of [' · ', ' ']) {
    line = render(short, sep);
    if (line.length <= columns) return line;
  }
  // Still too wide (a very narrow terminal): whole hints from the start, and `? help` for the rest.
  const kept: string[] = [];
  for (const h of short) {
    if (h.key === '?') continue;
    const next = [...kept, h.key, '? help'].join(' ');
    if (next.length > columns) break;
    kept.push(h.key);
  }
  return [...kept, '? help'].join(' ');
}

/** The first words of a description: up to the first parenthesis or colon, at most three words. */
export function shorten(description: string): string {
  const head = description.split(/\s*[(:]/)[0] ?? description;
  return head.split(/\s+/).slice(0, 3).join(' ');
}
