import type { PostgresSandbox } from './postgres.js';
import type { PrometheusSandbox, PromQueryData } from './prometheus.js';
import type { RedisSandbox } from './redis.js';
import { RespError, replyText, type RespReply } from './resp.js';
import { quoteIdent, quoteLiteral } from '../targets/postgres.js';

/**
 * A small but realistic "production" to back up and restore: seeders and fingerprints.
 * Seeds are deterministic (no random(), no now()), so two worlds seeded alike fingerprint alike.
 */

// SQL quoting has one home: targets/postgres.ts (quote_ident / quote_literal).
export { quoteIdent, quoteLiteral };

export interface SeedPostgresOptions {
  /** Users; stories are 2x, comments 3x (default 200 -> ~1,200 rows). */
  rows?: number;
  /** Owner role of the database and its objects (default app_owner). Created if missing. */
  owner?: string;
  /** Role granted SELECT on the view (default app_reader). Created if missing. */
  reader?: string;
}

export interface SeedPostgresResult {
  database: string;
  owner: string;
  reader: string;
  rowCounts: Record<string, number>;
  /** Value the standalone sequence app.invoice_number_seq was advanced to. */
  invoiceSequenceValue: number;
}

export const INVOICE_SEQUENCE_VALUE = 4242;

function seedSchemaSql(n: number, reader: string): string {
  const r = quoteIdent(reader);
  return `
CREATE SCHEMA app;
CREATE TYPE app.story_status AS ENUM ('draft', 'published', 'archived');

CREATE TABLE app.users (
  id          bigserial PRIMARY KEY,
  external_id text NOT NULL UNIQUE,
  request_id  uuid NOT NULL,
  email       text NOT NULL,
  display_name text,
  karma       integer NOT NULL DEFAULT 0,
  balance     numeric(12,2) NOT NULL DEFAULT 0,
  story_count integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL,
  profile     jsonb NOT NULL DEFAULT '{}'::jsonb,
  avatar      bytea,
  tags        text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE app.stories (
  id           bigserial PRIMARY KEY,
  author_id    bigint NOT NULL REFERENCES app.users(id) ON DELETE CASCADE,
  title        text NOT NULL,
  body         text NOT NULL,
  status       app.story_status NOT NULL DEFAULT 'draft',
  word_count   integer NOT NULL DEFAULT 0,
  views        bigint NOT NULL DEFAULT 0,
  ratings      smallint[],
  published_at timestamptz,
  metadata     jsonb
);

CREATE TABLE app.comments (
  id         bigserial PRIMARY KEY,
  story_id   bigint NOT NULL REFERENCES app.stories(id) ON DELETE CASCADE,
  user_id    bigint REFERENCES app.users(id) ON DELETE SET NULL,
  body       text NOT NULL,
  created_at timestamptz NOT NULL
);

CREATE TABLE public.schema_migrations (
  version    text PRIMARY KEY,
  applied_at timestamptz NOT NULL
);

CREATE SEQUENCE app.invoice_number_seq START WITH 1000;

CREATE INDEX stories_author_status_idx ON app.stories (author_id, status);
CREATE INDEX users_profile_idx ON app.users USING gin (profile);
CREATE INDEX comments_story_created_idx ON app.comments (story_id, created_at);

CREATE FUNCTION app.word_count(body text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
  IF body IS NULL OR btrim(body) = '' THEN
    RETURN 0;
  END IF;
  RETURN array_length(regexp_split_to_array(btrim(body), '\\s+'), 1);
END
$fn$;

CREATE FUNCTION app.stories_set_word_count() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.word_count := app.word_count(NEW.body);
  RETURN NEW;
END
$fn$;

CREATE TRIGGER stories_word_count
  BEFORE INSERT OR UPDATE OF body ON app.stories
  FOR EACH ROW EXECUTE FUNCTION app.stories_set_word_count();

-- Maintains users.story_count. Note for restores: a data-only restore into an existing schema
-- fires this trigger again (double counts) unless triggers are disabled.
CREATE FUNCTION app.users_maintain_story_count() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE app.users SET story_count = story_count + 1 WHERE id = NEW.author_id;
  ELSIF TG_OP = 'DELETE' THEN
    UPDATE app.users SET story_count = story_count - 1 WHERE id = OLD.author_id;
  END IF;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER stories_story_count
  AFTER INSERT OR DELETE ON app.stories
  FOR EACH ROW EXECUTE FUNCTION app.users_maintain_story_count();

CREATE VIEW app.published_stories AS
  SELECT s.id, s.title, u.display_name AS author, s.word_count, s.published_at
  FROM app.stories s JOIN app.users u ON u.id = s.author_id
  WHERE s.status = 'published';

GRANT USAGE ON SCHEMA app TO ${r};
GRANT SELECT ON app.published_stories TO ${r};

INSERT INTO app.users (external_id, request_id, email, display_name, karma, balance, created_at, profile, avatar, tags)
SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12),
       md5('request' || i)::uuid,
       'user' || i || '@example.test',
       CASE WHEN i % 17 = 0 THEN NULL ELSE 'User ' || i END,
       (i * 37) % 1000 - 200,
       round(((i * 7919) % 100000) / 100.0, 2),
       timestamptz '2025-01-01 00:00:00+00' + i * interval '37 minutes',
       jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + i % 3], 'n', i,
                          'prefs', jsonb_build_object('dark', i % 2 = 0, 'lang', (ARRAY['en', 'de', 'ja'])[1 + i % 3])),
       CASE WHEN i % 5 = 0 THEN NULL ELSE decode(md5('avatar' || i), 'hex') END,
       ARRAY['t' || (i % 5), 't' || (i % 7)]
FROM (SELECT i, md5('user' || i) AS h FROM generate_series(1, ${n}) AS i) AS s
ORDER BY i;

INSERT INTO app.stories (author_id, title, body, status, views, ratings, published_at, metadata)
SELECT 1 + (i * 7) % ${n},
       'Story #' || i,
       repeat('lorem ipsum dolor ', 1 + i % 9) || 'end ' || i,
       (ARRAY['draft', 'published', 'archived']::app.story_status[])[1 + i % 3],
       3000000000 + (i::bigint * 104729) % 1000000,
       ARRAY[(i % 5)::smallint, ((i * 3) % 5)::smallint],
       CASE WHEN i % 3 = 1 THEN timestamptz '2025-02-01 00:00:00+00' + i * interval '1 hour' END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE jsonb_build_object('source', 'seed', 'i', i) END
FROM generate_series(1, ${2 * n}) AS i
ORDER BY i;

INSERT INTO app.stories (author_id, title, body, status, published_at)
VALUES (1, E'\\u00dcn\\u00efc\\u00f8d\\u00e9 \\u2713 "double" ''single'' back\\\\slash\\ttab',
        E'line one\\nline two\\r\\n\\\\.\\nafter a COPY terminator look-alike', 'published',
        timestamptz '2025-06-01 12:00:00+00');

INSERT INTO app.comments (story_id, user_id, body, created_at)
SELECT 1 + (i * 11) % ${2 * n},
       CASE WHEN i % 13 = 0 THEN NULL ELSE 1 + (i * 5) % ${n} END,
       'comment ' || i,
       timestamptz '2025-03-01 00:00:00+00' + i * interval '5 minutes'
FROM generate_series(1, ${3 * n}) AS i
ORDER BY i;

INSERT INTO public.schema_migrations (version, applied_at) VALUES
  ('20250101000000_init', '2025-01-01 00:00:00+00'),
  ('20250201000000_stories', '2025-02-01 00:00:00+00'),
  ('20250301000000_comments', '2025-03-01 00:00:00+00');

SELECT setval('app.invoice_number_seq', ${INVOICE_SEQUENCE_VALUE});
`;
}

