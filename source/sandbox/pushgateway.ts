import { startHttpServiceSandbox, type HttpServiceSandbox } from './http-service.js';
import type { PortRetryOptions } from './ports.js';

/** A throwaway Debian prometheus-pushgateway on 127.0.0.1:<free port> (no persistence file). */
export type PushgatewaySandbox = HttpServiceSandbox;

/** A port clash (another process bound it first) retries on a new port (sandbox/ports.ts). */
export async function startPushgateway(
  options: { baseDir?: string; pickPort?: PortRetryOptions['pickPort'] } = {},
): Promise<PushgatewaySandbox> {
  return startHttpServiceSandbox(
    {
      name: 'pushgateway',
      what: 'Pushgateway sandbox',
      debianPackage: 'prometheus-pushgateway',
      setup: () => Promise.resolve({ args: [], extra: {} }),
    },
    options,
  );
}
