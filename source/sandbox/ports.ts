import { createServer } from 'node:net';

/**
 * A TCP port that is free on 127.0.0.1 right now (the kernel picks it: listen on port 0, read it, close).
 * There is an unavoidable window between closing and the caller binding it; callers that start a
 * server on it should report the port in their error so a rare collision is recognisable.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error) => reject(new Error(`freePort: cannot listen on ${host}:0: ${error.message}`, { cause: error })));
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: unexpected address from ${host}:0: ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}

/** How many ports a sandbox server tries before giving up on bind clashes. */
export const PORT_ATTEMPTS = 5;

/**
 * Did a server fail to start because its port was taken between freePort() and its own bind?
 * PostgreSQL: `could not bind IPv4 address "127.0.0.1": Address already in use`; Redis:
 * `bind: Address already in use`; Go servers (Prometheus, pushgateway, node_exporter):
 * `bind: address already in use`; service-ctl refuses to start when the port already answers.
 */
export function isPortClash(error: unknown): boolean {
  const text = error instanceof Error ? `${error.message}\n${String((error as { stderr?: unknown }).stderr ?? '')}` : String(error);
  return /address already in use|EADDRINUSE|already accepts connections but/i.test(text);
}

export interface PortRetryOptions {
  /** Where ports come from (default freePort()); tests hand out an occupied one first. */
  pickPort?: () => Promise<number>;
  attempts?: number;
  /** Told about each clash before the next try (default: nothing). */
  onClash?: (port: number, attempt: number) => void;
}

/**
 * Start a server on a free port, and on a bind clash (another process took the port first) start
 * it again on a new one, up to `attempts` times. `start` must clean up after itself when it fails
 * (the sandbox starters do: process stopped, temp dir removed). Other failures are thrown at once.
 */
export async function withFreePort<T>(label: string, start: (port: number) => Promise<T>, opts: PortRetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? PORT_ATTEMPTS);
  const pick = opts.pickPort ?? (() => freePort());
  const tried: number[] = [];
  for (let attempt = 1; ; attempt++) {
    const port = await pick();
    tried.push(port);
    try {
      return await start(port);
    } catch (error) {
      if (!isPortClash(error)) throw error;
      if (attempt >= attempts)
        throw new Error(
          `${label}: port taken by another process on each of ${attempts} tries (${tried.join(', ')}): ${(error as Error).message}`,
          { cause: error },
        );
      opts.onClash?.(port, attempt);
    }
  }
}