/**
 * Creates database `db` owned by an owner role, with a schema exercising many types, FKs, sequences
 * (bigserial + a standalone one at a known value), a view, plpgsql functions, triggers, indexes
 * and a GRANT to a second role. Roles are cluster-wide: pg_dump of one database does not carry them.
 */
export async function seedPostgres(
  pg: Pick<PostgresSandbox, 'psql'>,
  db: string,
  options: SeedPostgresOptions = {},
): Promise<SeedPostgresResult> {
  const n = options.rows ?? 200;
  if (!Number.isInteger(n) || n < 1) throw new Error(`seedPostgres: rows must be a positive integer, got ${n}`);
  const owner = options.owner ?? 'app_owner';
  const reader = options.reader ?? 'app_reader';
  await pg.psql(`
DO $do$
BEGIN
  -- Roles are cluster-wide: a concurrent seed of another database may create them first.
  BEGIN
    CREATE ROLE ${quoteIdent(owner)} LOGIN PASSWORD ${quoteLiteral(`${owner}-password`)};
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
  BEGIN
    CREATE ROLE ${quoteIdent(reader)} NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
END
$do$;
CREATE DATABASE ${quoteIdent(db)} OWNER ${quoteIdent(owner)};
`);
  await pg.psql(`SET ROLE ${quoteIdent(owner)};\n${seedSchemaSql(n, reader)}\nRESET ROLE;\n`, db);
  return {
    database: db,
    owner,
    reader,
    rowCounts: { 'app.users': n, 'app.stories': 2 * n + 1, 'app.comments': 3 * n, 'public.schema_migrations': 3 },
    invoiceSequenceValue: INVOICE_SEQUENCE_VALUE,
  };
}

