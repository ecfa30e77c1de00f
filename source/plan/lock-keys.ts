import type { ComponentKind } from '../catalog/types.js';
import type { Recipe } from '../recipe/schema.js';

/**
 * The one lock-key scheme. A key names a target by its identity: "postgres:127.0.0.1:5432/app",
 * "redis:127.0.0.1:6379", "prometheus:127.0.0.1:9090". A drill restores into scratch services and
 * never touches the real targets, so it locks "drill:<key of the real target>": one drill of a
 * deployment at a time, and a drill never blocks a restore (nor a restore a drill). The plan
 * carries its keys (`Plan.lockKeys`); the session takes them before it verifies or probes.
 */
export function lockKeysFor(recipe: Recipe, kinds: readonly ComponentKind[], mode: 'restore' | 'drill'): string[] {
  const keys: string[] = [];
  const { postgres, redis, prometheus } = recipe.components;
  if (postgres && kinds.includes('postgres')) keys.push(`postgres:${postgres.host}:${postgres.port}/${postgres.database}`);
  if (redis && kinds.includes('redis')) keys.push(`redis:${redis.host}:${redis.port}`);
  if (prometheus && kinds.includes('prometheus')) {
    let where = prometheus.url;
    try {
      where = new URL(prometheus.url).host;
    } catch {
      // keep the url as written
    }
    keys.push(`prometheus:${where}`);
  }
  return mode === 'drill' ? keys.map((k) => `drill:${k}`) : keys;
}
