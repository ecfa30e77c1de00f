import path from 'node:path';
import { COMPONENT_KINDS } from '../catalog/types.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { Plan } from '../plan/types.js';
import type { PlannedAction } from '../actions/types.js';
import type { Check, ExecContext, Recipe } from '../recipe/schema.js';

/**
 * Drills restore into scratch targets only. The drill recipe is built from the sandbox alone
 * (nothing of the real recipe's connection details is copied), and the built plan is then checked
 * action by action: every host, port, URL and path it names must belong to the sandbox. A plan
 * that names anything else is refused before the engine sees it.
 */

export interface DrillSandbox {
  /** Every directory the sandbox owns; all files a drill touches live below one of them. */
  rootDirs: string[];
  /** Scratch containers (drills of container recipes): the only ones a drill's docker commands may name. */
  containers?: string[];
  /** The production containers (names and ids): a drill's plan must never name them. */
  realContainers?: string[];
  postgres?: { host: string; port: number; user: string; passwordEnv: string; socketDir?: string; exec?: ExecContext };
  redis?: {
    host: string;
    port: number;
    dir: string;
    dbfilename: string;
    appendonly: boolean;
    appenddirname: string;
    passwordEnv?: string;
    service: { stop: string[]; start: string[]; status?: string[] };
    exec?: ExecContext;
  };
  prometheus?: { url: string; dataDir: string; service: { stop: string[]; start: string[] }; exec?: ExecContext };
}

/** Check kinds that can be pointed at scratch targets; the others would reach real systems. */
const drillableCheck = (c: Check): boolean => 'sql' in c || 'redis' in c || 'promql' in c;

export interface DrillRecipeResult {
  recipe: Recipe;
  /** Checks of the real recipe that a drill cannot run (http/tcp/command reach real systems). */
  skippedChecks: string[];
}

/** The recipe a drill runs: the real recipe's names, database and checks; the sandbox's targets. */
export function drillRecipe(real: Recipe, sandbox: DrillSandbox): DrillRecipeResult {
  const skippedChecks: string[] = [];
  const checks = real.checks.filter((c) => {
    if (!c.when.includes('drill')) return false;
    if (!drillableCheck(c)) {
      skippedChecks.push(
        `${c.name}: ${Object.keys(c).find((k) => ['http', 'tcp', 'command'].includes(k)) ?? 'this'} checks reach real systems; not run in a drill`,
      );
      return false;
    }
    return true;
  });
  const components: Recipe['components'] = {};
  if (real.components.postgres && sandbox.postgres) {
    const p = real.components.postgres;
    components.postgres = {
      exec: sandbox.postgres.exec ?? { kind: 'host' },
      host: sandbox.postgres.host,
      port: sandbox.postgres.port,
      user: sandbox.postgres.user,
      passwordEnv: sandbox.postgres.passwordEnv,
      database: p.database,
      maintenanceDatabase: 'postgres',
      owner: sandbox.postgres.user,
      encoding: p.encoding,
      template: 'template0',
      // A scratch cluster: nothing to keep, and the roles a dump needs can be created freely.
      safetyCopy: 'none',
      missingRoles: 'create',
      ...(p.jobs ? { jobs: p.jobs } : {}),
    };
  }
  if (real.components.redis && sandbox.redis) {
    const r = sandbox.redis;
    components.redis = {
      exec: r.exec ?? { kind: 'host' },
      host: r.host,
      port: r.port,
      ...(r.passwordEnv ? { passwordEnv: r.passwordEnv } : {}),
      dataDir: r.dir,
      dbfilename: r.dbfilename,
      appendonly: r.appendonly,
      appenddirname: r.appenddirname,
      service: { ...r.service, timeoutSeconds: 60 },
    };
  }
  if (real.components.prometheus && sandbox.prometheus) {
    components.prometheus = {
      exec: sandbox.prometheus.exec ?? { kind: 'host' },
      url: sandbox.prometheus.url,
      dataDir: sandbox.prometheus.dataDir,
      service: { ...sandbox.prometheus.service, timeoutSeconds: 60 },
    };
  }
  return {
    recipe: {
      ...real,
      components,
      services: [],
      checks,
      parallel: real.parallel,
    },
    skippedChecks,
  };
}

