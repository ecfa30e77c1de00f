import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { EventBus } from '../../source/engine/events.js';
import { createRedactor } from '../../source/exec/redact.js';
import { attachEvidence, newRunId } from '../../source/evidence/writer.js';
import { textfileName } from '../../source/metrics/export.js';
import { loadRecipeFile } from '../../source/recipe/load.js';
import { startNodeExporter, startPrometheus, type NodeExporterSandbox, type PrometheusSandbox } from '../../source/sandbox/index.js';
import { metachatTimestamp } from '../../source/sandbox/backups.js';
import { waitUntil } from '../../source/sandbox/process-utils.js';
import { runCli } from '../support/cli.js';

/**
 * The whole path, with real components: a drill run by the built CLI writes its metrics to a
 * textfile directory, Debian's node_exporter serves them, a real Prometheus scrapes it with the
 * shipped alert rules loaded, and the alerts for a failed and an overdue drill fire.
 * The overdue drill is real evidence: a successful drill recorded by the evidence writer 30 days
 * ago (the clock set back while it writes), older than the recipe's drill.intervalDays of 7.
 */

const RULES = path.resolve('recipes/alerts/restore-assistant.rules.yml');
const DAY = 86_400_000;

interface Alert {
  labels: Record<string, string>;
  state: string;
  annotations: Record<string, string>;
}

async function alerts(prom: PrometheusSandbox): Promise<Alert[]> {
  const body = (await (await fetch(`${prom.url}/api/v1/alerts`)).json()) as { data: { alerts: Alert[] } };
  return body.data.alerts;
}

describe('metrics → node_exporter → Prometheus → shipped alerts', () => {
  let base: string;
  let textfileDir: string;
  let recipeFile: string;
  let evidenceDir: string;
  let ne: NodeExporterSandbox | undefined;
  let prom: PrometheusSandbox | undefined;

  beforeAll(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'ra-metrics-alerts-'));
    textfileDir = path.join(base, 'textfile');
    evidenceDir = path.join(base, 'evidence');
    mkdirSync(textfileDir);
    // A backup job that writes garbage: a "dump" that is not one, taken a day ago.
    const root = path.join(base, 'backups');
    mkdirSync(path.join(root, 'postgres'), { recursive: true });
    writeFileSync(
      path.join(root, 'postgres', `app_${metachatTimestamp(new Date(Date.now() - DAY))}.dump`),
      'this is not a pg_dump archive\n',
    );
    recipeFile = path.join(base, 'fleet-a.yaml');
    writeFileSync(
      recipeFile,
      stringify({
        name: 'fleet-a',
        backups: { root, layout: 'metachat', database: 'app' },
        components: { postgres: { database: 'app', port: 1 } },
        objectives: { rtoMinutes: 30, rpoMinutes: 60 },
        drill: { intervalDays: 7 },
        evidence: { dir: evidenceDir },
        metrics: { textfileDir },
      }),
    );

    // The earlier, successful drill: recorded 30 days ago by the evidence writer.
    const loaded = await loadRecipeFile(recipeFile);
    const then = new Date(Date.now() - 30 * DAY);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(then);
      const bus = new EventBus();
      const runId = newRunId('drill', 'fleet-a', then);
      const handle = attachEvidence(bus, {
        evidenceDir,
        runId,
        kind: 'drill',
        recipe: { name: 'fleet-a', file: loaded.file, digest: loaded.digest },
        redact: createRedactor([]),
        objectives: loaded.recipe.objectives,
        drillIntervalDays: 7,
      });
      bus.emit({
        type: 'run-started',
        runId,
        kind: 'drill',
        operator: 'ci',
        host: 'host-a',
        toolVersion: 't',
        recipe: { name: 'fleet-a', file: loaded.file, digest: loaded.digest },
        backup: { id: 'old', time: new Date(then.getTime() - 3_600_000).toISOString(), location: root },
        confirmedAt: then.toISOString(),
      });
      vi.setSystemTime(new Date(then.getTime() + 600_000));
      bus.emit({
        type: 'run-finished',
        outcome: 'restored',
        exitCode: 0,
        rtoMs: 600_000,
        rpoMs: 3_600_000,
        safetyCopies: [],
        state: ['drill restored'],
        nextSteps: [],
      });
      await handle.close();
      expect(handle.sealed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  afterAll(async () => {
    await prom?.dispose();
    await ne?.dispose();
    rmSync(base, { recursive: true, force: true });
  });

  it("a failed drill writes the recipe's metrics atomically into the textfile directory", async () => {
    const r = await runCli(['drill', '--recipe', recipeFile, '--yes']);
    expect(r.stderr).not.toMatch(/Warning: metrics/);
    expect(r.code).toBe(3);
    const text = readFileSync(path.join(textfileDir, textfileName('fleet-a')), 'utf8');
    expect(text).toContain('restore_assistant_last_run_success{kind="drill",recipe="fleet-a"} 0\n');
    expect(text).toContain('restore_assistant_last_run_exit_code{kind="drill",recipe="fleet-a"} 3\n');
    expect(text).toContain('restore_assistant_verify_success{recipe="fleet-a"} 0\n');
    const lastSuccess = Number(/restore_assistant_last_success_timestamp_seconds\{kind="drill",recipe="fleet-a"\} (\S+)/.exec(text)?.[1]);
    expect(Date.now() / 1000 - lastSuccess).toBeGreaterThan(29 * 86_400);
    expect(text).toMatch(/restore_assistant_backup_newest_timestamp_seconds\{component="postgres",recipe="fleet-a"\} \d+/);
  });

  it('scraped through node_exporter by Prometheus with the shipped rules, the drill-failed and drill-overdue alerts fire', async () => {
    ne = await startNodeExporter({ baseDir: base, textfileDir });
    prom = await startPrometheus({ baseDir: base, extraScrapeTargets: [ne.target], ruleFiles: [RULES], scrapeIntervalSeconds: 1 });
    const wanted = [
      'RestoreAssistantDrillFailed',
      'RestoreAssistantDrillOverdue',
      'RestoreAssistantBackupTooOld',
      'RestoreAssistantVerifyFailed',
    ];
    let seen: Alert[] = [];
    const firing = await waitUntil(
      async () => {
        seen = (await alerts(prom as PrometheusSandbox)).filter((a) => a.state === 'firing' && a.labels['recipe'] === 'fleet-a');
        return wanted.every((w) => seen.some((a) => a.labels['alertname'] === w));
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(seen.map((a) => a.labels['alertname']).sort(), `alerts: ${JSON.stringify(await alerts(prom))}`).toEqual(
      expect.arrayContaining(wanted),
    );
    expect(firing).toBe(true);
    const failed = seen.find((a) => a.labels['alertname'] === 'RestoreAssistantDrillFailed');
    expect(failed?.labels).toMatchObject({ severity: 'critical', kind: 'drill', instance: ne.target });
    expect(seen.find((a) => a.labels['alertname'] === 'RestoreAssistantDrillOverdue')?.annotations['description']).toMatch(
      /restore-assistant drill --recipe fleet-a --yes/,
    );
    // The old drill's RTO (10 min) met its target (30 min): evaluated in the same rule group, it does not fire.
    expect(seen.some((a) => a.labels['alertname'] === 'RestoreAssistantRtoOverTarget')).toBe(false);
  });
});
