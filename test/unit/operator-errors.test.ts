import { describe, expect, it } from 'vitest';
import { formatError, operatorErrorOf } from '../../source/errors.js';
import { ExitCode } from '../../source/exit-codes.js';

/** Issue 12: a plain permission (or read-only, or full disk) error is the operator's situation, not "Internal error ... a bug" (exit 70). */
describe('operatorErrorOf', () => {
  const sys = (code: string, syscall: string, path?: string): NodeJS.ErrnoException =>
    Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, ...(path ? { path } : {}) });

  it('EACCES/EPERM: permission denied on the path, exit 9, what to do; not a bug', () => {
    const e = operatorErrorOf(sys('EACCES', 'open', '/var/backups/x.sql.gz'))!;
    expect(e.exitCode).toBe(ExitCode.preflightFailed);
    const text = formatError(e);
    expect(text).toContain('Permission denied: this user cannot read /var/backups/x.sql.gz (EACCES)');
    expect(text).toContain('Next: run restore-assistant as root');
    expect(text).not.toContain('Internal error');
    expect(operatorErrorOf(sys('EPERM', 'rename', '/srv/data'))!.message).toContain('cannot use /srv/data');
  });

  it('EROFS and ENOSPC name the path and the fix', () => {
    expect(formatError(operatorErrorOf(sys('EROFS', 'open', '/mnt/ro/evidence'))!)).toContain('read-only file system');
    expect(formatError(operatorErrorOf(sys('ENOSPC', 'write', '/var/lib/x'))!)).toContain('df -h /var/lib/x');
  });

  it('anything else stays a bug (internal)', () => {
    expect(operatorErrorOf(new TypeError('x is undefined'))).toBeUndefined();
    expect(operatorErrorOf(sys('ECONNRESET', 'read'))).toBeUndefined();
    expect(operatorErrorOf(undefined)).toBeUndefined();
    expect(operatorErrorOf('EACCES')).toBeUndefined();
  });
});
