/**
 * The real cause of a failure, in the operator's words (issue 11: "diagnoses name the real cause").
 * Pure functions over what a command printed or what a file-system call threw.
 */

/**
 * Why a PostgreSQL client (psql, pg_restore) lost its session, when its output says so: the server
 * stopped or crashed, or another session (or a shutdown) ended this one. Undefined when the output
 * does not say (then the dump or the command may be at fault).
 */
export function postgresSessionEnd(lines: readonly string[]): string | undefined {
  const text = lines.join('\n');
  if (/terminating connection due to administrator command/i.test(text)) {
    return 'the server ended the session ("terminating connection due to administrator command"): another session ran pg_terminate_backend on it, or the server is shutting down. The dump is not at fault';
  }
  if (
    /terminating connection due to (conflict with recovery|idle-in-transaction timeout|idle-session timeout|unexpected postmaster exit)/i.test(
      text,
    )
  ) {
    return `the server ended the session (${/terminating connection due to [^\n"]*/i.exec(text)?.[0] ?? ''}). The dump is not at fault`;
  }
  if (/the database system is shutting down|the database system is starting up|the database system is in recovery mode/i.test(text)) {
    return `the server is not accepting sessions (${/the database system is [a-z ]+/i.exec(text)?.[0] ?? ''}). The dump is not at fault`;
  }
  if (
    /server closed the connection unexpectedly|connection to server was lost|could not receive data from server|no connection to the server|connection to server .* failed/i.test(
      text,
    )
  ) {
    return 'the connection to the server was lost (the server stopped, crashed or restarted mid-load; see its log). The dump is not at fault';
  }
  if (/could not extend file|No space left on device/i.test(text)) {
    return "the server's disk is full (No space left on device); free space where the server keeps its data, then restore again. The dump is not at fault";
  }
  return undefined;
}

/** A zlib error means the compressed bytes are bad; anything else (EPIPE, premature close) came from the reader dying. */
export function isDecompressionDamage(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return code.startsWith('Z_') || /incorrect header check|invalid|unexpected end of file|bad/i.test(error.message);
}

/** The file-system errno codes that have a cause worth naming, in words. */
export function fsCause(error: unknown, where: string): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOSPC':
      return `the file system holding ${where} is full (ENOSPC: no space left on device)`;
    case 'EDQUOT':
      return `the disk quota for ${where} is exhausted (EDQUOT)`;
    case 'EROFS':
      return `${where} is on a read-only file system (EROFS)`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ${where} (${code})`;
    default:
      return undefined;
  }
}
