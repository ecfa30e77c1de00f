import path from 'node:path';
import { sanitizeText } from '../text/sanitize.js';

/** What one tar entry looks like to the safety check. */
export interface TarEntryInfo {
  path: string;
  type: string;
  linkpath?: string;
}

export interface TarEntryProblem {
  code: 'tar-unsafe-path' | 'tar-unsafe-link' | 'tar-special-file';
  message: string;
}

const SAFE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** `./a/./b/` → `a/b`; keeps `..` and a leading `/` so they can be judged. */
export function normalizeEntryPath(p: string): string {
  const abs = p.startsWith('/');
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  return `${abs ? '/' : ''}${parts.join('/')}`;
}

function escapes(p: string): boolean {
  if (p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.includes('\\')) return true;
  const norm = path.posix.normalize(p);
  return norm === '..' || norm.startsWith('../');
}

function show(p: string): string {
  return `"${sanitizeText(p, 200)}"`;
}

/**
 * Would extracting this entry write outside the destination, or create something that is not a
 * plain file, directory or link inside it? Absolute paths, `..`, links (symbolic or hard)
 * leaving the archive, devices, FIFOs and unknown types are refused.
 */
export function checkTarEntry(entry: TarEntryInfo): TarEntryProblem | undefined {
  const p = entry.path;
  if (p.includes('\u0000')) return { code: 'tar-unsafe-path', message: `entry ${show(p)} has a NUL byte in its name` };
  if (p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p)) return { code: 'tar-unsafe-path', message: `entry ${show(p)} has an absolute path` };
  if (p.split(/[\\/]/).includes('..')) return { code: 'tar-unsafe-path', message: `entry ${show(p)} climbs out of the archive with ".."` };
  if (!SAFE_TYPES.has(entry.type)) {
    return {
      code: 'tar-special-file',
      message: `entry ${show(p)} is a ${entry.type} (only files, directories and links inside the archive are allowed)`,
    };
  }
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
    const target = entry.linkpath ?? '';
    const kind = entry.type === 'SymbolicLink' ? 'symlink' : 'hard link';
    if (target === '') return { code: 'tar-unsafe-link', message: `${kind} ${show(p)} has no target` };
    // A symlink resolves from its own directory; a hard link names a path from the archive root.
    const resolved =
      entry.type === 'SymbolicLink' && !target.startsWith('/')
        ? path.posix.join(path.posix.dirname(normalizeEntryPath(p)), target)
        : target;
    if (escapes(resolved))
      return { code: 'tar-unsafe-link', message: `${kind} ${show(p)} points outside the archive (to ${show(target)})` };
  }
  return undefined;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Tracks the shape of a Prometheus data dir from tar entry paths, in constant memory per block. */
export class PrometheusShape {
  private readonly blocks = new Map<string, boolean>();
  private readonly nestedBlocks = new Map<string, boolean>();
  private readonly prefixes = new Set<string>();
  private readonly top = new Set<string>();
  hasWal = false;
  hasChunksHead = false;
  nestedWal = false;
  entries = 0;

  add(entryPath: string): void {
    this.entries++;
    const parts = normalizeEntryPath(entryPath).split('/').filter(Boolean);
    if (parts.length === 0) return;
    this.look(parts, false);
    if (this.top.size <= 64) this.top.add(parts[0]!);
    if (parts.length > 1) {
      if (this.prefixes.size <= 8) this.prefixes.add(parts[0]!);
      this.look(parts.slice(1), true);
    }
  }

  private look(parts: string[], nested: boolean): void {
    const [first, second] = parts;
    if (first === undefined) return;
    const blocks = nested ? this.nestedBlocks : this.blocks;
    if (ULID.test(first)) {
      const had = blocks.get(first) ?? false;
      blocks.set(first, had || second === 'meta.json');
    }
    if (first === 'wal' || first === 'chunks_head') {
      if (nested) this.nestedWal = true;
      else if (first === 'wal') this.hasWal = true;
      else this.hasChunksHead = true;
    }
  }

  get blockCount(): number {
    return [...this.blocks.values()].filter(Boolean).length;
  }

  get blocksWithoutMeta(): string[] {
    return [...this.blocks.entries()].filter(([, meta]) => !meta).map(([b]) => b);
  }

  /** A problem with the shape, or undefined when it looks like a data dir. */
  problem(): { code: string; message: string } | undefined {
    if (this.blockCount > 0 || this.hasWal || this.hasChunksHead) {
      const missing = this.blocksWithoutMeta;
      if (missing.length > 0) {
        return {
          code: 'prometheus-block-incomplete',
          message: `${missing.length} block director${missing.length === 1 ? 'y has' : 'ies have'} no meta.json (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})`,
        };
      }
      return undefined;
    }
    const nestedOk = [...this.nestedBlocks.values()].some(Boolean) || this.nestedWal;
    if (nestedOk && this.prefixes.size === 1) {
      const prefix = [...this.prefixes][0] ?? '';
      return {
        code: 'prometheus-nested',
        message: `the data dir is inside ${show(`${prefix}/`)} in the archive; a restore expects its contents at the top (made with \`tar czf - -C <datadir> .\`)`,
      };
    }
    return {
      code: 'prometheus-shape',
      message: `does not look like a Prometheus data dir: no block directories with meta.json, no wal/ or chunks_head/ (top level: ${[...this.top].slice(0, 6).map(show).join(', ') || 'nothing'})`,
    };
  }
}
