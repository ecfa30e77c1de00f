import { UsageError } from '../errors.js';
import type { RedisTarget } from '../recipe/schema.js';
import * as redis from '../targets/redis.js';
import { startActions, stopActions } from '../targets/services.js';
import type { TargetFacts } from './types.js';
import type { PlannedAction } from '../actions/types.js';
import { component, num, verifyFacts, type BuildPlanInput, type StepDraft } from './draft.js';

/** The Redis steps of a plan: stop, move the current files aside, place the RDB (and AOF base), start; their undos. */

/** The Redis layout from server facts, else the recipe, else Redis defaults. */
export function redisLayout(target: RedisTarget, facts: TargetFacts): { layout: redis.RedisLayout; warnings: string[] } {
  const f = facts.redis;
  const warnings: string[] = [];
  const dir = f?.dir ?? target.dataDir;
  const dbfilename = f?.dbfilename ?? target.dbfilename ?? 'dump.rdb';
  const learned = redisAppendonly(target, f);
  const appendonly = learned.appendonly;
  if (!dir) {
    const why = f?.error ? `the server could not be asked (${f.error})` : 'the server was not asked (--offline or unreachable)';
    throw new UsageError(`The Redis data directory is unknown: ${why} and the recipe sets no components.redis.dataDir.`, {
      next: 'Set components.redis.dataDir (CONFIG GET dir on the server tells it), or plan without --offline.',
    });
  }
  if (f && f.source === 'server') {
    if (target.dataDir !== undefined && f.dir !== target.dataDir)
      warnings.push(`Redis reports dir ${f.dir}, the recipe says ${target.dataDir}: using the server's.`);
    if (target.dbfilename !== undefined && f.dbfilename !== target.dbfilename)
      warnings.push(`Redis reports dbfilename ${f.dbfilename}, the recipe says ${target.dbfilename}: using the server's.`);
    if (target.appendonly !== undefined && f.appendonly !== target.appendonly)
      warnings.push(
        `Redis reports appendonly ${f.appendonly ? 'yes' : 'no'}, the recipe says ${target.appendonly ? 'yes' : 'no'}: using the server's.`,
      );
  }
  if (f && f.source === 'recipe') {
    if (f.configFile && f.configError) warnings.push(`Redis config file ${f.configFile} could not be read (${f.configError}).`);
    if (f.appendonlyFrom === 'config-file' && f.configFile) {
      const c = f.configFile;
      for (const [k, mine, theirs] of [
        ['dir', target.dataDir, f.dir],
        ['dbfilename', target.dbfilename, f.dbfilename],
        ['appendonly', target.appendonly === undefined ? undefined : target.appendonly ? 'yes' : 'no', f.appendonly ? 'yes' : 'no'],
      ] as const) {
        if (mine !== undefined && mine !== theirs)
          warnings.push(`${c} says ${k} ${theirs}, the recipe says ${mine}: using the config file's (Redis reads it when it starts).`);
      }
    }
  }
  warnings.push(...learned.warnings);
  const major = f?.versionMajor ?? (f?.version ? Number.parseInt(f.version, 10) : undefined);
  if (appendonly && major === undefined)
    warnings.push('Redis version unknown: assuming Redis 7 or later (multi-part AOF directory) for the AOF layout.');
  return {
    layout: {
      dir,
      dbfilename,
      appendonly,
      appenddirname: f?.appenddirname ?? target.appenddirname ?? 'appendonlydir',
      appendfilename: f?.appendfilename ?? 'appendonly.aof',
      multiPartAof: major === undefined || major >= 7,
    },
    warnings,
  };
}

/**
 * Whether the restored Redis will run with appendonly (issue 11): the server's answer, else its
 * config file, else the recipe, else an AOF found in the data dir. When nothing says, the backup is
 * installed both as the RDB and as the AOF base (appendonly true here): Redis loads it whichever
 * setting it starts with, never an empty AOF.
 */
