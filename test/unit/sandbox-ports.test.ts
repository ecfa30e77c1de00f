import { describe, expect, it } from 'vitest';
import { isPortClash, withFreePort } from '../../source/sandbox/ports.js';

/** The bounded port retry of sandbox servers (the servers themselves: test/integration/sandbox-port-race.test.ts). */
describe('withFreePort', () => {
  const clash = (port: number): Error =>
    new Error(`pg_ctl start failed\nLOG:  could not bind IPv4 address "127.0.0.1": Address already in use (port ${port})`);

  it('recognises the bind failures of PostgreSQL, Redis, the Go servers and service-ctl, and nothing else', () => {
    expect(isPortClash(clash(1))).toBe(true);
    expect(
      isPortClash(new Error('Warning: Could not create server TCP listening socket 127.0.0.1:5555: bind: Address already in use')),
    ).toBe(true);
    expect(isPortClash(new Error('listen tcp 127.0.0.1:9090: bind: address already in use'))).toBe(true);
    expect(isPortClash(new Error('service-ctl: x: 127.0.0.1:1 already accepts connections but /p names no running process'))).toBe(true);
    expect(isPortClash(new Error('initdb: error: directory "/x" exists but is not empty'))).toBe(false);
    expect(isPortClash(new Error('redis-server not found on PATH'))).toBe(false);
  });

  it('retries on a clash with the next port, and gives up after the bounded number of tries naming each port', async () => {
    const ports = [4001, 4002, 4003];
    const tried: number[] = [];
    const result = await withFreePort(
      'T',
      async (port) => {
        tried.push(port);
        if (port !== 4003) throw clash(port);
        return `up on ${port}`;
      },
      { pickPort: async () => ports.shift() ?? 0 },
    );
    expect(result).toBe('up on 4003');
    expect(tried).toEqual([4001, 4002, 4003]);

    let n = 5000;
    let calls = 0;
    const failing = withFreePort(
      'Redis sandbox',
      async (port) => {
        calls++;
        throw clash(port);
      },
      { pickPort: async () => ++n, attempts: 3 },
    );
    await expect(failing).rejects.toThrow(/Redis sandbox: port taken by another process on each of 3 tries \(5001, 5002, 5003\)/);
    expect(calls).toBe(3);
  });

  it('does not retry other failures', async () => {
    let calls = 0;
    await expect(
      withFreePort(
        'T',
        async () => {
          calls++;
          throw new Error('initdb failed: permission denied');
        },
        { pickPort: async () => 1234 },
      ),
    ).rejects.toThrow('initdb failed');
    expect(calls).toBe(1);
  });
});
