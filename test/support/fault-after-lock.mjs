// Fault injection for the last-resort handler's end-to-end test (test/e2e/guide.test.ts), loaded
// with NODE_OPTIONS=--import: once this process holds a lock file in RESTORE_ASSISTANT_LOCK_DIR
// (the guide verifies), a promise is rejected that nobody awaits: the class of bug the handler
// exists for (source/last-resort.ts). Never part of the product: the test passes it in the
// environment of the one process it starts.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env['RESTORE_ASSISTANT_LOCK_DIR'];

function holdsALock() {
  if (!dir) return false;
  let names = [];
  try {
    names = readdirSync(dir);
  } catch {
    return false;
  }
  return names.some((name) => {
    if (!name.endsWith('.lock')) return false;
    try {
      return JSON.parse(readFileSync(path.join(dir, name), 'utf8')).pid === process.pid;
    } catch {
      return false;
    }
  });
}

const timer = setInterval(() => {
  if (!holdsALock()) return;
  clearInterval(timer);
  void Promise.reject(new Error('injected fault: a promise nobody awaits, rejected while the locks are held'));
}, 10);
timer.unref();
