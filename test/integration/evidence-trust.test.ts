import { generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../source/engine/events.js';
import { createRedactor } from '../../source/exec/redact.js';
import {
  EVENTS_FILE,
  HISTORY_FILE,
  serializeLine,
  sha256Hex,
  splitLines,
  type HistoryEntry,
  type LineBody,
} from '../../source/evidence/format.js';
import { formatPublicKey, KEY_FILE, loadSealSigner, SIGNATURE_FILE, SIGNATURE_FORMAT } from '../../source/evidence/signing.js';
import { attachEvidence, checkEvidenceDir, newRunId } from '../../source/evidence/writer.js';
import { runCli, type CliResult } from '../support/cli.js';

/**
 * Issue 9, part C: the evidence directory is untrusted (anyone who can write it can plant links or
 * rewrite runs), and tamper evidence is anchored outside it by a signing key in the state dir.
 */

const recipe = { name: 'trust', file: '/recipes/trust.yaml', digest: 'd'.repeat(64) };

let tmp: string;
let stateDir: string;
let env: Record<string, string>;

function cli(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { env: { ...env, ...extra }, cwd: tmp });
}

function signer() {
  return loadSealSigner({ RESTORE_ASSISTANT_STATE_DIR: stateDir });
}

/** A run written through the real writer; sealed unless `finish` is false (then closed unsealed, as a killed run). */
async function recordRun(evidenceDir: string, opts: { finish?: boolean; signed?: boolean; runId?: string } = {}): Promise<string> {
  const runId = opts.runId ?? newRunId('restore', recipe.name);
  const bus = new EventBus();
  const handle = attachEvidence(bus, {
    evidenceDir,
    runId,
    kind: 'restore',
    recipe,
    redact: createRedactor([]),
    toolVersion: '0.1.0',
    ...(opts.signed === false ? {} : { signer: signer() }),
  });
  bus.emit({
    type: 'run-started',
    runId,
    kind: 'restore',
    operator: 'alice',
    host: 'db1',
    toolVersion: '0.1.0',
    recipe,
    backup: { id: 'set-1', time: new Date(Date.now() - 600_000).toISOString(), location: '/backups' },
    confirmedAt: new Date().toISOString(),
  });
  bus.emit({ type: 'step-started', stepId: 's1', title: 'Restore Redis' });
  if (opts.finish !== false) {
    bus.emit({ type: 'step-finished', stepId: 's1', title: 'Redis restored', durationMs: 10 });
    bus.emit({ type: 'run-finished', outcome: 'rolled-back', exitCode: 1, safetyCopies: [], state: ['Redis: as before'], nextSteps: [] });
  }
  await handle.close();
  expect(handle.errors).toEqual([]);
  return handle.dir;
}

/**
 * What an attacker with write access to the evidence dir does: rebuild events.jsonl from its
 * first `keep` lines, finish it as "restored" with a correct hash chain and seal, and rewrite (or
 * delete) its history.jsonl line. Returns the new seal line's hash.
 */
