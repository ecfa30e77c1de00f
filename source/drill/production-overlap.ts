import { realpathSync } from 'node:fs';
import path from 'node:path';
import { RestoreAssistantError, type ErrorDetails } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { Recipe } from '../recipe/schema.js';
import { raCommand } from '../text/next.js';

/**
 * A drill must never write into production. Its scratch lives in fresh temp dirs (mkdtemp under
 * TMPDIR) on fresh loopback ports, so it cannot name a production path by accident, but the place
 * the temp dirs go can: TMPDIR set inside a production data directory, or a production data
 * directory that is /tmp (or a parent of it). Then a scratch directory IS production's, or lies
 * inside it, and the drill's extractions, moves and removals would land among production's files.
 * These checks refuse that before anything is created (the temp root) and again once the scratch
 * exists (its real directories, symlinks resolved, and its ports).
 */

export interface NamedPath {
  /** What the recipe calls it, for the message (e.g. "components.redis.dataDir"). */
  what: string;
  path: string;
}

/** The production host paths a recipe names that a restore writes into (container paths excluded: they are the container's own). */
export function productionPaths(real: Recipe): NamedPath[] {
  const c = real.components;
  const out: NamedPath[] = [];
  if (c.postgres?.cluster?.dataDir && c.postgres.exec.kind === 'host')
    out.push({ what: 'components.postgres.cluster.dataDir', path: c.postgres.cluster.dataDir });
  if (c.redis?.dataDir && c.redis.exec.kind === 'host') out.push({ what: 'components.redis.dataDir', path: c.redis.dataDir });
  if (c.prometheus?.dataDir && c.prometheus.exec.kind === 'host')
    out.push({ what: 'components.prometheus.dataDir', path: c.prometheus.dataDir });
  return out;
}

/** The path with symlinks resolved as far as it exists (a missing tail is kept as written). */
export function resolvedPath(p: string): string {
  let head = path.resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(head), ...tail);
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return path.join(head, ...tail);
      tail.unshift(path.basename(head));
      head = parent;
    }
  }
}

function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : `${outer}${path.sep}`);
}

/**
 * Every way a scratch path and a production path are the same place: equal, the scratch inside
 * production, or (`containing`: for scratch directories that exist) production inside the scratch
 * (removing the scratch would remove it). A temp root is not `containing`: the scratch is a fresh
 * directory below it, so production elsewhere below it (e.g. /tmp/x) is apart. Empty: apart.
 */
export function overlapProblems(
  scratch: Array<NamedPath & { containing?: boolean }>,
  production: NamedPath[],
  resolve: (p: string) => string = resolvedPath,
): string[] {
  const problems: string[] = [];
  for (const s of scratch) {
    const sp = resolve(s.path);
    for (const p of production) {
      const pp = resolve(p.path);
      if (sp === pp) problems.push(`${s.what} ${s.path} is production's ${p.what} (${p.path})`);
      else if (within(sp, pp)) problems.push(`${s.what} ${s.path} lies inside production's ${p.what} (${p.path})`);
      else if (s.containing !== false && within(pp, sp))
        problems.push(`production's ${p.what} (${p.path}) lies inside ${s.what} ${s.path}`);
    }
  }
  return problems;
}

/** Loopback ports of the production targets (a scratch server must never answer on one). */
export function productionPorts(real: Recipe): Array<{ what: string; port: number }> {
  const c = real.components;
  const loopback = (h: string | undefined): boolean => h === undefined || ['127.0.0.1', 'localhost', '::1'].includes(h);
  const out: Array<{ what: string; port: number }> = [];
  if (c.postgres?.port !== undefined && loopback(c.postgres.host)) out.push({ what: 'components.postgres.port', port: c.postgres.port });
  if (c.redis?.port !== undefined && loopback(c.redis.host)) out.push({ what: 'components.redis.port', port: c.redis.port });
  if (c.prometheus?.url) {
    const u = new URL(c.prometheus.url);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    if (loopback(u.hostname.replace(/^\[|\]$/g, ''))) out.push({ what: 'components.prometheus.url', port });
  }
  return out;
}

/** The refusal (its own class: callers that wrap start-up failures pass it through as it is). */
export class ScratchIsProductionError extends RestoreAssistantError {
  constructor(details: ErrorDetails) {
    super('Refusing to run the drill: its scratch target would be production.', ExitCode.preflightFailed, details);
    this.name = 'ScratchIsProductionError';
  }
}

/** A directory to suggest for TMPDIR: the first of a few usual ones that overlaps no production path. */
function otherTemp(production: NamedPath[], resolve: (p: string) => string): string | undefined {
  return ['/var/tmp', '/tmp', '/root/tmp'].find(
    (d) => overlapProblems([{ what: 'TMPDIR', path: d, containing: false }], production, resolve).length === 0,
  );
}

/** The Next: line: the same drill with TMPDIR elsewhere. */
function scratchElsewhere(temp: string | undefined, production: NamedPath[], again: string): string {
  return temp === undefined
    ? `Set TMPDIR to a directory outside ${production.map((p) => p.path).join(', ')} and run the drill again (\`${again}\`).`
    : `Run the drill with its scratch elsewhere: \`TMPDIR=${temp} ${again}\`.`;
}

/**
 * Throws when scratch paths (or ports) are production's. `created` says whether scratch already
 * exists (it is then removed by the caller before the error is shown); `recipeFile` names the
 * recipe for the Next: command.
 */
export function assertScratchApart(
  o: {
    real: Recipe;
    recipeFile: string;
    /** The drill command to run again (arguments after restore-assistant); default: drill --recipe FILE. */
    again?: string[];
    scratch: Array<NamedPath & { containing?: boolean }>;
    ports?: Array<{ what: string; port: number }>;
    created: boolean;
  },
  resolve: (p: string) => string = resolvedPath,
): void {
  const production = productionPaths(o.real);
  const problems = overlapProblems(o.scratch, production, resolve);
  const prodPorts = productionPorts(o.real);
  for (const s of o.ports ?? [])
    for (const p of prodPorts) if (s.port === p.port) problems.push(`${s.what} ${s.port} is also production's (${p.what})`);
  if (problems.length === 0) return;
  throw new ScratchIsProductionError({
    problems,
    untouched: o.created
      ? 'Nothing was restored: the scratch services were stopped and their temp dirs removed before anything was written; production was not touched.'
      : 'Nothing was created or touched; production was not contacted.',
    next: scratchElsewhere(otherTemp(production, resolve), production, raCommand(...(o.again ?? ['drill', '--recipe', o.recipeFile]))),
  });
}
