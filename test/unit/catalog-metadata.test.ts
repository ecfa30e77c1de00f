import { describe, expect, it } from 'vitest';
import { METADATA_MAX_LINE, metadataValue, parseMetadata } from '../../source/catalog/metadata.js';

describe('metadata.txt parsing', () => {
  it('reads "Key: value" lines and indented lists under a "Key:" line', () => {
    const text = [
      '=== Story Portal Backup ===',
      'Backup Date: 2026-01-18_01-45-13',
      'Hostname: vps-00',
      'Components:',
      '  - PostgreSQL (agentic_platform)',
      '  - Redis',
      '  - Prometheus',
      'Sizes:',
      '  postgres.sql.gz: 12M',
      'Retention: 7 days',
      '',
    ].join('\n');
    const { metadata, warnings } = parseMetadata(text);
    expect(metadata['Backup Date']).toBe('2026-01-18_01-45-13');
    expect(metadata['Hostname']).toBe('vps-00');
    expect(metadata['Components']).toEqual(['PostgreSQL (agentic_platform)', 'Redis', 'Prometheus']);
    expect(metadata['Sizes']).toEqual(['postgres.sql.gz: 12M']);
    expect(metadata['Retention']).toBe('7 days');
    expect(warnings).toEqual([]);
  });

  it('reads the story-portal backup.sh shape, including a value on the line after its key', () => {
    const text = [
      'Backup Date: 2026-01-18_01-45-13',
      'Platform: Story Portal V2',
      'Components:',
      '  - PostgreSQL (agentic_platform database)',
      '  - Redis (session/cache data)',
      '',
      'Container Status:',
      '  agentic-postgres: Up 3 days (healthy)',
      '',
      'Backup Size:',
      '12M\t/tmp/story-portal-backups/2026-01-18_01-45-13',
      '',
    ].join('\n');
    const { metadata, warnings } = parseMetadata(text);
    expect(metadata['Container Status']).toEqual(['agentic-postgres: Up 3 days (healthy)']);
    expect(metadata['Backup Size']).toBe('12M\t/tmp/story-portal-backups/2026-01-18_01-45-13');
    expect(metadata['Components']).toEqual(['PostgreSQL (agentic_platform database)', 'Redis (session/cache data)']);
    expect(warnings).toEqual([]);
  });

  it('keeps values with colons whole and handles CRLF', () => {
    const { metadata } = parseMetadata('Time: 01:45:13\r\nURL: http://x:9090/\r\n');
    expect(metadata['Time']).toBe('01:45:13');
    expect(metadata['URL']).toBe('http://x:9090/');
  });

  it('finds keys case- and separator-insensitively', () => {
    const { metadata } = parseMetadata('backup_date: 2026-01-18_01-45-13\n');
    expect(metadataValue(metadata, 'Backup Date')).toBe('2026-01-18_01-45-13');
  });

  it('treats shell syntax as text and warns about it', () => {
    const { metadata, warnings } = parseMetadata('Backup Date: $(touch /tmp/pwned)\nNote: `id`; rm -rf / && echo ${HOME}\n');
    expect(metadata['Backup Date']).toBe('$(touch /tmp/pwned)');
    expect(metadata['Note']).toBe('`id`; rm -rf / && echo ${HOME}');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/line 1: the value of "Backup Date" contains shell syntax; it is treated as text and never run/);
  });

  it('strips NUL bytes and terminal escape sequences, with warnings', () => {
    const { metadata, warnings } = parseMetadata('Backup\u0000 Date: 2026-01-18_01-45-13\nHost: \u001B[31mred\u001B[0m\n');
    expect(metadata['Backup Date']).toBe('2026-01-18_01-45-13');
    expect(metadata['Host']).toBe('[31mred[0m');
    expect(warnings.some((w) => /NUL bytes/.test(w))).toBe(true);
    expect(warnings.some((w) => /control characters/.test(w))).toBe(true);
  });

  it('caps megabyte lines instead of keeping them', () => {
    const huge = 'A'.repeat(2 * 1024 * 1024);
    const { metadata, warnings } = parseMetadata(`Backup Date: 2026-01-18_01-45-13\nJunk: ${huge}\n`);
    expect((metadata['Junk'] as string).length).toBeLessThanOrEqual(METADATA_MAX_LINE);
    expect(warnings[0]).toMatch(/line 2 is \d+ characters long; only the first 4096 were read/);
    expect(metadata['Backup Date']).toBe('2026-01-18_01-45-13');
  });

  it('ignores prototype keys and stray list items, warns on duplicates', () => {
    const { metadata, warnings } = parseMetadata('  - orphan\n__proto__: polluted\nA: 1\nA: 2\n');
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(metadata['A']).toBe('2');
    expect(warnings.join('\n')).toMatch(/outside a "Key:" list/);
    expect(warnings.join('\n')).toMatch(/"__proto__" ignored/);
    expect(warnings.join('\n')).toMatch(/appears more than once/);
  });

  it('limits the number of warnings', () => {
    const text = Array.from({ length: 100 }, (_, i) => `K${i}: $(x)`).join('\n');
    const { warnings } = parseMetadata(text);
    expect(warnings.length).toBe(21);
    expect(warnings[20]).toMatch(/80 more warnings not shown/);
  });
});
