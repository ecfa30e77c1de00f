import path from 'node:path';
import { stringify } from 'yaml';
import type { Recipe } from '../recipe/schema.js';
import type { Period } from './period.js';
import { podResources, timeBudgetSeconds, type DrillSizing } from './sizing.js';
import { secretEnvNames } from './systemd.js';

/**
 * A ConfigMap holding the recipe and a CronJob that runs the drill from it. Secrets are referenced
 * (secretKeyRef into one Secret the operator creates), never embedded. concurrencyPolicy Forbid:
 * a drill never overlaps the previous one. No retries: a failed drill is a result, not a glitch.
 * Requests are sized from the last drill's evidence (sizing.ts).
 */

export interface KubernetesInput {
  recipe: Recipe;
  /** The recipe file's text, stored as-is in the ConfigMap. */
  recipeText: string;
  period: Period;
  sizing: DrillSizing;
  image: string;
  namespace?: string;
  /** Secret holding the recipe's *Env values under the same key names. */
  secretName: string;
  /** PersistentVolumeClaims: the backups (mounted read-only at backups.root) and the evidence. */
  backupsClaim: string;
  evidenceClaim: string;
  evidenceDir: string;
}

export const RECIPE_MOUNT = '/etc/restore-assistant';

export function kubernetesName(recipe: string): string {
  // DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters (CronJob names: 52).
  return `ra-drill-${recipe.replace(/[^a-z0-9-]/g, '-')}`.slice(0, 52).replace(/-+$/, '');
}

export function kubernetesObjects(input: KubernetesInput): Array<Record<string, unknown>> {
  const r = input.recipe;
  const name = kubernetesName(r.name);
  const labels = {
    'app.kubernetes.io/name': 'restore-assistant',
    'app.kubernetes.io/component': 'drill',
    'restore-assistant/recipe': name.slice('ra-drill-'.length),
  };
  const meta = (n: string): Record<string, unknown> => ({ name: n, ...(input.namespace ? { namespace: input.namespace } : {}), labels });
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(`${name}-recipe`),
    data: { 'recipe.yaml': input.recipeText },
  };
  const resources = podResources(input.sizing);
  const sizingNote =
    input.sizing.source === 'last-drill'
      ? `from drill ${input.sizing.runId ?? ''}: ${input.sizing.durationSeconds ?? '?'}s, set of ${input.sizing.backupBytes ?? '?'} bytes`
      : input.sizing.source === 'catalog'
        ? `no drill on record; from the newest set (${input.sizing.backupBytes ?? '?'} bytes)`
        : 'defaults: no drill on record and no backups readable where this was generated';
  const env = [
    { name: 'RESTORE_ASSISTANT_EVIDENCE_DIR', value: input.evidenceDir },
    { name: 'NO_COLOR', value: '1' },
    ...secretEnvNames(r).map((n) => ({ name: n, valueFrom: { secretKeyRef: { name: input.secretName, key: n } } })),
  ];
  const cronJob = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { ...meta(name), annotations: { 'restore-assistant/sizing': sizingNote, 'restore-assistant/every': input.period.text } },
    spec: {
      schedule: input.period.cron,
      timeZone: 'Etc/UTC',
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 5,
      jobTemplate: {
        metadata: { labels },
        spec: {
          backoffLimit: 0,
          activeDeadlineSeconds: timeBudgetSeconds(input.sizing),
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: 'Never',
              terminationGracePeriodSeconds: 120,
              containers: [
                {
                  name: 'drill',
                  image: input.image,
                  args: ['drill', '--recipe', `${RECIPE_MOUNT}/recipe.yaml`, '--backup', 'latest', '--yes'],
                  env,
                  resources,
                  securityContext: { allowPrivilegeEscalation: false },
                  volumeMounts: [
                    { name: 'recipe', mountPath: RECIPE_MOUNT, readOnly: true },
                    { name: 'backups', mountPath: path.posix.resolve(r.backups.root), readOnly: true },
                    { name: 'evidence', mountPath: input.evidenceDir },
                    { name: 'scratch', mountPath: '/tmp' },
                  ],
                },
              ],
              volumes: [
                { name: 'recipe', configMap: { name: `${name}-recipe` } },
                { name: 'backups', persistentVolumeClaim: { claimName: input.backupsClaim, readOnly: true } },
                { name: 'evidence', persistentVolumeClaim: { claimName: input.evidenceClaim } },
                { name: 'scratch', emptyDir: { sizeLimit: resources.limits['ephemeral-storage'] } },
              ],
            },
          },
        },
      },
    },
  };
  return [configMap, cronJob];
}

export function renderManifests(objects: Array<Record<string, unknown>>): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}