function under(p: string, roots: string[]): boolean {
  const abs = path.resolve(p);
  return roots.some((r) => {
    const root = path.resolve(r);
    return abs === root || abs.startsWith(`${root}${path.sep}`);
  });
}

const HOST_FLAGS = new Set(['-h', '--host']);
const PORT_FLAGS = new Set(['-p', '--port']);

/** Every problem that makes a plan unfit for a drill (empty: isolated). */
export function isolationProblems(plan: Plan, sandbox: DrillSandbox, real: Recipe): string[] {
  const problems: string[] = [];
  const ports = new Set<number>(
    [sandbox.postgres?.port, sandbox.redis?.port, sandbox.prometheus ? Number(new URL(sandbox.prometheus.url).port) : undefined].filter(
      (p): p is number => typeof p === 'number',
    ),
  );
  const hosts = new Set<string>(['127.0.0.1', 'localhost', '::1', sandbox.postgres?.socketDir].filter((h): h is string => Boolean(h)));
  const forbidden = new Set<string>();
  const rp = real.components;
  // Host paths of the real targets. Paths inside a real container are that container's: a scratch
  // container has its own at the same place (the container names are what is checked then).
  if (rp.redis?.dataDir && rp.redis.exec.kind === 'host') forbidden.add(path.resolve(rp.redis.dataDir));
  if (rp.prometheus?.dataDir && rp.prometheus.exec.kind === 'host') forbidden.add(path.resolve(rp.prometheus.dataDir));
  const scratchContainers = new Set(sandbox.containers ?? []);
  const realContainers = new Set(sandbox.realContainers ?? []);
  for (const k of COMPONENT_KINDS) {
    const e = rp[k]?.exec;
    if (e && e.kind !== 'host') realContainers.add(e.container);
  }
  /** The container an argument names: NAME, NAME:/path (docker cp). */
  const containerOf = (a: string): string => (/^[A-Za-z0-9][A-Za-z0-9_.-]*:\//.test(a) ? a.slice(0, a.indexOf(':')) : a);
  for (const s of real.services) for (const a of [s.stop, s.start, s.status ?? []]) if (a.length > 0) forbidden.add(a.join('\u0000'));
  if (plan.mode !== 'drill') problems.push(`plan mode is "${plan.mode}", not "drill"`);

  const checkArgv = (where: string, argv: string[]): void => {
    const prog = path.basename(argv[0] ?? '');
    if (prog === 'docker' && scratchContainers.size > 0) {
      // Only commands that name a scratch container, and none that names a real one.
      const named = argv.slice(1).map(containerOf);
      const real = named.find((a) => realContainers.has(a));
      if (real) problems.push(`${where}: names the real container ${real}`);
      if (!named.some((a) => scratchContainers.has(a))) problems.push(`${where}: runs docker without naming a scratch container`);
    } else if (['docker', 'docker-compose', 'podman', 'systemctl', 'service', 'kubectl', 'ssh'].includes(prog))
      problems.push(`${where}: runs ${prog}, which reaches real systems`);
    if (forbidden.has(argv.join('\u0000'))) problems.push(`${where}: runs a real service command (${argv.join(' ')})`);
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i] ?? '';
      const next = argv[i + 1];
      if (HOST_FLAGS.has(a) && next !== undefined && !hosts.has(next)) problems.push(`${where}: host ${next} is not the sandbox's`);
      if (PORT_FLAGS.has(a) && next !== undefined && !ports.has(Number(next)))
        problems.push(`${where}: port ${next} is not a sandbox port`);
      const eq = /^--(host|port)=(.*)$/.exec(a);
      if (eq?.[1] === 'host' && !hosts.has(eq[2] ?? '')) problems.push(`${where}: host ${eq[2]} is not the sandbox's`);
      if (eq?.[1] === 'port' && !ports.has(Number(eq[2]))) problems.push(`${where}: port ${eq[2]} is not a sandbox port`);
      const url = /^https?:\/\/[^\s/]+/.exec(a);
      if (url && !ports.has(Number(new URL(url[0]).port))) problems.push(`${where}: URL ${a} is not the sandbox's`);
      if (a.startsWith('/') && [...forbidden].some((f) => f.startsWith('/') && under(a, [f])))
        problems.push(`${where}: path ${a} belongs to a real target`);
    }
  };

  const checkAction = (where: string, action: PlannedAction): void => {
    switch (action.type) {
      case 'exec':
        checkArgv(where, action.argv);
        if (action.input && !under(action.input.file, [...sandbox.rootDirs, plan.backup.location])) {
          // Reading the backup is fine; anything else is not.
          problems.push(`${where}: reads ${action.input.file}, outside the backup set and the sandbox`);
        }
        break;
      case 'wait-tcp':
        if (!ports.has(action.port) || !hosts.has(action.host))
          problems.push(`${where}: waits on ${action.host}:${action.port}, not a sandbox port`);
        break;
      case 'wait-http':
        if (!ports.has(Number(new URL(action.url).port))) problems.push(`${where}: polls ${action.url}, not the sandbox's`);
        break;
      case 'wait-command':
        checkArgv(where, action.command.argv);
        break;
      case 'extract-tar':
        if (!under(action.dest, sandbox.rootDirs)) problems.push(`${where}: extracts into ${action.dest}, outside the sandbox`);
        break;
      case 'move':
        for (const p of [action.from, action.to, ...(action.displaceTo ? [action.displaceTo] : [])])
          if (!under(p, sandbox.rootDirs)) problems.push(`${where}: moves ${p}, outside the sandbox`);
        break;
      case 'copy-file':
        if (!under(action.to, sandbox.rootDirs)) problems.push(`${where}: writes ${action.to}, outside the sandbox`);
        break;
      case 'install-aof':
        if (!under(action.dir, sandbox.rootDirs)) problems.push(`${where}: writes ${action.dir}, outside the sandbox`);
        break;
      case 'write-file':
        if (!under(action.path, sandbox.rootDirs)) problems.push(`${where}: writes ${action.path}, outside the sandbox`);
        break;
      case 'follow-recovery':
        checkArgv(where, action.command.argv);
        break;
      case 'remove':
        for (const x of action.paths)
          if (!under(x.path, sandbox.rootDirs)) problems.push(`${where}: removes ${x.path}, outside the sandbox`);
        break;
      case 'record-identity':
        break;
      case 'check': {
        const c = action.check;
        if (!drillableCheck(c)) problems.push(`${where}: check "${c.name}" would reach a real system`);
        if ('promql' in c && !ports.has(Number(new URL(sandbox.prometheus?.url ?? 'http://x:0').port)))
          problems.push(`${where}: promql check without a sandbox Prometheus`);
        break;
      }
      case 'note':
        break;
    }
  };

  for (const step of plan.steps) {
    if (step.component === 'services') problems.push(`step ${step.id}: drills never stop or start application services`);
    step.actions.forEach((a, i) => checkAction(`step ${step.id} action ${i + 1}`, a));
    step.undo?.actions.forEach((a, i) => checkAction(`step ${step.id} undo ${i + 1}`, a));
  }
  return [...new Set(problems)];
}

/** Throws unless every action of the plan addresses the sandbox only. */
export function assertDrillIsolation(plan: Plan, sandbox: DrillSandbox, real: Recipe): void {
  const problems = isolationProblems(plan, sandbox, real);
  if (problems.length > 0) {
    throw new RestoreAssistantError('Refusing to run the drill: its plan reaches beyond the scratch targets.', ExitCode.internal, {
      problems,
      untouched: 'Nothing was run; the real targets were not contacted.',
      next: 'This is a bug in restore-assistant: report it with the plan (restore-assistant plan --json).',
    });
  }
}
