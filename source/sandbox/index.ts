export { freePort, isPortClash, withFreePort, PORT_ATTEMPTS, type PortRetryOptions } from './ports.js';
export {
  readServiceSpec,
  serviceCtlArgv,
  serviceCtlMain,
  serviceSpecSchema,
  serviceStatus,
  startService,
  stopService,
  writeServiceSpec,
  SERVICE_STATUS_NOT_RUNNING,
  type ServiceAction,
  type ServiceSpec,
  type ServiceStatus,
  type StartResult,
  type StopResult,
} from './service-ctl.js';
export { findPostgresBinaries, startPostgres, type PostgresBinaries, type PostgresSandbox, type StartPostgresOptions } from './postgres.js';
export { parseRedisInfo, readAofManifest, redisBgsave, startRedis, type RedisSandbox, type StartRedisOptions } from './redis.js';
export { RespError, replyText, respCommand, respCommands, type RespReply, type RespTarget } from './resp.js';
export {
  startPrometheus,
  type PrometheusSandbox,
  type PromQueryData,
  type PromSample,
  type PromSeries,
  type StartPrometheusOptions,
} from './prometheus.js';
export {
  canonicalBytes,
  fingerprintPostgres,
  fingerprintPrometheus,
  fingerprintRedis,
  INVOICE_SEQUENCE_VALUE,
  quoteIdent,
  quoteLiteral,
  seedPostgres,
  seedRedis,
  type PostgresFingerprint,
  type PrometheusFingerprint,
  type RedisFingerprint,
  type RedisKeyFingerprint,
  type RedisValueFingerprint,
  type SeedPostgresOptions,
  type SeedPostgresResult,
  type SeedRedisResult,
} from './world.js';
export {
  backupMetachat,
  backupMetachatDatabaseScript,
  backupPgCustom,
  backupPgDirectory,
  backupPgPlain,
  backupPrometheusLive,
  backupRedisRdb,
  backupStoryPortal,
  metachatTimestamp,
  sha256File,
  storyPortalBackupId,
  writeSha256Sidecar,
  type BackupTimeOptions,
  type MetachatBackup,
  type StoryPortalBackup,
  type TarResult,
  type World,
} from './backups.js';
export { SandboxGroup, type Disposable, type SandboxGroupOptions } from './group.js';
export { keepSandboxFiles, releaseFromExitGuard } from './exit-guard.js';
export { startNodeExporter, type NodeExporterSandbox } from './node-exporter.js';
export { startPushgateway, type PushgatewaySandbox } from './pushgateway.js';
