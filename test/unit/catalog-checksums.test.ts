import { describe, expect, it } from 'vitest';
import { lookupSum, parseSha256Sums } from '../../source/catalog/checksums.js';

const A = 'a'.repeat(64);
const B = 'B'.repeat(64);

describe('checksum files', () => {
  it('reads sha256sum text and binary lines, BSD lines and bare digests', () => {
    const { sums, warnings } = parseSha256Sums(
      `${A}  postgres.sql.gz\n${B} *./redis.rdb\nSHA256 (prometheus-data.tar.gz) = ${A}\n# comment\n`,
    );
    expect(sums.get('postgres.sql.gz')).toBe(A);
    expect(sums.get('redis.rdb')).toBe(B.toLowerCase());
    expect(sums.get('prometheus-data.tar.gz')).toBe(A);
    expect(warnings).toEqual([]);
    expect(parseSha256Sums(`${A}\n`).sums.get('')).toBe(A);
  });

  it('warns about lines that are not checksums', () => {
    const { sums, warnings } = parseSha256Sums('nonsense $(rm -rf /)\nabc123  short.txt\n');
    expect(sums.size).toBe(0);
    expect(warnings).toHaveLength(2);
  });

  it('looks a file up by relative path, then by base name', () => {
    const { sums } = parseSha256Sums(`${A}  sub/x.dump\n${B}  y.rdb\n`);
    expect(lookupSum(sums, '/r', '/r/sub/x.dump')).toBe(A);
    expect(lookupSum(sums, '/r', '/r/other/y.rdb')).toBe(B.toLowerCase());
    expect(lookupSum(sums, '/r', '/r/z')).toBeUndefined();
  });
});
