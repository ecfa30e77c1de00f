import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardOnExit, keepSandboxFiles } from './exit-guard.js';
import { startPostgres, type PostgresSandbox, type StartPostgresOptions } from './postgres.js';
import { startPrometheus, type PrometheusSandbox, type StartPrometheusOptions } from './prometheus.js';
import { startRedis, type RedisSandbox, type StartRedisOptions } from './redis.js';

export interface Disposable {
  dispose(): Promise<void>;
}

export interface SandboxGroupOptions {
  /** Parent of every temp dir the group creates (default os.tmpdir()). */
  baseDir?: string;
}

/**
 * Owns sandboxes and temp dirs so one `await group.stopAll()` (in afterAll) stops every process and
 * removes every dir, even when tests failed half-way. Nothing happens at construction.
 *
 *   const g = new SandboxGroup();
 *   const pg = await g.postgres();
 *   ...
 *   await g.stopAll();
 */
export class SandboxGroup {
  readonly #members: Disposable[] = [];
  readonly #starting = new Set<Promise<unknown>>();
  readonly #dirs: { path: string; unguard: () => void }[] = [];
  readonly #baseDir: string | undefined;

  constructor(options: SandboxGroupOptions = {}) {
    this.#baseDir = options.baseDir;
  }

  get baseDir(): string {
    return this.#baseDir ?? tmpdir();
  }

  /** Adds something with dispose() (disposed in reverse order by stopAll). */
  adopt<T extends Disposable>(member: T): T {
    this.#members.push(member);
    return member;
  }

  /**
   * Adopts as soon as the start resolves, and lets stopAll() wait for starts still in flight (a
   * sibling start failing in Promise.all must not leave this one running after afterAll).
   */
  async #track<T extends Disposable>(starting: Promise<T>): Promise<T> {
    const adopted = starting.then((member) => this.adopt(member));
    this.#starting.add(adopted);
    try {
      return await adopted;
    } finally {
      this.#starting.delete(adopted);
    }
  }

  postgres(options: StartPostgresOptions = {}): Promise<PostgresSandbox> {
    return this.#track(startPostgres({ baseDir: this.#baseDir, ...options }));
  }

  redis(options: StartRedisOptions = {}): Promise<RedisSandbox> {
    return this.#track(startRedis({ baseDir: this.#baseDir, ...options }));
  }

  prometheus(options: StartPrometheusOptions = {}): Promise<PrometheusSandbox> {
    return this.#track(startPrometheus({ baseDir: this.#baseDir, ...options }));
  }

  /** A fresh temp dir (e.g. a backup root), removed by stopAll() and by the exit guard. */
  async tempDir(prefix = 'ra-tmp-'): Promise<string> {
    await mkdir(this.baseDir, { recursive: true });
    const path = await mkdtemp(join(this.baseDir, prefix));
    const unguard = guardOnExit({ label: 'temp dir', pids: () => [], dirs: [path] });
    this.#dirs.push({ path, unguard });
    return path;
  }

  /** Temp dirs created by tempDir() that still exist. */
  get tempDirs(): readonly string[] {
    return this.#dirs.map((dir) => dir.path);
  }

  /**
   * Disposes every member (reverse order) and removes every temp dir. Always tries all of them;
   * throws an AggregateError afterwards if any failed. Idempotent.
   */
  async stopAll(): Promise<void> {
    const errors: unknown[] = [];
    await Promise.allSettled([...this.#starting]);
    while (this.#members.length > 0) {
      const member = this.#members.pop();
      try {
        await member?.dispose();
      } catch (error) {
        errors.push(error);
      }
    }
    while (this.#dirs.length > 0) {
      const dir = this.#dirs.pop();
      if (dir === undefined) continue;
      try {
        if (!keepSandboxFiles()) await rm(dir.path, { recursive: true, force: true, maxRetries: 3 });
        dir.unguard();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `SandboxGroup.stopAll: ${errors.length} failures`);
  }
}
