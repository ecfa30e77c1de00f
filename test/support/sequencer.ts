import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files run longest first, so the two workers (vitest.config.ts maxWorkers) finish together
 * instead of one starting a two-minute file when the other has nothing left. Vitest's own order
 * uses the durations it cached from an earlier run on this checkout; a fresh clone (CI) has none,
 * and then vitest orders by file size, which put a short-to-read but long-to-run file last
 * (pitr-timelines.test.ts: 149 lines, 134 s). So: a cached duration when there is one, else the
 * seconds below (the slow files of the last CI runs, 2 idle cores), else vitest's order. A file
 * missing from the table just runs among the short ones: only the order depends on it.
 */
const SECONDS: Record<string, number> = {
  'test/integration/recover-kill.test.ts': 105,
  'test/integration/restore.test.ts': 100,
  'test/e2e/guide.test.ts': 96,
  'test/integration/compose-restore.test.ts': 88,
  'test/integration/docker-restore.test.ts': 75,
  'test/integration/pitr.test.ts': 60,
  'test/integration/hostile-dumps.test.ts': 45,
  'test/integration/offsite.test.ts': 37,
  'test/integration/safety-copies.test.ts': 35,
  'test/integration/drill-pitr.test.ts': 35,
  'test/integration/offsite-local.test.ts': 33,
  'test/integration/next-lines.test.ts': 30,
  'test/integration/pitr-timelines.test.ts': 30,
  'test/integration/session.test.ts': 27,
  'test/e2e/guide-pitr.test.ts': 25,
  'test/integration/sandbox.test.ts': 25,
  'test/integration/signals.test.ts': 24,
  'test/integration/verified-bytes.test.ts': 24,
  'test/e2e/demo.test.ts': 23,
  'test/integration/demo-docker.test.ts': 23,
  'test/integration/drill.test.ts': 21,
  'test/integration/catalog-verify.test.ts': 20,
  'test/integration/plain-parallel.test.ts': 20,
  'test/integration/evidence-upload.test.ts': 17,
  'test/integration/demo.test.ts': 17,
};

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const ordered = await super.sort(files);
    const root = this.ctx.config.root;
    const ms = (f: TestSpecification): number => {
      const file = relative(root, f.moduleId).split('\\').join('/');
      const cached = this.ctx.cache.getFileTestResults(`${f.project.name}:${file}`)?.duration;
      return cached ?? (SECONDS[file] ?? 0) * 1000;
    };
    const weight = new Map(ordered.map((f) => [f, ms(f)]));
    // Array.prototype.sort is stable: equal weights keep vitest's order.
    return ordered.sort((a, b) => weight.get(b)! - weight.get(a)!);
  }
}
