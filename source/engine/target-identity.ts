import { lookup } from 'node:dns/promises';
import { realpath } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { ComponentKind } from '../catalog/types.js';
import type { Recipe } from '../recipe/schema.js';

/**
 * What a lock key names: the target's identity, not the recipe's text (docs/architecture.md,
 * "Locks"), so two recipes, two operators or two spellings of one target collide:
 *
 * - an address: a host name is resolved (getaddrinfo: /etc/hosts, DNS); IPv4 is preferred and the
 *   loopback addresses are one (`localhost`, `127.0.0.1` and `::1` are all `127.0.0.1`);
 *   IPv4-mapped IPv6 is IPv4. A name that does not resolve keeps its text (lower case): the run
 *   fails at the probe anyway.
 * - a path (a PostgreSQL socket directory, a Redis or Prometheus data directory): its real path;
 *   when it does not exist (yet), the real path of its nearest existing ancestor plus the rest.
 * - commands run inside a container: the container as written plus the path or address as seen
 *   inside it (no resolution on the host).
 */

/** The canonical form of an IP address ("::1" -> "127.0.0.1"; IPv6 in brackets). */
export function canonicalAddress(ip: string): string {
  const lower = ip.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return canonicalAddress(mapped[1]!);
  if (net.isIPv4(lower)) return lower;
  if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return '127.0.0.1';
  if (net.isIPv6(lower)) return `[${lower}]`;
  return lower;
}

/** A host name or address as its canonical address (see the module comment). */
export async function resolveAddress(host: string): Promise<string> {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(bare)) return canonicalAddress(bare);
  try {
    const all = await lookup(bare, { all: true });
    const v4 = all.filter((a) => a.family === 4).map((a) => a.address);
    const v6 = all.filter((a) => a.family === 6).map((a) => a.address);
    // A name whose addresses include loopback is this machine: one identity for all its spellings.
    if ([...v4, ...v6].some((a) => canonicalAddress(a) === '127.0.0.1')) return '127.0.0.1';
    const pick = v4.sort()[0] ?? v6.sort()[0];
    if (pick) return canonicalAddress(pick);
  } catch {
    // unresolvable: keep the text
  }
  return bare.toLowerCase();
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest. */
export async function realPathOf(p: string): Promise<string> {
  const abs = path.resolve(p);
  const rest: string[] = [];
  for (let cur = abs; ; cur = path.dirname(cur)) {
    try {
      return path.join(await realpath(cur), ...rest.reverse());
    } catch {
      if (path.dirname(cur) === cur) return abs;
      rest.push(path.basename(cur));
    }
  }
}

type Exec = { kind: 'host' } | { kind: 'docker' | 'compose'; container: string };

/** "container:NAME:" for a component whose commands run in a container, "" on the host. */
function where(exec: Exec | undefined): string {
  return exec && exec.kind !== 'host' ? `container:${exec.container}:` : '';
}

async function addressOf(exec: Exec | undefined, host: string): Promise<string> {
  return exec && exec.kind !== 'host' ? `${where(exec)}${host.toLowerCase()}` : resolveAddress(host);
}

async function dataDirOf(exec: Exec | undefined, dir: string): Promise<string> {
  return exec && exec.kind !== 'host' ? `${where(exec)}${path.posix.normalize(dir)}` : realPathOf(dir);
}

function urlHostPort(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    return { host: u.hostname, port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
  } catch {
    return undefined;
  }
}

/**
 * The lock keys of the targets a recipe restores (`kinds`), by identity:
 *   postgres:ADDRESS:PORT/DATABASE   (a socket directory: postgres:unix:REALPATH:PORT/DATABASE)
 *   redis:ADDRESS:PORT               and redis-data:REALPATH when the recipe names the data dir
 *   prometheus:ADDRESS:PORT          and prometheus-data:REALPATH
 * A drill restores into scratch services: it locks "drill:<key>" (one drill of a deployment at a
 * time; a drill never blocks a restore, nor a restore a drill).
 */
export async function identityLockKeys(recipe: Recipe, kinds: readonly ComponentKind[], mode: 'restore' | 'drill'): Promise<string[]> {
  const keys: string[] = [];
  const { postgres, redis, prometheus } = recipe.components;
  if (postgres && kinds.includes('postgres')) {
    const exec = postgres.exec as Exec | undefined;
    const at = postgres.host.startsWith('/') ? `unix:${await dataDirOf(exec, postgres.host)}` : await addressOf(exec, postgres.host);
    keys.push(`postgres:${at}:${postgres.port}/${postgres.database}`);
  }
  if (redis && kinds.includes('redis')) {
    const exec = redis.exec as Exec | undefined;
    keys.push(`redis:${await addressOf(exec, redis.host)}:${redis.port}`);
    if (redis.dataDir) keys.push(`redis-data:${await dataDirOf(exec, redis.dataDir)}`);
  }
  if (prometheus && kinds.includes('prometheus')) {
    const exec = prometheus.exec as Exec | undefined;
    const hp = urlHostPort(prometheus.url);
    keys.push(hp ? `prometheus:${await addressOf(exec, hp.host)}:${hp.port}` : `prometheus:${prometheus.url}`);
    keys.push(`prometheus-data:${await dataDirOf(exec, prometheus.dataDir)}`);
  }
  return mode === 'drill' ? keys.map((k) => `drill:${k}`) : keys;
}
