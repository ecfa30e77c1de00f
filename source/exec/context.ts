import path from 'node:path';
import type { ExecContext } from '../recipe/schema.js';

/**
 * Where a component's commands run: on this host, inside a running container (`docker exec`,
 * `docker compose exec`), and how files reach a container (`docker cp`) or are moved inside the
 * volumes of a *stopped* container (`docker run --rm --volumes-from`). Everything here is pure:
 * it builds argv arrays, it never runs them.
 *
 * Never `docker exec` into a container that the plan has stopped: it fails ("container is not
 * running"), which is exactly the bug of the audited restore.sh. Files of a stopped container are
 * handled with `docker cp` (works on stopped containers, volumes included) and a throwaway helper
 * container that mounts the stopped container's volumes.
 */

export const DEFAULT_HELPER_IMAGE = 'busybox:stable';

export interface WrapOptions {
  /** The command reads stdin (`docker exec -i`). */
  interactive?: boolean;
  /** Names of environment variables passed into the container (`-e NAME`: the value comes from the docker client's environment, never argv). */
  env?: readonly string[];
}

/** The argv that runs `argv` in the context. Host: unchanged. */
export function wrapArgv(ctx: ExecContext, argv: readonly string[], opts: WrapOptions = {}): string[] {
  const envFlags = (opts.env ?? []).flatMap((name) => ['-e', name]);
  switch (ctx.kind) {
    case 'host':
      return [...argv];
    case 'docker':
      return ['docker', 'exec', ...(opts.interactive ? ['-i'] : []), ...envFlags, ctx.container, ...argv];
    case 'compose':
      // `compose exec` attaches stdin by default; -T: no pseudo-TTY (binary-safe pipes, no TTY needed).
      return [...composeBase(ctx), 'exec', '-T', ...envFlags, ctx.service, ...argv];
  }
}

function composeBase(ctx: Extract<ExecContext, { kind: 'compose' }>): string[] {
  return [...(ctx.command ?? ['docker', 'compose']), ...(ctx.file ? ['-f', ctx.file] : []), ...(ctx.project ? ['-p', ctx.project] : [])];
}

/** True when commands run inside a container. */
export function isContainer(ctx: ExecContext): ctx is Exclude<ExecContext, { kind: 'host' }> {
  return ctx.kind !== 'host';
}

/** The container name `docker cp` / `--volumes-from` use. */
export function containerName(ctx: ExecContext): string | undefined {
  return ctx.kind === 'host' ? undefined : ctx.container;
}

/** `docker cp HOSTPATH CONTAINER:CTXPATH` (works on stopped containers too). Undefined on the host. */
export function copyIntoArgv(ctx: ExecContext, hostPath: string, ctxPath: string): string[] | undefined {
  if (ctx.kind === 'host') return undefined;
  return ['docker', 'cp', hostPath, `${ctx.container}:${ctxPath}`];
}

/** `docker cp CONTAINER:CTXPATH HOSTPATH`. Undefined on the host. */
export function copyOutArgv(ctx: ExecContext, ctxPath: string, hostPath: string): string[] | undefined {
  if (ctx.kind === 'host') return undefined;
  return ['docker', 'cp', `${ctx.container}:${ctxPath}`, hostPath];
}

/**
 * `docker cp - CONTAINER:DIR`: extract a tar stream read from stdin into DIR (which must exist).
 * Fed with the decompressed tarball (the engine's gunzip), so nothing is staged on disk.
 */
export function extractIntoArgv(ctx: ExecContext, ctxDir: string): string[] | undefined {
  if (ctx.kind === 'host') return undefined;
  return ['docker', 'cp', '-', `${ctx.container}:${ctxDir}`];
}

/** A human label: "host", "docker exec story-portal-postgres", "docker compose exec db". */
export function contextLabel(ctx: ExecContext): string {
  switch (ctx.kind) {
    case 'host':
      return 'host';
    case 'docker':
      return `docker exec ${ctx.container}`;
    case 'compose':
      return `${(ctx.command ?? ['docker', 'compose']).join(' ')} exec ${ctx.service}`;
  }
}

/** Label for commands that run in a helper container over a stopped container's volumes. */
export function helperLabel(ctx: ExecContext): string {
  return ctx.kind === 'host' ? 'host' : `docker run --volumes-from ${ctx.container}`;
}

/**
 * Run `argv` in a throwaway helper container that mounts the (possibly stopped) container's
 * volumes: `docker run --rm --volumes-from C IMAGE ...argv`. Used for every file operation inside
 * a stopped container. On the host, argv runs as is.
 */
export function volumeHelperArgv(ctx: ExecContext, argv: readonly string[]): string[] {
  if (ctx.kind === 'host') return [...argv];
  const image = ctx.helperImage ?? DEFAULT_HELPER_IMAGE;
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('volumeHelperArgv: empty argv');
  // --entrypoint: the program runs whatever the image's ENTRYPOINT is (prom/prometheus has one,
  // and an offline host may have no image but the production ones); --user 0:0: files in the
  // volume belong to several users (an image's USER may be nobody); --network none: it needs none.
  return [
    'docker',
    'run',
    '--rm',
    '--volumes-from',
    ctx.container,
    '--user',
    '0:0',
    '--network',
    'none',
    '--entrypoint',
    program,
    image,
    ...args,
  ];
}

