import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration files start real servers: keep the number of files running at once small on 2 cores.
    maxWorkers: 2,
    pool: 'forks',
    // The longest files start first (a fresh clone has no cached durations): test/support/sequencer.ts.
    sequence: { sequencer: LongestFirst },
  },
});