function redisAppendonly(target: RedisTarget, f: TargetFacts['redis']): { appendonly: boolean; warnings: string[] } {
  if (f?.source === 'server') return { appendonly: f.appendonly, warnings: [] };
  const from = f?.appendonlyFrom;
  if (f && from === 'config-file')
    return {
      appendonly: f.appendonly,
      warnings: [`Redis is not answering: appendonly ${f.appendonly ? 'yes' : 'no'} per ${f.configFile ?? 'its config file'}.`],
    };
  if (f && from === 'aof-dir') {
    return {
      appendonly: true,
      warnings: [
        `Redis is not answering and no config file says otherwise: an AOF exists in ${f.dir}, so appendonly yes is assumed and the backup is installed as the RDB and as the AOF base (Redis loads it either way).`,
      ],
    };
  }
  if (from === 'recipe' || (target.appendonly !== undefined && !from))
    return { appendonly: target.appendonly ?? f?.appendonly ?? false, warnings: [] };
  return {
    appendonly: true,
    warnings: [
      'Redis appendonly is not known (the server was not asked, no config file was read, no AOF is in the data dir): the backup is installed as the RDB and as the AOF base, so Redis loads it whether it starts with appendonly yes or no. Set components.redis.configFile (or appendonly) to say.',
    ],
  };
}

export function redisSteps(t: RedisTarget, input: BuildPlanInput, stamp: string, warnings: string[]): StepDraft[] {
  const comp = component(input.set, 'redis');
  const { layout, warnings: w } = redisLayout(t, input.facts);
  warnings.push(...w);
  const svc = t.service;
  const files = redis.redisFiles(layout, stamp);
  const backupKeys = input.facts.redis?.backupKeys ?? num(verifyFacts(input.verify, 'redis')['redisKeys']);
  const waitDown: PlannedAction = {
    type: 'wait-tcp',
    host: t.host,
    port: t.port,
    until: 'down',
    timeoutSeconds: svc.timeoutSeconds,
    purpose: `Wait until ${t.host}:${t.port} refuses connections`,
  };
  const waitUp: PlannedAction = {
    type: 'wait-command',
    command: redis.pongCommand(t),
    untilExit: 'zero',
    timeoutSeconds: Math.max(svc.timeoutSeconds, 300),
    purpose: 'Wait until Redis answers PONG (dataset loaded)',
  };
  return [
    {
      id: 'redis:stop',
      title: 'Stop Redis',
      doneTitle: 'Redis stopped',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: [...stopActions('Redis', svc), waitDown],
      undo: { title: 'Start Redis', actions: [...startActions('Redis', svc), waitUp] },
    },
    {
      id: 'redis:safety-copy',
      title: 'Move the current Redis files aside',
      doneTitle: 'Redis files moved aside',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: true,
      destroys: `nothing: ${files.map((f) => f.path).join(' and ')} are moved aside (kept)`,
      safetyCopy: {
        component: 'redis',
        kind: 'move',
        location: files.map((f) => f.aside).join(', '),
        description: 'the RDB and AOF files as they were, renamed with .pre_restore_' + stamp,
      },
      actions: redis.safetyMoveActions(t, layout, stamp),
      // Redis is stopped first (a no-op when the start's undo already did): a running Redis would
      // rewrite the AOF it has open, and the pasted manual form must say so too.
      undo: {
        title: 'Put the previous Redis files back',
        actions: [...stopActions('Redis', svc), waitDown, ...redis.safetyMoveBackActions(t, layout, stamp)],
      },
    },
    {
      id: 'redis:place',
      title: layout.appendonly ? 'Put the backup RDB in place (as RDB and AOF base)' : 'Put the backup RDB in place',
      doneTitle: 'Backup RDB put in place',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: redis.placeActions(t, layout, comp.path),
      undo: { title: 'Remove the restored Redis files', actions: redis.removePlacedActions(t, layout) },
    },
    {
      id: 'redis:start',
      title: 'Start Redis',
      doneTitle: 'Redis started',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: [...startActions('Redis', svc), waitUp],
      undo: { title: 'Stop Redis', actions: [...stopActions('Redis', svc), waitDown, ...redis.recordPlacedActions(t, layout)] },
    },
    {
      id: 'redis:verify-keys',
      title: 'Count the restored Redis keys',
      doneTitle: 'Redis keys counted',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: [
        {
          type: 'check',
          check: redis.keyCountCheck(backupKeys),
          purpose:
            backupKeys === undefined
              ? 'Keys in every database (the backup key count is unknown)'
              : `Keys in every database: the backup has ${backupKeys}; fewer is reported (expired TTLs), none fails`,
        },
      ],
    },
  ];
}