export interface PostgresFingerprint {
  database: string;
  /** "schema.table" (quoted where needed) -> row count and md5 of its rows as text, sorted bytewise. */
  tables: Record<string, { rows: number; md5: string }>;
  /** "schema.sequence" -> last_value (null if never called). */
  sequences: Record<string, string | null>;
  views: string[];
  materializedViews: string[];
  /** "schema.name(identity args)" */
  functions: string[];
  /** "schema.table.trigger" */
  triggers: string[];
  /** "schema.index" */
  indexes: string[];
  /** "schema.type" -> labels in order */
  enums: Record<string, string[]>;
}

const SESSION_SETTINGS = `
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1;
SET bytea_output = 'hex';
`;

const USER_NAMESPACE = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

/** Row counts + content hashes + catalog lists: a JSON-able object that is equal iff the data is equal. */
export async function fingerprintPostgres(pg: Pick<PostgresSandbox, 'psql'>, db: string): Promise<PostgresFingerprint> {
  const catalogJson = await pg.psql(
    `${SESSION_SETTINGS}
SELECT json_build_object(
  'tables', (SELECT coalesce(json_agg(format('%I.%I', n.nspname, c.relname) ORDER BY n.nspname, c.relname), '[]')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND ${USER_NAMESPACE}),
  'sequences', (SELECT coalesce(json_object_agg(format('%I.%I', schemaname, sequencename), last_value::text ORDER BY schemaname, sequencename), '{}')
                FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),
  'views', (SELECT coalesce(json_agg(format('%I.%I', schemaname, viewname)), '[]')
            FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),
  'materializedViews', (SELECT coalesce(json_agg(format('%I.%I', schemaname, matviewname)), '[]') FROM pg_matviews),
  'functions', (SELECT coalesce(json_agg(format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))), '[]')
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE ${USER_NAMESPACE}
                  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')),
  'triggers', (SELECT coalesce(json_agg(format('%I.%I.%I', n.nspname, c.relname, t.tgname)), '[]')
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE NOT t.tgisinternal AND ${USER_NAMESPACE}),
  'indexes', (SELECT coalesce(json_agg(format('%I.%I', schemaname, indexname)), '[]')
              FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),
  'enums', (SELECT coalesce(json_object_agg(name, labels ORDER BY name), '{}') FROM (
              SELECT format('%I.%I', n.nspname, t.typname) AS name, json_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
              FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
              GROUP BY n.nspname, t.typname) AS x)
);`,
    db,
  );
  const catalog = JSON.parse(catalogJson) as Omit<PostgresFingerprint, 'database' | 'tables'> & { tables: string[] };
  let tables: PostgresFingerprint['tables'] = {};
  if (catalog.tables.length > 0) {
    // Table names come back already quoted by format('%I.%I').
    const parts = catalog.tables.map(
      (name) =>
        `SELECT ${quoteLiteral(name)} AS name, count(*) AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE "C"), '')) AS md5 FROM ${name} AS t`,
    );
    const tablesJson = await pg.psql(
      `${SESSION_SETTINGS}
SELECT json_object_agg(name, json_build_object('rows', rows, 'md5', md5) ORDER BY name) FROM (
${parts.join('\nUNION ALL\n')}
) AS x;`,
      db,
    );
    tables = JSON.parse(tablesJson) as PostgresFingerprint['tables'];
  }
  return {
    database: db,
    tables,
    sequences: catalog.sequences,
    // Sorted here (bytewise), not by catalog/OID order, which differs after a restore.
    views: [...catalog.views].sort(),
    materializedViews: [...catalog.materializedViews].sort(),
    functions: [...catalog.functions].sort(),
    triggers: [...catalog.triggers].sort(),
    indexes: [...catalog.indexes].sort(),
    enums: catalog.enums,
  };
}

