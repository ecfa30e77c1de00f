import { z } from 'zod';

/** An argv array: program and arguments. Never a shell string. */
const argv = z
  .array(z.string())
  .min(1, 'must name a program: an argv array such as ["systemctl", "stop", "api"]')
  .describe('A command as an argv array (no shell). Example: ["systemctl", "stop", "api"]');

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name, e.g. PGPASSWORD_APP')
  .describe('Name of an environment variable that holds the secret at run time. Never the secret itself.');

/** Where a component's commands run: on this host, or inside a container. */
export const execContextSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('host') }).strict(),
    z
      .object({
        kind: z.literal('docker'),
        container: z.string().min(1).describe('Container name or id (docker exec / docker cp target)'),
        helperImage: z
          .string()
          .min(1)
          .optional()
          .describe(
            "Image used to move files inside a stopped container's volumes (docker run --rm --volumes-from). Default: busybox:stable",
          ),
      })
      .strict(),
    z
      .object({
        kind: z.literal('compose'),
        service: z.string().min(1),
        file: z.string().optional().describe('docker compose -f FILE'),
        project: z.string().optional().describe('docker compose -p PROJECT'),
        container: z.string().min(1).describe('Container name of the service (for docker cp, which compose lacks for stopped services)'),
        helperImage: z.string().min(1).optional(),
        command: z
          .array(z.string().min(1))
          .min(1)
          .optional()
          .describe(
            'The compose program as argv: ["docker", "compose"] (the Compose v2 plugin, the default) or ["docker-compose"] (Compose v1: Debian\'s docker-compose package)',
          ),
      })
      .strict(),
  ])
  .describe("Where this component's commands run: on this host, or inside a container");

export const serviceControlSchema = z
  .object({
    stop: argv.describe('Stops it; must not return before it is stopped (or give status)'),
    start: argv,
    status: argv.optional().describe('Exit 0 while running, non-zero when stopped'),
    timeoutSeconds: z.number().positive().default(60),
  })
  .strict();

/** A PostgreSQL cluster restored as a whole (point-in-time recovery, source/pitr/). */
export const clusterSchema = z
  .object({
    dataDir: z.string().min(1).describe('The data directory (PGDATA) the base backup replaces, e.g. /var/lib/postgresql/15/main'),
    service: serviceControlSchema.describe('How to stop and start this PostgreSQL (start may return while it is still recovering)'),
    osUser: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/, 'an OS user name')
      .default('postgres')
      .describe('The OS user the server runs as: owner of the restored data directory'),
    bin: z
      .string()
      .optional()
      .describe(
        'Directory of the server binaries (pg_waldump, pg_verifybackup); default: postgres.bin, else /usr/lib/postgresql/<major>/bin',
      ),
    recoveryTimeoutMinutes: z
      .number()
      .positive()
      .default(120)
      .describe('How long recovery may take before the restore gives up and rolls back'),
  })
  .strict();

export const postgresSchema = z
  .object({
    exec: execContextSchema.default({ kind: 'host' }),
    host: z.string().default('127.0.0.1').describe('Host name, IP, or a socket directory (starts with /)'),
    port: z.number().int().min(1).max(65535).default(5432),
    user: z.string().min(1).default('postgres').describe('A role allowed to drop and create the database'),
    passwordEnv: envName.optional(),
    database: z.string().min(1).describe('The database that is restored (dropped and recreated)'),
    maintenanceDatabase: z.string().min(1).default('postgres').describe('Database to connect to while the target is dropped'),
    owner: z.string().min(1).optional().describe('Owner of the recreated database (default: user)'),
    encoding: z.string().default('UTF8'),
    locale: z.string().optional().describe("LC_COLLATE/LC_CTYPE of the recreated database; default: the server's"),
    template: z.string().default('template0'),
    safetyCopy: z
      .enum(['rename', 'dump', 'none'])
      .default('rename')
      .describe(
        'rename: move the current database aside as <db>__pre_restore_<timestamp>; dump: pg_dump it first; none: keep nothing (recorded)',
      ),
    jobs: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        'connections of the restore: pg_restore --jobs for custom/directory dumps, the parallel split restore for plain dumps (default: CPU cores)',
      ),
    missingRoles: z
      .enum(['ask', 'create', 'skip-ownership'])
      .default('ask')
      .describe('When the dump references roles the server lacks: create them, or restore without ownership and grants'),
    bin: z.string().optional().describe('Directory of the PostgreSQL client binaries (psql, pg_restore); default: PATH'),
    cluster: clusterSchema
      .optional()
      .describe('The whole cluster, for point-in-time recovery from base backups and a WAL archive (backups.layout: physical)'),
  })
  .strict();

