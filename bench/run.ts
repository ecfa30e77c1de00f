/**
 * Benchmarks: `npm run bench` runs them all, `npm run bench -- checksum` one. Each writes its
 * section of docs/benchmarks.md. Benchmarks are never tests: their numbers depend on the machine.
 */
const benches: Record<string, () => Promise<void>> = {
  checksum: async () => (await import('./checksum.js')).runChecksumBench(),
  restore: async () => (await import('./restore.js')).runRestoreBench(),
  'plain-parallel': async () => (await import('./plain-parallel.js')).runPlainParallelBench(),
  pitr: async () => (await import('./pitr.js')).runPitrBench(),
  offsite: async () => (await import('./offsite.js')).runOffsiteBench(),
  list: async () => (await import('./list.js')).runListBench(),
  'first-frame': async () => (await import('./first-frame.js')).runFirstFrameBench(),
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !(w in benches));
  if (unknown.length > 0) {
    process.stderr.write(
      `Unknown benchmark${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}. Known: ${Object.keys(benches).join(', ')}\n`,
    );
    process.exitCode = 2;
    return;
  }
  for (const name of wanted.length > 0 ? wanted : Object.keys(benches)) {
    process.stderr.write(`bench: ${name}\n`);
    await benches[name]?.();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