export interface SeedRedisResult {
  /** db -> number of keys written */
  keys: Record<number, number>;
  /** Keys that carry a TTL (1 h), per db. */
  keysWithTtl: Record<number, string[]>;
}

const HOUR_MS = 3_600_000;

/** Every type (string, hash, list, set, zset, stream) in db 0 and 1, some with 1 h TTLs, then SAVE. */
export async function seedRedis(redis: Pick<RedisSandbox, 'command' | 'commands'>): Promise<SeedRedisResult> {
  const bigHash: string[] = [];
  for (let i = 0; i < 200; i += 1) bigHash.push(`field:${i}`, `value ${i}`);
  const bigList: string[] = [];
  for (let i = 0; i < 300; i += 1) bigList.push(`item-${i}`);

  const db0: (string | number | Buffer)[][] = [
    ['SET', 'app:config', '{"feature_flags":{"stories":true,"comments":false},"version":3}'],
    ['SET', 'counter:visits', '12345'],
    ['SET', 'text:unicode', 'Ünïcødé ✓\nsecond line\ttab'],
    ['SET', 'blob:binary', Buffer.from([0, 1, 2, 255, 254, 10, 13, 0, 128])],
    ...[1, 2, 3, 4, 5].map((i) => ['SET', `session:${i}`, JSON.stringify({ user: i, csrf: `token-${i}` }), 'PX', HOUR_MS]),
    ['HSET', 'user:1', 'name', 'Alice', 'email', 'alice@example.test', 'karma', '42'],
    ['HSET', 'user:2', 'name', 'Bob', 'email', 'bob@example.test', 'karma', '7'],
    ['PEXPIRE', 'user:2', HOUR_MS],
    ['HSET', 'hash:big', ...bigHash],
    ['RPUSH', 'queue:jobs', 'job-1', 'job-2', 'job-3', 'job-4', 'job-5'],
    ['RPUSH', 'list:big', ...bigList],
    ['SADD', 'tags:popular', 'postgres', 'redis', 'prometheus', 'backup'],
    ['SADD', 'ids:set', '1', '2', '3', '42', '1000'],
    ['ZADD', 'leaderboard', '100', 'alice', '250', 'bob', '175', 'carol', '250', 'dave', '-3.5', 'eve'],
    ['XADD', 'events', '1700000000000-0', 'type', 'signup', 'user', '1'],
    ['XADD', 'events', '1700000000001-0', 'type', 'story', 'user', '1', 'story', '10'],
    ['XADD', 'events', '1700000005000-3', 'type', 'comment', 'user', '2'],
    ['XGROUP', 'CREATE', 'events', 'workers', '0'],
  ];
  const db1: (string | number | Buffer)[][] = [
    ['SET', 'cache:page:/home', '<html><body>home</body></html>', 'PX', HOUR_MS],
    ['SET', 'cache:hits', '99'],
    ['HSET', 'cache:meta', 'generated', '2025-01-01T00:00:00Z', 'ttl', '3600'],
    ['RPUSH', 'recent:stories', '10', '9', '8'],
    ['SADD', 'cache:keys', 'cache:page:/home', 'cache:hits'],
    ['ZADD', 'rate:limits', '1', 'ip:10.0.0.1', '5', 'ip:10.0.0.2'],
    ['PEXPIRE', 'rate:limits', HOUR_MS],
    ['XADD', 'audit', '1-1', 'action', 'login', 'who', 'alice'],
  ];
  for (const [db, commands] of [
    [0, db0],
    [1, db1],
  ] as const) {
    const replies = await redis.commands(commands, db);
    const failed = replies.findIndex((reply) => reply instanceof RespError);
    if (failed >= 0) {
      throw new Error(`seedRedis: db ${db} command ${String(commands[failed]?.[0])} failed: ${(replies[failed] as RespError).message}`);
    }
  }
  await redis.command(['SAVE']);
  const size = async (db: number) => Number(replyText(await redis.command(['DBSIZE'], db)));
  return {
    keys: { 0: await size(0), 1: await size(1) },
    keysWithTtl: {
      0: ['session:1', 'session:2', 'session:3', 'session:4', 'session:5', 'user:2'],
      1: ['cache:page:/home', 'rate:limits'],
    },
  };
}

