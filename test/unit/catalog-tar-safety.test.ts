import { describe, expect, it } from 'vitest';
import { checkTarEntry, PrometheusShape } from '../../source/catalog/tar-safety.js';

describe('tar entry safety', () => {
  it('accepts files, directories and links that stay inside', () => {
    expect(checkTarEntry({ path: './', type: 'Directory' })).toBeUndefined();
    expect(checkTarEntry({ path: './wal/00000001', type: 'File' })).toBeUndefined();
    expect(checkTarEntry({ path: './a/b/link', type: 'SymbolicLink', linkpath: '../c' })).toBeUndefined();
    expect(checkTarEntry({ path: './hard', type: 'Link', linkpath: './wal/00000001' })).toBeUndefined();
  });

  it('rejects absolute paths and ".."', () => {
    expect(checkTarEntry({ path: '/etc/passwd', type: 'File' })?.code).toBe('tar-unsafe-path');
    expect(checkTarEntry({ path: '../evil', type: 'File' })?.code).toBe('tar-unsafe-path');
    expect(checkTarEntry({ path: './a/../../evil', type: 'File' })?.code).toBe('tar-unsafe-path');
  });

  it('rejects links leaving the archive', () => {
    expect(checkTarEntry({ path: './link', type: 'SymbolicLink', linkpath: '../../etc/passwd' })?.code).toBe('tar-unsafe-link');
    expect(checkTarEntry({ path: './a/link', type: 'SymbolicLink', linkpath: '../../x' })?.code).toBe('tar-unsafe-link');
    expect(checkTarEntry({ path: './link', type: 'SymbolicLink', linkpath: '/etc/passwd' })?.code).toBe('tar-unsafe-link');
    expect(checkTarEntry({ path: './hl', type: 'Link', linkpath: '../outside' })?.code).toBe('tar-unsafe-link');
    expect(checkTarEntry({ path: './hl', type: 'Link', linkpath: '/etc/shadow' })?.code).toBe('tar-unsafe-link');
  });

  it('rejects devices, FIFOs and unknown types', () => {
    for (const type of ['CharacterDevice', 'BlockDevice', 'FIFO', 'Unsupported']) {
      expect(checkTarEntry({ path: './x', type })?.code).toBe('tar-special-file');
    }
  });

  it('shows hostile names safely', () => {
    const p = checkTarEntry({ path: '/\u001B[2Jevil', type: 'File' });
    expect(p?.message).not.toContain('\u001B');
  });
});

describe('Prometheus data dir shape', () => {
  it('accepts block dirs with meta.json and wal/', () => {
    const s = new PrometheusShape();
    for (const p of [
      './',
      './01HQZXABCDEFGHJKMNPQRSTVWX/',
      './01HQZXABCDEFGHJKMNPQRSTVWX/meta.json',
      './01HQZXABCDEFGHJKMNPQRSTVWX/index',
      './wal/',
      './wal/00000000',
    ])
      s.add(p);
    expect(s.problem()).toBeUndefined();
    expect(s.blockCount).toBe(1);
    expect(s.hasWal).toBe(true);
  });

  it('flags a block without meta.json', () => {
    const s = new PrometheusShape();
    for (const p of ['./01HQZXABCDEFGHJKMNPQRSTVWX/index', './wal/00000000']) s.add(p);
    expect(s.problem()?.code).toBe('prometheus-block-incomplete');
  });

  it('flags data nested one level down', () => {
    const s = new PrometheusShape();
    for (const p of ['prometheus/', 'prometheus/wal/00000000', 'prometheus/chunks_head/000001']) s.add(p);
    expect(s.problem()?.code).toBe('prometheus-nested');
  });

  it('flags an archive that is not a data dir', () => {
    const s = new PrometheusShape();
    for (const p of ['./etc/', './etc/hosts']) s.add(p);
    expect(s.problem()?.code).toBe('prometheus-shape');
  });
});
