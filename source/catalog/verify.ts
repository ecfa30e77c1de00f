import { componentLabel } from './types.js';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { databaseClaims, databaseMismatches, describeMismatch } from './database-identity.js';
import type { BackupComponent, BackupSet, ComponentVerification, VerifyProblem, VerifyReport } from './types.js';
import { fileIdentity, sameIdentity } from './identity.js';
import { ComponentRun, type VerifyOptions } from './verify-common.js';
import { verifyPgArchive, verifyPlain } from './verify-postgres.js';
import { verifyRedis } from './verify-redis.js';
import { verifyPrometheus } from './verify-prometheus.js';
import { verifyBaseTar } from './verify-physical.js';

export type { VerifyOptions, VerifyProgress } from './verify-common.js';

/** What a quick verification leaves out, per format (recorded so nobody mistakes quick for deep). */
const QUICK_SKIPS: Record<BackupComponent['format'], string[]> = {
  'pg-plain': ['psql meta-commands'],
  'pg-plain-gz': ['gzip stream', 'dump complete line', 'psql meta-commands'],
  'pg-custom': ['pg_restore read-through (data blocks)'],
  'pg-directory': ['pg_restore read-through (data blocks)'],
  'redis-rdb': ['redis-check-rdb'],
  'prometheus-tar-gz': ['gzip stream', 'tar entries', 'prometheus data dir'],
  'pg-base-tar': ['pg_verifybackup', 'WAL archive'],
};

async function verifyComponent(
  component: BackupComponent,
  opts: VerifyOptions,
): Promise<{ verification: ComponentVerification; problems: VerifyProblem[] }> {
  const started = performance.now();
  let size = component.size;
  let statError: NodeJS.ErrnoException | undefined;
  let special = false;
  try {
    const s = await stat(component.path);
    special = !s.isFile() && !s.isDirectory();
    if (!s.isDirectory()) size = s.size;
  } catch (error) {
    statError = error as NodeJS.ErrnoException;
  }
  const r = new ComponentRun({ ...component, size });
  if (special) {
    r.check('regular file', false, started);
    r.problem('not-a-file', 'is a device, FIFO or socket, not a backup file (not read)');
  } else if (statError) {
    r.check('exists', false, started, statError.code);
    if (statError.code === 'ENOENT') r.problem('missing-file', 'no longer exists');
    else r.problem('unreadable', `cannot be read (${statError.code ?? 'error'})`);
  } else if (component.encryption) {
    // Ciphertext: only its decrypted copy can be verified (source/offsite/local.ts stages it with the recipe's keys).
    r.check('decrypted', false, started, `${component.encryption}-encrypted`);
    r.problem(
      'encrypted-not-decrypted',
      `is ${component.encryption}-encrypted and was not decrypted: verify it with --recipe, whose backups.encryption names the key`,
    );
  } else if (size === 0) {
    r.check('size', false, started, '0 bytes');
    r.problem('empty-file', 'is empty (0 bytes)');
  } else {
    r.check('size', true, started, `${size} bytes`);
    switch (component.format) {
      case 'pg-plain':
        await verifyPlain(r, opts, false);
        break;
      case 'pg-plain-gz':
        await verifyPlain(r, opts, true);
        break;
      case 'pg-custom':
      case 'pg-directory':
        await verifyPgArchive(r, opts);
        break;
      case 'redis-rdb':
        await verifyRedis(r, opts);
        break;
      case 'prometheus-tar-gz':
        await verifyPrometheus(r, opts);
        break;
      case 'pg-base-tar':
        // pg_verifybackup and the WAL archive are checked by source/pitr/verify.ts.
        await verifyBaseTar(r, opts);
        break;
    }
    if (opts.depth === 'quick') r.facts['notChecked'] = QUICK_SKIPS[component.format];
  }
  opts.signal?.throwIfAborted();
  if (r.identity) {
    // Other checks (pg_restore, redis-check-rdb) open the path themselves: it must still be the hashed file.
    const now = await stat(component.path).then(fileIdentity, () => undefined);
    if (!now || !sameIdentity(r.identity, now)) {
      r.check('unchanged', false, started, 'replaced or modified during verification');
      r.problem(
        'changed-during-verify',
        'was replaced or modified while it was being verified: verify it again when nothing writes to the backup store',
      );
    }
  }
  const checksum = component.expectedSha256
    ? r.problems.some((p) => p.code === 'checksum-mismatch')
      ? 'mismatch'
      : r.checks.some((ch) => ch.name === 'sha256' && ch.ok)
        ? 'verified'
        : 'present'
    : 'absent';
  return {
    verification: {
      kind: component.kind,
      path: component.path,
      format: component.format,
      size,
      checks: r.checks,
      ...(r.sha256 ? { sha256: r.sha256 } : {}),
      ...(r.identity ? { identity: r.identity } : {}),
      ...(r.identity && r.dumpScan ? { dumpScan: r.dumpScan } : {}),
      checksum,
      facts: r.facts,
      ok: r.problems.length === 0,
    },
    problems: r.problems,
  };
}

/**
 * Prove a backup set is restorable without touching any system: every check reads files or
 * runs read-only tools (pg_restore --list / --file=/dev/null, redis-check-rdb) on them.
 */
export async function verifyBackupSet(set: BackupSet, opts: VerifyOptions): Promise<VerifyReport> {
  const startedAt = new Date();
  const t0 = performance.now();
  const components: ComponentVerification[] = [];
  const problems: VerifyProblem[] = [];
  for (const kind of opts.expect ?? []) {
    if (!set.components.some((c) => c.kind === kind)) {
      problems.push({
        component: kind,
        code: 'component-missing',
        message: `${componentLabel[kind]}: the recipe expects a ${componentLabel[kind]} backup, but set ${set.id} has none`,
      });
    }
  }
  if (set.components.length === 0) problems.push({ code: 'set-empty', message: `set ${set.id} holds no backup files` });
  for (const component of set.components) {
    opts.signal?.throwIfAborted();
    const { verification, problems: p } = await verifyComponent(component, opts);
    components.push(verification);
    problems.push(...p);
  }
  const pgComponent = set.components.find((c) => c.kind === 'postgres');
  if (opts.expectDatabase !== undefined && pgComponent) {
    const facts = components.find((c) => c.kind === 'postgres')?.facts ?? {};
    const dumpDb = typeof facts['dbname'] === 'string' ? facts['dbname'] : undefined;
    const source =
      pgComponent.format === 'pg-plain' || pgComponent.format === 'pg-plain-gz'
        ? 'the dump (CREATE DATABASE)'
        : 'the dump (archive TOC dbname)';
    for (const m of databaseMismatches(databaseClaims(set, dumpDb, source), opts.expectDatabase)) {
      problems.push({
        component: 'postgres',
        path: m.source.startsWith('metadata') ? path.join(set.location, 'metadata.txt') : pgComponent.path,
        code: 'database-mismatch',
        message: `PostgreSQL: ${describeMismatch(m, opts.expectDatabase)}: this set may be another database's backup`,
      });
    }
  }
  return {
    setId: set.id,
    ok: problems.length === 0,
    depth: opts.depth,
    components,
    problems,
    ...(set.warnings.length > 0 ? { warnings: [...set.warnings] } : {}),
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
  };
}