/** Bytes as text when they are valid UTF-8, else "base64:<...>" (canonical either way). */
export function canonicalBytes(value: RespReply): string {
  if (!Buffer.isBuffer(value)) return replyText(value);
  const text = value.toString('utf8');
  return Buffer.from(text, 'utf8').equals(value) ? text : `base64:${value.toString('base64')}`;
}

export type RedisValueFingerprint = string | string[] | [string, string][] | { id: string; fields: string[] }[] | null;

export interface RedisKeyFingerprint {
  type: string;
  value: RedisValueFingerprint;
  /** Stream consumer groups (name, last-delivered-id). */
  groups?: [string, string][];
  ttl: boolean;
}

export interface RedisFingerprint {
  /** db number -> key -> fingerprint; only dbs that have keys. */
  dbs: Record<string, Record<string, RedisKeyFingerprint>>;
}

function asArray(reply: RespReply, what: string): RespReply[] {
  if (reply instanceof RespError) throw new Error(`${what}: ${reply.message}`);
  if (!Array.isArray(reply)) throw new Error(`${what}: expected an array reply`);
  return reply;
}

function pairs(items: RespReply[]): [string, string][] {
  const result: [string, string][] = [];
  for (let i = 0; i + 1 < items.length; i += 2) result.push([canonicalBytes(items[i] ?? null), canonicalBytes(items[i + 1] ?? null)]);
  return result;
}

/**
 * Every key of dbs 0..15: type, canonical value (type-specific reads; DUMP payloads are not
 * comparable across versions) and whether it has a TTL.
 */
export async function fingerprintRedis(redis: Pick<RedisSandbox, 'command' | 'commands'>): Promise<RedisFingerprint> {
  const keyspace = replyText(await redis.command(['INFO', 'keyspace']));
  const dbs: RedisFingerprint['dbs'] = {};
  for (const match of keyspace.matchAll(/^db(\d+):keys=(\d+)/gm)) {
    const db = Number(match[1]);
    if (Number(match[2]) === 0) continue;
    const keys: Buffer[] = [];
    let cursor = '0';
    do {
      const reply = asArray(await redis.command(['SCAN', cursor, 'COUNT', 1000], db), `SCAN db ${db}`);
      cursor = replyText(reply[0] ?? null);
      for (const key of asArray(reply[1] ?? null, `SCAN db ${db}`)) if (Buffer.isBuffer(key)) keys.push(key);
    } while (cursor !== '0');
    keys.sort(Buffer.compare);

    const meta = await redis.commands(
      keys.flatMap((key) => [
        ['TYPE', key],
        ['PTTL', key],
      ]),
      db,
    );
    const reads: (string | number | Buffer)[][] = [];
    const kinds: string[] = [];
    keys.forEach((key, index) => {
      const type = replyText(meta[index * 2] ?? null);
      kinds.push(type);
      switch (type) {
        case 'string':
          reads.push(['GET', key]);
          break;
        case 'hash':
          reads.push(['HGETALL', key]);
          break;
        case 'list':
          reads.push(['LRANGE', key, 0, -1]);
          break;
        case 'set':
          reads.push(['SMEMBERS', key]);
          break;
        case 'zset':
          reads.push(['ZRANGE', key, 0, -1, 'WITHSCORES']);
          break;
        case 'stream':
          reads.push(['XRANGE', key, '-', '+'], ['XINFO', 'GROUPS', key]);
          break;
        default:
          break;
      }
    });
    const values = await redis.commands(reads, db);
    let cursorIndex = 0;
    const next = (): RespReply => {
      const value = values[cursorIndex] ?? null;
      cursorIndex += 1;
      return value;
    };
    const entries: Record<string, RedisKeyFingerprint> = {};
    keys.forEach((key, index) => {
      const type = kinds[index] ?? 'none';
      const ttlReply = meta[index * 2 + 1];
      const ttl = typeof ttlReply === 'number' && ttlReply >= 0;
      const name = canonicalBytes(key);
      let value: RedisValueFingerprint = null;
      let groups: [string, string][] | undefined;
      const label = `db ${db} key ${name}`;
      switch (type) {
        case 'string': {
          const reply = next();
          value = reply === null ? null : canonicalBytes(reply);
          break;
        }
        case 'hash':
          value = pairs(asArray(next(), label)).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
          break;
        case 'list':
          value = asArray(next(), label).map(canonicalBytes);
          break;
        case 'set':
          value = asArray(next(), label).map(canonicalBytes).sort();
          break;
        case 'zset':
          value = pairs(asArray(next(), label));
          break;
        case 'stream': {
          value = asArray(next(), label).map((entry) => {
            const [id, fields] = asArray(entry, label);
            return { id: canonicalBytes(id ?? null), fields: asArray(fields ?? null, label).map(canonicalBytes) };
          });
          groups = asArray(next(), label)
            .map((group) => {
              const info = pairs(asArray(group, label));
              const get = (field: string) => info.find(([k]) => k === field)?.[1] ?? '';
              return [get('name'), get('last-delivered-id')] as [string, string];
            })
            .sort();
          break;
        }
        default:
          value = `unsupported type ${type}`;
      }
      entries[name] = groups ? { type, value, groups, ttl } : { type, value, ttl };
    });
    dbs[String(db)] = entries;
  }
  return { dbs };
}