export const redisSchema = z
  .object({
    exec: execContextSchema.default({ kind: 'host' }),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(6379),
    passwordEnv: envName.optional(),
    dataDir: z.string().optional().describe('Redis "dir"; default: learned from the running server (CONFIG GET dir)'),
    dbfilename: z.string().optional().describe('Default: learned from the server (CONFIG GET dbfilename)'),
    appendonly: z.boolean().optional().describe('Default: learned from the server (CONFIG GET appendonly)'),
    appenddirname: z.string().optional().describe('Redis 7 AOF directory name; default: learned, else appendonlydir'),
    configFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "redis.conf of this Redis (host path), read when the server is down to learn appendonly, dir, dbfilename; default: /etc/redis/redis.conf when the service is Debian's redis-server unit",
      ),
    service: serviceControlSchema.describe('How to stop and start this Redis'),
  })
  .strict();

export const prometheusSchema = z
  .object({
    exec: execContextSchema.default({ kind: 'host' }),
    url: z.string().url().describe('Base URL, e.g. http://127.0.0.1:9090'),
    dataDir: z.string().min(1).describe('--storage.tsdb.path of the server (inside the container for docker)'),
    service: serviceControlSchema,
    owner: z.string().optional().describe('user[:group] to chown the restored data dir to'),
  })
  .strict();

export const appServiceSchema = z
  .object({
    name: z.string().min(1),
    stop: argv,
    start: argv,
    status: argv.optional().describe('Exit 0 while running'),
    timeoutSeconds: z.number().positive().default(60),
  })
  .strict();

const checkBase = {
  name: z.string().min(1),
  timeoutSeconds: z.number().positive().default(10),
  retries: z.number().int().min(0).default(5),
  intervalSeconds: z.number().nonnegative().default(2),
  when: z.array(z.enum(['restore', 'drill'])).default(['restore', 'drill']),
};

export const checkSchema = z.union([
  z
    .object({
      ...checkBase,
      http: z.object({ url: z.string().url(), status: z.number().int().default(200), bodyContains: z.string().optional() }).strict(),
    })
    .strict(),
  z.object({ ...checkBase, tcp: z.object({ host: z.string(), port: z.number().int().min(1).max(65535) }).strict() }).strict(),
  z
    .object({
      ...checkBase,
      sql: z
        .object({
          query: z.string().min(1),
          expect: z.string().optional().describe('Exact text of the first column of the first row'),
          minRows: z.number().int().optional().describe('Query returns a number (first column) at least this big'),
          database: z.string().optional(),
        })
        .strict(),
    })
    .strict(),
  z
    .object({
      ...checkBase,
      redis: z
        .object({ command: argv, expect: z.string().optional(), min: z.number().optional(), db: z.number().int().min(0).default(0) })
        .strict(),
    })
    .strict(),
  z
    .object({
      ...checkBase,
      promql: z
        .object({
          query: z.string().min(1),
          minSeries: z.number().int().default(1),
          time: z.string().optional().describe('Evaluate at this time (RFC 3339 or Unix seconds) instead of now'),
          freshScrape: z
            .boolean()
            .optional()
            .describe(
              'true (the default): evaluated now, so after a restore it waits for a new scrape; false: evaluated at the newest sample of the restored data (no scrape needed)',
            ),
        })
        .strict(),
    })
    .strict(),
  z.object({ ...checkBase, command: z.object({ argv, expectExitCode: z.number().int().default(0) }).strict() }).strict(),
]);

