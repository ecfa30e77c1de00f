// Fixture for the sandbox exit-guard test: starts sandboxes, prints where they live, then
// ends WITHOUT disposing of them: `exit` = process.exit(0), `sigterm` = killed by SIGTERM (what
// vitest does to its fork workers). The safety net must kill them and remove their dirs either way.
import { startPostgres, startPrometheus, startRedis } from '../../source/sandbox/index.js';

const [baseDir, mode = 'exit'] = process.argv.slice(2);
// `exit` starts all three; `sigterm` only Redis (the signal path is the same for every kind).
const report: { pids: (number | undefined)[]; dirs: string[] } = { pids: [], dirs: [] };
if (mode === 'sigterm') {
  const redis = await startRedis({ baseDir });
  report.pids.push(await redis.pid());
  report.dirs.push(redis.rootDir);
} else {
  const [pg, redis, prom] = await Promise.all([startPostgres({ baseDir }), startRedis({ baseDir }), startPrometheus({ baseDir })]);
  report.pids.push(pg.pid(), await redis.pid(), await prom.pid());
  report.dirs.push(pg.rootDir, redis.rootDir, prom.rootDir);
}
process.stdout.write(`${JSON.stringify(report)}\n`);
if (mode === 'sigterm') {
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.exit(99), 10_000); // not reached: SIGTERM must still terminate the process
} else {
  process.exit(0);
}