export interface PrometheusFingerprint {
  atTime: number;
  /** Number of series with a sample in the 5 min lookback before atTime. */
  seriesCount: number;
  /** up series (labels) and values at atTime. */
  up: { labels: string; value: string }[];
  /** Samples of up{job="prometheus"} in (atTime-60s, atTime]. */
  upSamplesLastMinute: number;
  /** The scraping process' start time as recorded at atTime (a restarted server reports another). */
  processStartTime: string | null;
  /** Timestamp of the last up{job="prometheus"} sample at or before atTime. */
  lastUpTimestamp: string | null;
  /** prometheus_tsdb_head_series as scraped at atTime. */
  headSeries: string | null;
}

function canonicalLabels(metric: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(metric).sort(([a], [b]) => (a < b ? -1 : 1))));
}

function firstValue(data: PromQueryData): string | null {
  if (data.resultType === 'scalar') return data.result[1];
  if (data.resultType !== 'vector') return null;
  return data.result[0]?.value[1] ?? null;
}

/**
 * Query results at a fixed past timestamp (seconds): series count, up, sample counts and self-metric
 * values. Equal before a backup and after its restore iff the samples came back.
 */
export async function fingerprintPrometheus(prom: Pick<PrometheusSandbox, 'query'>, atTimeSeconds: number): Promise<PrometheusFingerprint> {
  const at = atTimeSeconds;
  const [series, up, samples, start, lastUp, head] = await Promise.all([
    prom.query('count({__name__=~".+"})', at),
    prom.query('up', at),
    prom.query('count_over_time(up{job="prometheus"}[1m])', at),
    prom.query('process_start_time_seconds{job="prometheus"}', at),
    prom.query('timestamp(up{job="prometheus"})', at),
    prom.query('prometheus_tsdb_head_series{job="prometheus"}', at),
  ]);
  return {
    atTime: at,
    seriesCount: Number(firstValue(series) ?? 0),
    up:
      up.resultType === 'vector'
        ? up.result.map((s) => ({ labels: canonicalLabels(s.metric), value: s.value[1] })).sort((a, b) => (a.labels < b.labels ? -1 : 1))
        : [],
    upSamplesLastMinute: Number(firstValue(samples) ?? 0),
    processStartTime: firstValue(start),
    lastUpTimestamp: firstValue(lastUp),
    headSeries: firstValue(head),
  };
}
