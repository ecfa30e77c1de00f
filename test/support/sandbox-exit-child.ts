// Fixture for the sandbox exit-guard test: starts Redis and Prometheus, prints where they live, then
// ends WITHOUT disposing of them: `exit` = process.exit(0), `sigterm` = killed by SIGTERM (what
// vitest does to its fork workers). The safety net must kill them and remove their dirs either way.
import { startPrometheus, startRedis } from '../../source/sandbox/index.js';

const [baseDir, mode = 'exit'] = process.argv.slice(2);
const redis = await startRedis({ baseDir });
const prom = await startPrometheus({ baseDir });
process.stdout.write(
  `${JSON.stringify({ redisPid: await redis.pid(), redisDir: redis.rootDir, promPid: await prom.pid(), promDir: prom.rootDir })}\n`,
);
if (mode === 'sigterm') {
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.exit(99), 10_000); // not reached: SIGTERM must still terminate the process
} else {
  process.exit(0);
}
