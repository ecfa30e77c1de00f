import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run, type CommandEvent } from '../../source/exec/run.js';

/** source/exec/run.ts with binary stdout: real child processes writing every byte value. */

// Every byte value, and a multi-byte character split across the write boundary, then invalid UTF-8.
const BYTES = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_v, i) => i)), Buffer.from('é'), Buffer.from([0xff, 0xfe, 0xc3])]);
const writer = [
  process.execPath,
  '-e',
  `const b = Buffer.from(${JSON.stringify(BYTES.toString('base64'))}, 'base64'); process.stdout.write(b.subarray(0, 257)); setTimeout(() => process.stdout.write(b.subarray(257)), 20);`,
];

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'run-binary-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('run: binary stdout', () => {
  it("text mode (the default) decodes stdout as UTF-8: the bytes are not kept (why 'buffer' exists)", async () => {
    const r = await run(writer);
    expect(r.ok).toBe(true);
    expect(r.stdoutBytes).toBeUndefined();
    expect(Buffer.from(r.stdout, 'utf8').equals(BYTES)).toBe(false);
  });

  it("'buffer' keeps every byte in stdoutBytes and emits no stdout lines", async () => {
    const events: CommandEvent[] = [];
    const r = await run(writer, { stdout: 'buffer', onEvent: (e) => events.push(e) });
    expect(r.ok).toBe(true);
    expect(r.stdoutBytes?.equals(BYTES)).toBe(true);
    expect(events.filter((e) => e.type === 'command-output' && e.stream === 'stdout')).toEqual([]);
  });

  it("'buffer' caps stdoutBytes at maxStdoutBytes", async () => {
    const r = await run(writer, { stdout: 'buffer', maxStdoutBytes: 100 });
    expect(r.stdoutBytes?.equals(BYTES.subarray(0, 100))).toBe(true);
  });

  it("'buffer' into stdoutTo: the file holds the bytes unchanged once run returns", async () => {
    const file = path.join(dir, 'out.bin');
    const r = await run(writer, { stdout: 'buffer', stdoutTo: createWriteStream(file) });
    expect(r.ok).toBe(true);
    expect(r.stdoutBytes).toBeUndefined();
    expect((await readFile(file)).equals(BYTES)).toBe(true);
  });

  it("'buffer' into stdoutTo that fails: the run fails, says so, and the process is stopped", async () => {
    const failing = new Writable({
      write(_chunk, _enc, cb) {
        cb(new Error('ENOSPC: no space left on device'));
      },
    });
    const r = await run([process.execPath, '-e', 'setInterval(() => process.stdout.write("x".repeat(65536)), 1)'], {
      stdout: 'buffer',
      stdoutTo: failing,
    });
    expect(r.ok).toBe(false);
    expect(r.signal).toBe('SIGTERM');
    expect(r.stderrTail.at(-1)).toBe('writing the output failed: ENOSPC: no space left on device');
  });

  it('text mode into stdoutTo is as before (UTF-8 text)', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const r = await run([process.execPath, '-e', 'process.stdout.write("héllo\\n")'], { stdoutTo: out });
    expect(r.ok).toBe(true);
    expect(Buffer.concat(chunks).toString('utf8')).toBe('héllo\n');
  });
});
