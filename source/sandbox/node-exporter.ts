import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startHttpServiceSandbox, type HttpServiceSandbox } from './http-service.js';
import type { PortRetryOptions } from './ports.js';

/**
 * A throwaway Debian prometheus-node-exporter on 127.0.0.1:<free port> with only the textfile
 * collector, reading `textfileDir` (what restore-assistant's metrics.textfileDir writes into).
 */
export interface NodeExporterSandbox extends HttpServiceSandbox {
  readonly textfileDir: string;
}

/** A port clash (another process bound it first) retries on a new port (sandbox/ports.ts). */
export async function startNodeExporter(
  options: { baseDir?: string; textfileDir?: string; pickPort?: PortRetryOptions['pickPort'] } = {},
): Promise<NodeExporterSandbox> {
  return startHttpServiceSandbox(
    {
      name: 'node-exporter',
      what: 'node_exporter sandbox',
      debianPackage: 'prometheus-node-exporter',
      setup: async (rootDir) => {
        const textfileDir = options.textfileDir ?? join(rootDir, 'textfile');
        await mkdir(textfileDir, { recursive: true });
        return {
          args: ['--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${textfileDir}`],
          extra: { textfileDir },
        };
      },
    },
    options,
  );
}