/** Prometheus export after every run: node_exporter textfile collector and/or Pushgateway. */
export const metricsSchema = z
  .object({
    textfileDir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'node_exporter --collector.textfile.directory (Debian: /var/lib/prometheus/node-exporter); restore_assistant_<recipe>.prom is replaced atomically after each run',
      ),
    pushgateway: z
      .object({
        url: z.string().url().describe('Pushgateway base URL, e.g. http://pushgateway:9091'),
        job: z
          .string()
          .regex(/^[A-Za-z0-9_.:-]+$/)
          .default('restore_assistant')
          .describe('The job label of the pushed group'),
        timeoutSeconds: z.number().positive().default(10),
      })
      .strict()
      .optional()
      .describe("PUT the run's metrics to <url>/metrics/job/<job>/instance/<host>/recipe/<recipe>"),
  })
  .strict();

/** Thresholds of the backup-health checks (list, metrics, the guide). */
export const backupHealthSchema = z
  .object({
    sizeDropPercent: z
      .number()
      .min(1)
      .max(99)
      .default(50)
      .describe('A component smaller than the median of the previous sets by this much is an anomaly'),
    compareLast: z
      .number()
      .int()
      .min(2)
      .max(50)
      .default(5)
      .describe('How many previous sets the median is taken over (at least 2 must exist)'),
    maxSkewMinutes: z
      .number()
      .positive()
      .default(60)
      .describe('Components of one set whose recorded times differ by more than this disagree'),
  })
  .strict();

/**
 * Where an S3-compatible bucket is and how to sign for it: the fields backups.offsite and
 * evidence.upload share (one client, source/offsite/client.ts).
 */
const s3LocationShape = {
  endpoint: z.string().url().optional().describe('S3 endpoint URL (MinIO, Ceph RGW, Wasabi, ...); default: AWS S3 for the region'),
  region: z.string().min(1).default('us-east-1'),
  bucket: z.string().min(3).max(63),
  prefix: z
    .string()
    .default('')
    .describe('Key prefix the layout lives under, e.g. "story-portal/" (the layout is the same as on disk, inside it)'),
  forcePathStyle: z
    .boolean()
    .default(false)
    .describe('Path-style URLs (<endpoint>/<bucket>/<key>): MinIO and most self-hosted stores need it'),
  accessKeyIdEnv: envName.optional().describe('Default: the AWS SDK credential chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)'),
  secretAccessKeyEnv: envName.optional(),
  sessionTokenEnv: envName.optional(),
};

/** An S3-compatible bucket that holds the backup sets (docs/recipes.md, "Off-site sets"). */
export const offsiteSchema = z
  .object({
    ...s3LocationShape,
    staging: z
      .string()
      .min(1)
      .optional()
      .describe('Local directory off-site sets are downloaded to (mode 0700). Default: "staging" beside the evidence directory'),
    keepStaged: z
      .boolean()
      .default(false)
      .describe('Keep the staged copy after a completed run (default: removed; an interrupted download is always kept to resume)'),
    prefer: z.enum(['local', 'offsite']).default('local').describe('A set that exists in both places is read from here'),
  })
  .strict();

/** Where sealed run directories are copied after each run (docs/recipes.md, "Evidence off-site"). */
export const evidenceUploadSchema = z
  .object({
    ...s3LocationShape,
    prefix: z
      .string()
      .default('')
      .describe('Key prefix of the runs: each run directory goes to <prefix>/<run id>/<file>, e.g. "evidence/story-portal"'),
    attempts: z.number().int().min(1).max(10).default(4).describe('Tries per run before the upload is recorded as failed'),
    retryDelaySeconds: z.number().positive().max(60).default(2).describe('Wait before the second try; doubled before each further one'),
  })
  .strict();

/** Keys for encrypted components (*.gpg, *.age); the secrets themselves are only ever in the environment or key files. */
export const encryptionSchema = z
  .object({
    gpg: z
      .object({
        passphraseEnv: envName
          .optional()
          .describe('Symmetric (gpg -c) passphrase, or the passphrase of secretKeyFile; passed to gpg on stdin (--passphrase-fd 0)'),
        secretKeyFile: z
          .string()
          .min(1)
          .optional()
          .describe(
            'An exported secret key (gpg --export-secret-keys) for public-key encrypted files; imported into a private GNUPGHOME in staging',
          ),
      })
      .strict()
      .optional(),
    age: z
      .object({
        identityFile: z
          .string()
          .min(1)
          .describe(
            'age identity file (age-keygen output), passed as age -i FILE. Passphrase-encrypted age files are not supported: age reads those from a terminal only',
          ),
      })
      .strict()
      .optional(),
  })
  .strict();

