import { existsSync, realpathSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { defaultLockDir } from '../engine/lock.js';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { runChecked } from '../exec/run.js';
import { createExclusive } from '../exec/safe-fs.js';
import { type LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { kubernetesObjects, renderManifests } from './kubernetes.js';
import { parsePeriod, type Period } from './period.js';
import { lastDrillSizing, type DrillSizing } from './sizing.js';
import { envFileTemplate, systemdUnits, unitBaseName, type UnitFile } from './systemd.js';

export { parsePeriod } from './period.js';

export interface SystemdPlan {
  period: Period;
  sizing: DrillSizing;
  units: UnitFile[];
  envFile: string;
  unitDir: string;
  evidenceDir: string;
}

/** How this very tool is started again by a scheduler: node and the real path of its entry script. */
export function toolArgv(): string[] {
  const script = process.argv[1];
  if (!script) throw new Error("cannot tell the path of restore-assistant's entry script");
  return [process.execPath, realpathSync(script)];
}

export async function planSystemd(
  loaded: LoadedRecipe,
  opts: { every?: string; unitDir?: string; envFile?: string; env?: NodeJS.ProcessEnv },
): Promise<SystemdPlan> {
  const env = opts.env ?? process.env;
  const period = parsePeriod(opts.every ?? '7d');
  const sizing = await lastDrillSizing(loaded, env);
  const evidence = evidenceDir(loaded.recipe, env);
  const envFile = path.resolve(opts.envFile ?? `/etc/restore-assistant/${loaded.recipe.name}.env`);
  const units = systemdUnits({
    recipe: loaded.recipe,
    recipeFile: loaded.file,
    tool: toolArgv(),
    period,
    sizing,
    evidenceDir: evidence,
    // The machine-wide lock dir the scheduled drill (root, under systemd) shares with interactive runs.
    lockDir: realLockDir(defaultLockDir({})),
    envFile,
  });
  return { period, sizing, units, envFile, unitDir: path.resolve(opts.unitDir ?? '/etc/systemd/system'), evidenceDir: evidence };
}

function realLockDir(dir: string): string {
  try {
    return path.join(realpathSync(path.dirname(dir)), path.basename(dir));
  } catch {
    return dir;
  }
}

/** Replace a file atomically: exclusive no-follow temp file in the same directory, then rename. */
async function writeFileAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const h = await createExclusive(tmp, mode);
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  try {
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

export interface InstallResult {
  written: string[];
  envFile: { path: string; created: boolean; fixedMode?: string };
  /** systemctl commands run, or to run by hand when systemd is not running here. */
  systemctl: { ran: boolean; commands: string[][] };
}

/** Write the units and the EnvironmentFile (0600, created empty of values), then enable the timer. */
export async function installSystemd(plan: SystemdPlan, recipe: LoadedRecipe, opts: { systemctl?: boolean } = {}): Promise<InstallResult> {
  await mkdir(plan.unitDir, { recursive: true, mode: 0o755 });
  // ReadWritePaths= must exist when the unit starts: the evidence directory is made now.
  await mkdir(plan.evidenceDir, { recursive: true, mode: 0o750 });
  const written: string[] = [];
  for (const u of plan.units) {
    const file = path.join(plan.unitDir, u.name);
    await writeFileAtomic(file, u.content, 0o644);
    written.push(file);
  }
  await mkdir(path.dirname(plan.envFile), { recursive: true, mode: 0o700 });
  let created = false;
  let fixedMode: string | undefined;
  const st = await lstat(plan.envFile).catch(() => undefined);
  if (!st) {
    const h = await createExclusive(plan.envFile, 0o600);
    try {
      await h.writeFile(envFileTemplate(recipe.recipe));
    } finally {
      await h.close();
    }
    created = true;
  } else {
    if (!st.isFile() || st.isSymbolicLink()) {
      throw new RestoreAssistantError(`${plan.envFile} exists and is not a regular file.`, ExitCode.usage, {
        untouched: `The unit files were written (${written.join(', ')}); the timer was not enabled.`,
        next: `Remove it or pass --secrets-file PATH, then run schedule --install again.`,
      });
    }
    if ((st.mode & 0o077) !== 0) {
      fixedMode = (st.mode & 0o777).toString(8);
      await chmod(plan.envFile, 0o600);
    }
  }
  const timer = plan.units.find((u) => u.name.endsWith('.timer'))?.name ?? `${unitBaseName(recipe.recipe.name)}.timer`;
  const commands = [
    ['systemctl', 'daemon-reload'],
    ['systemctl', 'enable', '--now', timer],
  ];
  const systemdRunning = existsSync('/run/systemd/system') && plan.unitDir === '/etc/systemd/system';
  if (opts.systemctl !== false && systemdRunning) {
    for (const argv of commands) await runChecked(argv, { timeoutMs: 60_000 });
    return { written, envFile: { path: plan.envFile, created, ...(fixedMode ? { fixedMode } : {}) }, systemctl: { ran: true, commands } };
  }
  return { written, envFile: { path: plan.envFile, created, ...(fixedMode ? { fixedMode } : {}) }, systemctl: { ran: false, commands } };
}

export interface KubernetesOptions {
  every?: string;
  image?: string;
  namespace?: string;
  secretName?: string;
  backupsClaim?: string;
  evidenceClaim?: string;
  env?: NodeJS.ProcessEnv;
}

export async function kubernetesManifest(
  loaded: LoadedRecipe,
  opts: KubernetesOptions,
): Promise<{ text: string; objects: Array<Record<string, unknown>>; sizing: DrillSizing; warnings: string[] }> {
  if (!opts.image)
    throw new UsageError(
      '--kubernetes needs --image IMAGE: the container image with restore-assistant and the PostgreSQL/Redis/Prometheus binaries (scripts/setup.sh installs them).',
    );
  const r = loaded.recipe;
  const period = parsePeriod(opts.every ?? '7d');
  const sizing = await lastDrillSizing(loaded, opts.env ?? process.env);
  const warnings: string[] = [];
  if (!r.metrics.pushgateway)
    warnings.push(
      `${r.name}: the recipe has no metrics.pushgateway; a pod's textfile is read by no node_exporter, so its drills reach Prometheus only through a Pushgateway.`,
    );
  if (period.seconds > r.drill.intervalDays * 86_400)
    warnings.push(
      `${r.name}: --every ${period.text} is longer than drill.intervalDays (${r.drill.intervalDays}): the drill-overdue alert will fire between runs.`,
    );
  const evidence = r.evidence.dir ? path.posix.resolve(r.evidence.dir) : '/var/lib/restore-assistant/runs';
  const recipeText = await readFile(loaded.file, 'utf8');
  const base = `restore-assistant-${r.name}`;
  const objects = kubernetesObjects({
    recipe: r,
    recipeText,
    period,
    sizing,
    image: opts.image,
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    secretName: opts.secretName ?? base,
    backupsClaim: opts.backupsClaim ?? `${base}-backups`,
    evidenceClaim: opts.evidenceClaim ?? `${base}-evidence`,
    evidenceDir: evidence,
  });
  return { text: renderManifests(objects), objects, sizing, warnings };
}