function forgeRestored(dir: string, keep: number, history: 'rewrite' | 'delete'): string {
  const events = path.join(dir, EVENTS_FILE);
  const kept = splitLines(readFileSync(events))
    .lines.slice(0, keep)
    .map((l) => l.toString('utf8'));
  let prev = sha256Hex(kept.at(-1) as string);
  const lines = [...kept];
  const add = (body: LineBody): string => {
    const line = serializeLine(lines.length + 1, new Date().toISOString(), 1000, prev, body);
    lines.push(line);
    prev = sha256Hex(line);
    return line;
  };
  add({ event: { type: 'step-finished', stepId: 's1', title: 'Redis restored', durationMs: 900 } });
  add({ event: { type: 'health-check', name: 'redis ping', ok: true, attempts: 1, durationMs: 2, detail: 'PONG' } });
  add({ event: { type: 'run-finished', outcome: 'restored', exitCode: 0, safetyCopies: [], state: ['Redis: restored'], nextSteps: [] } });
  const before = `${lines.join('\n')}\n`;
  const sealLine = add({ seal: { lines: lines.length, finalHash: sha256Hex(before), outcome: 'restored', exitCode: 0 } });
  writeFileSync(events, `${lines.join('\n')}\n`);
  const runId = path.basename(dir);
  const historyFile = path.join(path.dirname(dir), HISTORY_FILE);
  let entries: HistoryEntry[] = [];
  try {
    entries = readFileSync(historyFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as HistoryEntry);
  } catch {
    entries = [];
  }
  const others = entries.filter((e) => e.runId !== runId);
  const forged =
    history === 'rewrite'
      ? [
          {
            ...(entries.find((e) => e.runId === runId) ?? others[0]),
            runId,
            outcome: 'restored',
            exitCode: 0,
            seal: { lines: lines.length - 1, finalHash: sha256Hex(before), hash: sha256Hex(sealLine) },
          },
        ]
      : [];
  writeFileSync(historyFile, [...others, ...forged].map((e) => `${JSON.stringify(e)}\n`).join(''));
  return sha256Hex(sealLine);
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-evidence-trust-'));
  stateDir = path.join(tmp, 'state');
  env = { RESTORE_ASSISTANT_STATE_DIR: stateDir, XDG_STATE_HOME: path.join(tmp, 'xdg') };
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('planted links in the evidence directory', () => {
  it('a symlink at history.jsonl leaves its target byte-identical (the run still seals)', async () => {
    const evidenceDir = path.join(tmp, 'ev-symlink');
    mkdirSync(evidenceDir, { mode: 0o750 });
    const victim = path.join(tmp, 'victim-shadow');
    writeFileSync(victim, 'root:$6$precious:19000:0:99999:7:::\n', { mode: 0o600 });
    const before = readFileSync(victim);
    symlinkSync(victim, path.join(evidenceDir, HISTORY_FILE));
    const runId = newRunId('restore', recipe.name);
    const bus = new EventBus();
    const handle = attachEvidence(bus, { evidenceDir, runId, kind: 'restore', recipe, redact: createRedactor([]) });
    bus.emit({ type: 'run-finished', outcome: 'refused', exitCode: 9, safetyCopies: [], state: [], nextSteps: [] });
    await handle.close();
    expect(handle.sealed).toBe(true);
    expect(handle.errors.join('\n')).toMatch(/appending to the history index: .*(symbolic link|ELOOP)/);
    expect(readFileSync(victim).equals(before)).toBe(true);
  });

  it('a hard link at history.jsonl is refused too', async () => {
    const evidenceDir = path.join(tmp, 'ev-hardlink');
    mkdirSync(evidenceDir, { mode: 0o750 });
    const victim = path.join(tmp, 'victim-hard');
    writeFileSync(victim, 'precious\n');
    linkSync(victim, path.join(evidenceDir, HISTORY_FILE));
    const bus = new EventBus();
    const handle = attachEvidence(bus, {
      evidenceDir,
      runId: newRunId('restore', recipe.name),
      kind: 'restore',
      recipe,
      redact: createRedactor([]),
    });
    bus.emit({ type: 'run-finished', outcome: 'refused', exitCode: 9, safetyCopies: [], state: [], nextSteps: [] });
    await handle.close();
    expect(handle.errors.join('\n')).toContain('hard links');
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it("a symlink planted at the run directory's name is refused before anything is written", () => {
    const evidenceDir = path.join(tmp, 'ev-rundir');
    mkdirSync(evidenceDir, { mode: 0o750 });
    const victimDir = path.join(tmp, 'victim-dir');
    mkdirSync(victimDir);
    const runId = newRunId('restore', recipe.name);
    symlinkSync(victimDir, path.join(evidenceDir, runId));
    expect(() => attachEvidence(new EventBus(), { evidenceDir, runId, kind: 'restore', recipe, redact: createRedactor([]) })).toThrow(
      /Cannot create the evidence directory .*EEXIST/,
    );
    expect(readFileSync(path.join(tmp, 'victim-shadow'), 'utf8')).toContain('precious');
    expect(() => statSync(path.join(victimDir, EVENTS_FILE))).toThrow();
  });

  it('an evidence directory others can write is refused with the fix, before verification', async () => {
    const evidenceDir = path.join(tmp, 'ev-open');
    mkdirSync(evidenceDir);
    chmodSync(evidenceDir, 0o777);
    await expect(checkEvidenceDir(evidenceDir)).rejects.toThrow(/not safe to write .*writable by every user/);
    // Through the CLI: a restore and a drill of a recipe with that evidence dir stop at once.
    const root = path.join(tmp, 'backups');
    await mkdir(path.join(root, '2026-01-18_01-45-13'), { recursive: true });
    await writeFile(path.join(root, '2026-01-18_01-45-13', 'redis.rdb'), 'REDIS0011 not really');
    const recipeFile = path.join(tmp, 'open.yaml');
    await writeFile(
      recipeFile,
      JSON.stringify({
        name: 'open',
        backups: { root, layout: 'story-portal' },
        components: { redis: { host: '127.0.0.1', port: 1, service: { stop: ['true'], start: ['true'] } } },
        evidence: { dir: evidenceDir },
      }),
    );
    for (const args of [
      ['restore', '--recipe', recipeFile, '--yes'],
      ['drill', '--recipe', recipeFile, '--yes'],
    ]) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(9);
      expect(r.stderr).toContain(`The evidence directory ${evidenceDir} is not safe`);
      expect(r.stderr).toContain(`Next: Fix it (chmod 0755 ${evidenceDir})`);
      expect(r.stderr).not.toMatch(/verifying|Verifying/);
    }
  });
});

describe('seal signatures: evidence key, evidence verify --key', () => {
  let evidenceDir: string;
  let pub: string;

  beforeAll(async () => {
    evidenceDir = path.join(tmp, 'ev-signed');
    mkdirSync(evidenceDir, { mode: 0o750 });
    const k = await cli(['evidence', 'key']);
    expect(k.code, k.stderr).toBe(0);
    pub = k.stdout.trim();
  });

  it('`evidence key` makes the key on first use (dir 0700, key 0600) and prints the same key each time', async () => {
    expect(pub).toMatch(/^ed25519:[A-Za-z0-9+/]{43}=$/);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(stateDir, KEY_FILE)).mode & 0o777).toBe(0o600);
    const j = await cli(['evidence', 'key', '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ algorithm: 'ed25519', publicKey: pub, keyFile: path.join(stateDir, KEY_FILE) });
    expect(signer().publicKey).toBe(pub);
  });

  it('a run signed by this host passes --key (as a string and as a file); another key fails with 7', async () => {
    const dir = await recordRun(evidenceDir);
    const sig = JSON.parse(readFileSync(path.join(dir, SIGNATURE_FILE), 'utf8')) as { format: string; publicKey: string };
    expect(sig).toMatchObject({ format: SIGNATURE_FORMAT, publicKey: pub });
    const ok = await cli(['evidence', 'verify', dir, '--key', pub]);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout).toContain('signed by the given key');
    const keyFile = path.join(tmp, 'host.pub');
    writeFileSync(keyFile, `${pub}\n`);
    expect((await cli(['evidence', 'verify', dir, '--key', keyFile])).code).toBe(0);
    const other = formatPublicKey(generateKeyPairSync('ed25519').publicKey);
    const bad = await cli(['evidence', 'verify', dir, '--key', other, '--json']);
    expect(bad.code).toBe(7);
    expect(JSON.parse(bad.stdout)).toMatchObject({ status: 'sealed', signature: { status: 'other-key' }, exitCode: 7 });
    expect((await cli(['evidence', 'verify', dir, '--key', 'not-a-key'])).code).toBe(2);
  });

  it('a killed run re-sealed as "restored" (chain and history.jsonl rewritten) passes without --key, fails with it', async () => {
    const dir = await recordRun(evidenceDir, { finish: false });
    expect((await cli(['evidence', 'verify', dir])).code).toBe(6);
    const lines = splitLines(readFileSync(path.join(dir, EVENTS_FILE))).lines.length;
    forgeRestored(dir, lines - 1, 'rewrite'); // drop the closed-unsealed note
    const plain = await cli(['evidence', 'verify', dir]);
    expect(plain.code).toBe(0); // the gap the key closes: the chain alone is self-consistent
    expect(plain.stdout).toContain('matches the seal recorded in history.jsonl');
    const keyed = await cli(['evidence', 'verify', dir, '--key', pub]);
    expect(keyed.code).toBe(7);
    expect(keyed.stdout).toContain('Evidence NOT signed by the given key');
    expect(keyed.stdout).toContain('its seal is not signed');
  });

  it("the forger's own signature, or a signature copied from another run, fails --key", async () => {
    const dir = await recordRun(evidenceDir, { finish: false });
    const sealHash = forgeRestored(dir, splitLines(readFileSync(path.join(dir, EVENTS_FILE))).lines.length - 1, 'rewrite');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const runId = path.basename(dir);
    const own = {
      format: SIGNATURE_FORMAT,
      runId,
      sealHash,
      algorithm: 'ed25519',
      publicKey: formatPublicKey(publicKey),
      signature: sign(null, Buffer.from(`${SIGNATURE_FORMAT} ${runId} ${sealHash}\n`), privateKey).toString('base64'),
    };
    writeFileSync(path.join(dir, SIGNATURE_FILE), JSON.stringify(own));
    expect((await cli(['evidence', 'verify', dir])).code).toBe(0);
    const forged = await cli(['evidence', 'verify', dir, '--key', pub, '--json']);
    expect(forged.code).toBe(7);
    expect(JSON.parse(forged.stdout)).toMatchObject({ signature: { status: 'other-key' } });
    // A genuine signature of another run, with this host's public key, does not fit this seal.
    const genuine = await recordRun(evidenceDir);
    writeFileSync(path.join(dir, SIGNATURE_FILE), readFileSync(path.join(genuine, SIGNATURE_FILE)));
    const copied = await cli(['evidence', 'verify', dir, '--key', pub, '--json']);
    expect(copied.code).toBe(7);
    expect(JSON.parse(copied.stdout)).toMatchObject({ signature: { status: 'invalid' } });
    // And a genuine signature with its runId/sealHash edited to this run's fails the Ed25519 check.
    const edited = { ...(JSON.parse(readFileSync(path.join(genuine, SIGNATURE_FILE), 'utf8')) as object), runId, sealHash };
    writeFileSync(path.join(dir, SIGNATURE_FILE), JSON.stringify(edited));
    const e = await cli(['evidence', 'verify', dir, '--key', pub]);
    expect(e.code).toBe(7);
    expect(e.stdout).toContain('the signature does not match the seal');
  });

  it('a signed run regenerated with its history.jsonl line rewritten, or deleted, fails --key', async () => {
    for (const history of ['rewrite', 'delete'] as const) {
      const dir = await recordRun(evidenceDir); // genuinely sealed "rolled-back", signed
      expect((await cli(['evidence', 'verify', dir, '--key', pub])).code).toBe(0);
      const lines = splitLines(readFileSync(path.join(dir, EVENTS_FILE))).lines.length;
      forgeRestored(dir, lines - 4, history); // cut the real ending, forge a "restored" one
      expect((await cli(['evidence', 'verify', dir])).code).toBe(0);
      const keyed = await cli(['evidence', 'verify', dir, '--key', pub]);
      expect(keyed.code, history).toBe(7);
      expect(keyed.stdout).toContain('re-sealed');
    }
  });

  it('an unsafe key or state dir is refused with the fix', async () => {
    const dir = path.join(tmp, 'state-open');
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o755);
    const r = await cli(['evidence', 'key'], { RESTORE_ASSISTANT_STATE_DIR: dir });
    expect(r.code).toBe(9);
    expect(r.stderr).toContain(`Next: chmod 0700 ${dir}`);
    chmodSync(dir, 0o700);
    expect((await cli(['evidence', 'key'], { RESTORE_ASSISTANT_STATE_DIR: dir })).code).toBe(0);
    chmodSync(path.join(dir, KEY_FILE), 0o644);
    const leaked = await cli(['evidence', 'key'], { RESTORE_ASSISTANT_STATE_DIR: dir });
    expect(leaked.code).toBe(9);
    expect(leaked.stderr).toContain('others may have read it');
  });
});
