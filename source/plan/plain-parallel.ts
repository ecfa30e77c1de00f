/**
 * Whether a plain dump is restored in parallel (issue 14, engine/plain-split/): only when
 * verification read its structure (deep verify: catalog/plain-sections.ts's summary in the
 * verify facts) and found it one the splitter recognises, and more than one job is asked for.
 * Otherwise the single stream, with the reason in the plan's warnings.
 */

export interface PlainParallelChoice {
  parallel?: { jobs: number; entries?: number; truncateBeforeCopy?: boolean };
  /** For the plan's warnings when the dump is not split although jobs > 1. */
  warning?: string;
}

interface SectionsFact {
  recognised?: unknown;
  reason?: unknown;
  entries?: unknown;
}

export function plainParallelChoice(
  jobs: number,
  sections: unknown,
  file: string,
  verified: 'none' | 'quick' | 'deep',
  /** The target is a throwaway scratch cluster with wal_level minimal (a drill's): each table loads in one transaction that truncates it first. */
  scratch = false,
): PlainParallelChoice {
  if (jobs <= 1) return {};
  const s = (typeof sections === 'object' && sections !== null ? sections : undefined) as SectionsFact | undefined;
  if ((!s || typeof s.recognised !== 'boolean') && verified === 'none')
    return {
      warning: `${file} is shown as a single stream: its structure is read by the deep verification \`restore\` does first, which restores it on ${jobs} connections when pg_dump's section markers split it (or as this single stream, saying why).`,
    };
  if (!s || typeof s.recognised !== 'boolean')
    return {
      warning: `${file} is restored as a single stream on one connection: its structure was not read (quick verification), so it is not split for --jobs ${jobs}. A deep verification (without --quick-verify) lets it restore on ${jobs} connections.`,
    };
  if (!s.recognised)
    return {
      warning: `${file} is restored as a single stream on one connection: ${typeof s.reason === 'string' ? s.reason : 'its structure is not one this tool splits'}, so it is not split for --jobs ${jobs} (the result is the same, only slower).`,
    };
  return {
    parallel: {
      jobs,
      ...(typeof s.entries === 'number' && Number.isFinite(s.entries) ? { entries: s.entries } : {}),
      ...(scratch ? { truncateBeforeCopy: true } : {}),
    },
  };
}
