import type { EvidenceHandle } from './writer.js';

/**
 * `handle` with `after` run once, after its own close (the one decorator the post-run exports
 * share: metrics, evidence upload).
 */
export function afterClose(handle: EvidenceHandle, after: () => Promise<void>): EvidenceHandle {
  const close = handle.close.bind(handle);
  let done = false;
  return {
    dir: handle.dir,
    runId: handle.runId,
    get sealed() {
      return handle.sealed;
    },
    get errors() {
      return handle.errors;
    },
    async close() {
      await close();
      if (done) return;
      done = true;
      await after();
    },
  };
}