/*
 * Constant shell scripts. Data (paths, names) are passed as positional parameters ($1, $2, ...),
 * never spliced into the script text, so a hostile file name is just a string. The scripts use
 * only POSIX sh and busybox applets.
 */

/** Refuses to act on a directory a helper container cannot see (not on one of the container's volumes). */
const REQUIRE_DIR = 'need_dir() { [ -d "$1" ] || { echo "restore-assistant: $1 does not exist or is not a directory" >&2; exit 3; }; }';

/** `move FROM TO` when FROM exists; refuses to overwrite TO. $1=from $2=to. */
export const MOVE_IF_EXISTS_SCRIPT = [
  'set -eu',
  REQUIRE_DIR,
  'need_dir "$(dirname -- "$1")"',
  'if [ -e "$1" ] || [ -L "$1" ]; then',
  '  if [ -e "$2" ] || [ -L "$2" ]; then echo "restore-assistant: $2 already exists; not overwriting it" >&2; exit 4; fi',
  '  mv -- "$1" "$2"',
  'fi',
].join('\n');

/**
 * Move every entry of DIR (except earlier safety dirs) into DIR/NAME, so a volume mount point
 * keeps its identity and the old contents stay on the same file system (a rename, no copy).
 * $1=dir $2=name.
 */
export const MOVE_CONTENTS_ASIDE_SCRIPT = [
  'set -eu',
  REQUIRE_DIR,
  'need_dir "$1"',
  'if [ -e "$1/$2" ]; then echo "restore-assistant: $1/$2 already exists; not overwriting it" >&2; exit 4; fi',
  'mkdir -- "$1/$2"',
  'for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do',
  '  { [ -e "$f" ] || [ -L "$f" ]; } || continue',
  '  case "${f##*/}" in "$2"|.pre_restore_*|.failed_restore_*) continue ;; esac',
  '  mv -- "$f" "$1/$2/"',
  'done',
].join('\n');

/**
 * Undo of MOVE_CONTENTS_ASIDE_SCRIPT: move what is in DIR now into DIR/FAILED (kept, not deleted),
 * then the entries of DIR/NAME back into DIR. Safe to run when the aside step did not finish.
 * $1=dir $2=name $3=failed-name.
 */
export const MOVE_CONTENTS_BACK_SCRIPT = [
  'set -eu',
  REQUIRE_DIR,
  'need_dir "$1"',
  '[ -d "$1/$2" ] || exit 0',
  'mkdir -p -- "$1/$3"',
  'for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do',
  '  { [ -e "$f" ] || [ -L "$f" ]; } || continue',
  '  case "${f##*/}" in "$2"|"$3"|.pre_restore_*|.failed_restore_*) continue ;; esac',
  '  mv -- "$f" "$1/$3/"',
  'done',
  'for f in "$1/$2"/* "$1/$2"/.[!.]* "$1/$2"/..?*; do',
  '  { [ -e "$f" ] || [ -L "$f" ]; } || continue',
  '  mv -- "$f" "$1/"',
  'done',
  'rmdir -- "$1/$2"',
].join('\n');

/** `mkdir -p DIR` after checking its parent is on a volume. $1=dir. */
export const MKDIR_SCRIPT = ['set -eu', REQUIRE_DIR, 'need_dir "$(dirname -- "$1")"', 'mkdir -p -- "$1"'].join('\n');

/** Write a Redis 7 AOF manifest naming one base RDB file. $1=manifest path $2=base file name. */
export const WRITE_AOF_MANIFEST_SCRIPT = [
  'set -eu',
  REQUIRE_DIR,
  'need_dir "$(dirname -- "$1")"',
  'printf "file %s seq 1 type b\\n" "$2" > "$1.tmp"',
  'mv -- "$1.tmp" "$1"',
].join('\n');

/** Remove the files a restore placed (only those exact paths). $@=paths. */
export const REMOVE_PLACED_SCRIPT = ['set -eu', 'for f in "$@"; do rm -rf -- "$f"; done'].join('\n');

/** Remove stale Prometheus run files after extraction, optionally chown. $1=dir $2=owner ('' for none). */
export const PROMETHEUS_FINISH_SCRIPT = [
  'set -eu',
  REQUIRE_DIR,
  'need_dir "$1"',
  'rm -f -- "$1/lock" "$1/queries.active"',
  'if [ -n "$2" ]; then',
  '  for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do',
  '    { [ -e "$f" ] || [ -L "$f" ]; } || continue',
  '    case "${f##*/}" in .pre_restore_*|.failed_restore_*) continue ;; esac',
  '    chown -R -- "$2" "$f"',
  '  done',
  '  chown -- "$2" "$1"',
  'fi',
].join('\n');

/** argv of `sh -c SCRIPT sh ARGS...` (the `sh` is $0). */
export function shScript(script: string, args: readonly string[]): string[] {
  return ['sh', '-c', script, 'sh', ...args];
}

/** POSIX dirname for paths inside containers (always '/'-separated). */
export function ctxDirname(p: string): string {
  return path.posix.dirname(p);
}

export function ctxJoin(...parts: string[]): string {
  return path.posix.join(...parts);
}
