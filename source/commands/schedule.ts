import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createOutput } from '../output.js';
import { resolveRecipe } from '../recipe/load.js';
import { installSystemd, kubernetesManifest, planSystemd } from '../schedule/index.js';

export interface ScheduleCommandOptions {
  recipe?: string;
  systemd?: boolean;
  kubernetes?: boolean;
  every?: string;
  install?: boolean;
  unitDir?: string;
  secretsFile?: string;
  image?: string;
  namespace?: string;
  secret?: string;
  backupsClaim?: string;
  evidenceClaim?: string;
  json?: boolean;
}

/** `restore-assistant schedule`: units or a CronJob that run the recipe's drill (source/schedule/). */
export async function scheduleCommand(opts: ScheduleCommandOptions): Promise<number> {
  const out = createOutput();
  if (!opts.recipe) throw new UsageError('schedule needs --recipe NAME (or a path to a recipe file).');
  if (Boolean(opts.systemd) === Boolean(opts.kubernetes)) throw new UsageError('schedule needs exactly one of --systemd or --kubernetes.');
  const loaded = await resolveRecipe(opts.recipe);
  if (opts.kubernetes) {
    if (opts.install) throw new UsageError('--install is for --systemd; apply the manifest with kubectl apply -f -.');
    const m = await kubernetesManifest(loaded, {
      ...(opts.every ? { every: opts.every } : {}),
      ...(opts.image ? { image: opts.image } : {}),
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      ...(opts.secret ? { secretName: opts.secret } : {}),
      ...(opts.backupsClaim ? { backupsClaim: opts.backupsClaim } : {}),
      ...(opts.evidenceClaim ? { evidenceClaim: opts.evidenceClaim } : {}),
    });
    if (opts.json) out.json({ objects: m.objects, sizing: m.sizing, warnings: m.warnings });
    else out.result(m.text.trimEnd());
    for (const w of m.warnings) out.info(`Warning: ${w}`);
    return ExitCode.ok;
  }
  const plan = await planSystemd(loaded, {
    ...(opts.every ? { every: opts.every } : {}),
    ...(opts.unitDir ? { unitDir: opts.unitDir } : {}),
    ...(opts.secretsFile ? { envFile: opts.secretsFile } : {}),
  });
  if (plan.period.seconds > loaded.recipe.drill.intervalDays * 86_400) {
    out.info(
      `Warning: --every ${plan.period.text} is longer than drill.intervalDays (${loaded.recipe.drill.intervalDays}): the drill-overdue alert will fire between runs.`,
    );
  }
  if (!opts.install) {
    if (opts.json) out.json({ unitDir: plan.unitDir, envFile: plan.envFile, period: plan.period, sizing: plan.sizing, units: plan.units });
    else for (const u of plan.units) out.result(`# ${plan.unitDir}/${u.name}\n${u.content}`);
    out.info(
      `Nothing was written. Install with: restore-assistant schedule --recipe ${loaded.recipe.name} --systemd${opts.every ? ` --every ${opts.every}` : ''} --install`,
    );
    return ExitCode.ok;
  }
  const r = await installSystemd(plan, loaded);
  if (opts.json) {
    out.json({ ...r, period: plan.period, sizing: plan.sizing });
  } else {
    for (const f of r.written) out.result(`wrote ${f}`);
    out.result(
      `${r.envFile.created ? 'created' : 'kept'} ${r.envFile.path} (mode 0600${r.envFile.fixedMode ? `; was ${r.envFile.fixedMode}, fixed` : ''}): put the recipe's secrets there as NAME=value lines.`,
    );
    if (r.systemctl.ran) out.result(`enabled: ${r.systemctl.commands.map((c) => c.join(' ')).join(' && ')}`);
    else
      out.result(
        `systemd is not managing ${plan.unitDir} here; on the host run: ${r.systemctl.commands.map((c) => c.join(' ')).join(' && ')}`,
      );
  }
  return ExitCode.ok;
}
