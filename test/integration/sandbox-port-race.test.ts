import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  startNodeExporter,
  startPostgres,
  startPrometheus,
  startPushgateway,
  startRedis,
  type PortRetryOptions,
} from '../../source/sandbox/index.js';

/**
 * The port race of sandbox servers (freePort() picks a port, another process binds it before the
 * server does): each server is handed a port another process already listens on, first; it must
 * come up on a new one, and the squatter must still hold its port (nothing was killed or stolen).
 */
describe('sandbox servers retry on a port another process took first', () => {
  let base: string;
  let squatter: Server;
  let taken: number;
  const picked: number[] = [];
  /** The taken port first, then free ones. */
  const pickPort = (): PortRetryOptions['pickPort'] => {
    let first = true;
    return async () => {
      const p = first ? taken : await freePort();
      first = false;
      picked.push(p);
      return p;
    };
  };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-port-race-'));
    squatter = createServer((s) => s.end());
    squatter.listen({ host: '127.0.0.1', port: 0, exclusive: true });
    await once(squatter, 'listening');
    const a = squatter.address();
    taken = typeof a === 'object' && a ? a.port : 0;
  });

  afterAll(async () => {
    squatter?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  const stillSquatted = (): void => {
    const a = squatter.address();
    expect(typeof a === 'object' && a ? a.port : 0).toBe(taken);
  };

  it('PostgreSQL (pg_ctl fails with "could not bind"): a new cluster on another port', async () => {
    picked.length = 0;
    const pg = await startPostgres({ baseDir: base, pickPort: pickPort() });
    try {
      expect(picked[0]).toBe(taken);
      expect(picked.length).toBeGreaterThanOrEqual(2);
      expect(pg.port).not.toBe(taken);
      expect(await pg.psql('SELECT 41 + 1')).toBe('42');
      stillSquatted();
    } finally {
      await pg.dispose();
    }
  }, 120_000);

  it('Redis and Prometheus (under service-ctl): started on another port', async () => {
    const [redis, prom] = await Promise.all([
      startRedis({ baseDir: base, pickPort: pickPort(), save: '' }),
      startPrometheus({ baseDir: base, pickPort: pickPort() }),
    ]);
    try {
      expect(redis.port).not.toBe(taken);
      expect(prom.port).not.toBe(taken);
      expect(await redis.cli(['PING'])).toBe('PONG');
      expect((await fetch(`${prom.url}/-/ready`)).status).toBe(200);
      stillSquatted();
    } finally {
      await Promise.all([redis.dispose(), prom.dispose()]);
    }
  }, 120_000);

  it('pushgateway and node_exporter: started on another port', async () => {
    const [gw, ne] = await Promise.all([
      startPushgateway({ baseDir: base, pickPort: pickPort() }),
      startNodeExporter({ baseDir: base, pickPort: pickPort() }),
    ]);
    try {
      expect(gw.port).not.toBe(taken);
      expect(ne.port).not.toBe(taken);
      expect((await fetch(`${gw.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${ne.url}/metrics`)).status).toBe(200);
      stillSquatted();
    } finally {
      await Promise.all([gw.dispose(), ne.dispose()]);
    }
  }, 120_000);
});
