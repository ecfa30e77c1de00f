import { describe, expect, it } from 'vitest';
import { formatUtc, parseCompactStamp, parseDashedStamp, parseRecordedTime, stampInName } from '../../source/catalog/names.js';

describe('times recorded in names and metadata', () => {
  it('parses the story-portal directory name as UTC', () => {
    expect(parseDashedStamp('2026-01-18_01-45-13')).toBe('2026-01-18T01:45:13.000Z');
    expect(parseDashedStamp('2026-02-31_01-45-13')).toBeUndefined();
    expect(parseDashedStamp('2026-01-18_25-45-13')).toBeUndefined();
  });

  it('parses the metachat stamp as UTC', () => {
    expect(parseCompactStamp('20260118_014513')).toBe('2026-01-18T01:45:13.000Z');
    expect(parseCompactStamp('20261318_014513')).toBeUndefined();
  });

  it('honours zones written in metadata and refuses unknown ones', () => {
    expect(parseRecordedTime('2026-01-18 01:45:13')).toBe('2026-01-18T01:45:13.000Z');
    expect(parseRecordedTime('2026-01-18T01:45:13Z')).toBe('2026-01-18T01:45:13.000Z');
    expect(parseRecordedTime('2026-01-18 03:45:13 +02:00')).toBe('2026-01-18T01:45:13.000Z');
    expect(parseRecordedTime('2026-01-18T01:45:13.250-0100')).toBe('2026-01-18T02:45:13.250Z');
    expect(parseRecordedTime('Sun Jan 18 01:45:13 UTC 2026')).toBe('2026-01-18T01:45:13.000Z');
    expect(parseRecordedTime('Sun Jan 18 01:45:13 2026')).toBe('2026-01-18T01:45:13.000Z');
    expect(parseRecordedTime('Sun Jan 18 01:45:13 CET 2026')).toBeUndefined();
    expect(parseRecordedTime('$(touch /tmp/pwned)')).toBeUndefined();
    expect(parseRecordedTime('yesterday')).toBeUndefined();
  });

  it('finds a stamp inside a file name', () => {
    expect(stampInName('metachat_20260118_014513.dump')).toEqual({ stamp: '20260118_014513', iso: '2026-01-18T01:45:13.000Z' });
    expect(stampInName('app-2026-01-18_01-45-13.sql.gz')?.iso).toBe('2026-01-18T01:45:13.000Z');
    expect(stampInName('backup.sql.gz')).toBeUndefined();
  });

  it('formats for the list', () => {
    expect(formatUtc('2026-01-18T01:45:13.000Z')).toBe('2026-01-18 01:45:13');
  });
});
