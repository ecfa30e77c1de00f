import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { entryFile } from '../bundle.js';

/**
 * The demo's "application": a tiny HTTP service that the demo recipe stops before the restore and
 * starts after it, with a /health endpoint for the health check. Runs under service-ctl.
 */

export function demoAppArgv(port: number): string[] {
  const self = entryFile(import.meta.url, 'demo/app.js');
  if (/\.[cm]?ts$/.test(self)) {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    return [process.execPath, '--import', tsx, self, String(port)];
  }
  return [process.execPath, self, String(port)];
}

export function serveDemoApp(port: number): void {
  const started = new Date().toISOString();
  const server = createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', started }));
      return;
    }
    res.writeHead(404);
    res.end('not found\n');
  });
  server.listen(port, '127.0.0.1');
  const stop = (): void => {
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const entry = process.argv[1];
if (entry !== undefined && fileURLToPath(import.meta.url) === entry) {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port < 1) {
    process.stderr.write('usage: app.js PORT\n');
    process.exitCode = 2;
  } else {
    serveDemoApp(port);
  }
}