export const recipeSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, dot, dash, underscore'),
    description: z.string().optional(),
    backups: z
      .object({
        root: z.string().min(1).describe('Directory holding the backup sets'),
        layout: z.enum(['auto', 'story-portal', 'metachat', 'flat', 'physical']).default('auto'),
        walArchive: z
          .string()
          .min(1)
          .optional()
          .describe("physical: the WAL archive directory archive_command = 'cp %p <dir>/%f' writes (segments may be gzip-compressed, .gz)"),
        database: z.string().optional().describe('metachat layout: the <db> part of <db>_<YYYYMMDD_HHMMSS>.dump'),
        pairWindowMinutes: z
          .number()
          .positive()
          .default(30)
          .describe('metachat: Redis and PostgreSQL files this close in time form one set'),
        offsite: offsiteSchema
          .optional()
          .describe('An S3-compatible bucket holding sets in the same layout (list shows local / off-site / both)'),
        encryption: encryptionSchema.optional().describe('Keys for *.gpg and *.age components'),
        staging: z
          .string()
          .min(1)
          .optional()
          .describe(
            'Local directory encrypted sets are decrypted into and off-site sets downloaded to (0700; not /tmp, a world-writable dir or a tmpfs). Default: "staging" beside the evidence directory',
          ),
      })
      .strict(),
    components: z
      .object({
        postgres: postgresSchema.optional(),
        redis: redisSchema.optional(),
        prometheus: prometheusSchema.optional(),
      })
      .strict(),
    services: z.array(appServiceSchema).default([]).describe('Application services, stopped in this order and started in reverse'),
    checks: z.array(checkSchema).default([]).describe('Health checks after a restore, and data checks for drills'),
    objectives: z
      .object({
        rtoMinutes: z.number().positive().optional(),
        rpoMinutes: z.number().positive().optional(),
      })
      .strict()
      .default({}),
    drill: z
      .object({ intervalDays: z.number().positive().default(90) })
      .strict()
      .default({ intervalDays: 90 }),
    evidence: z
      .object({
        dir: z.string().optional().describe('Default: $XDG_STATE_HOME/restore-assistant/runs'),
        upload: evidenceUploadSchema
          .optional()
          .describe('An S3-compatible bucket each sealed run directory is copied to after the run (retried; recorded in history.jsonl)'),
      })
      .strict()
      .default({}),
    metrics: metricsSchema.default({}).describe('Where the outcome of every run is exported for Prometheus (docs/drills.md)'),
    backupHealth: backupHealthSchema.default({ sizeDropPercent: 50, compareLast: 5, maxSkewMinutes: 60 }),
    confirmWord: z.string().optional().describe('Word the operator types to confirm (default: the database name, else the recipe name)'),
    parallel: z.boolean().default(true).describe('Restore Redis and Prometheus while PostgreSQL restores'),
  })
  .strict();

export type Recipe = z.infer<typeof recipeSchema>;
export type RecipeInput = z.input<typeof recipeSchema>;
export type ExecContext = z.infer<typeof execContextSchema>;
export type PostgresTarget = z.infer<typeof postgresSchema>;
export type ClusterTarget = z.infer<typeof clusterSchema>;
export type RedisTarget = z.infer<typeof redisSchema>;
export type PrometheusTarget = z.infer<typeof prometheusSchema>;
export type AppService = z.infer<typeof appServiceSchema>;
export type ServiceControl = z.infer<typeof serviceControlSchema>;
export type Check = z.infer<typeof checkSchema>;
export type MetricsConfig = z.infer<typeof metricsSchema>;
export type OffsiteSource = z.infer<typeof offsiteSchema>;
export type EvidenceUpload = z.infer<typeof evidenceUploadSchema>;
/** The bucket part of an off-site source or an evidence upload: what the S3 client needs. */
export type S3Location = Pick<
  OffsiteSource,
  'endpoint' | 'region' | 'bucket' | 'prefix' | 'forcePathStyle' | 'accessKeyIdEnv' | 'secretAccessKeyEnv' | 'sessionTokenEnv'
>;
export type EncryptionKeys = z.infer<typeof encryptionSchema>;
export type BackupHealthConfig = z.infer<typeof backupHealthSchema>;
