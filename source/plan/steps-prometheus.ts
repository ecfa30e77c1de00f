import type { PrometheusTarget } from '../recipe/schema.js';
import * as prom from '../targets/prometheus.js';
import { startActions, stopActions } from '../targets/services.js';
import type { PlannedAction } from '../actions/types.js';
import { component, type BuildPlanInput, type StepDraft } from './draft.js';

/** The Prometheus steps of a plan: stop, move the data dir aside, extract the archive, start; their undos. */

export function prometheusSteps(t: PrometheusTarget, input: BuildPlanInput, stamp: string): StepDraft[] {
  const comp = component(input.set, 'prometheus');
  const svc = t.service;
  const waitDown: PlannedAction = {
    type: 'wait-http',
    url: prom.readyUrl(t),
    until: 'down',
    timeoutSeconds: svc.timeoutSeconds,
    purpose: 'Wait until Prometheus no longer answers',
  };
  const waitUp: PlannedAction = {
    type: 'wait-http',
    url: prom.readyUrl(t),
    timeoutSeconds: Math.max(svc.timeoutSeconds, 300),
    purpose: 'Wait until Prometheus is ready (/-/ready)',
  };
  const location = prom.safetyLocation(t, stamp);
  return [
    {
      id: 'prometheus:stop',
      title: 'Stop Prometheus',
      doneTitle: 'Prometheus stopped',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: [...stopActions('Prometheus', svc), waitDown],
      undo: { title: 'Start Prometheus', actions: [...startActions('Prometheus', svc), waitUp] },
    },
    {
      id: 'prometheus:safety-copy',
      title: `Move the Prometheus data aside`,
      doneTitle: 'Prometheus data moved aside',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: true,
      destroys: `nothing: the data in ${t.dataDir} is moved to ${location} (kept)`,
      safetyCopy: { component: 'prometheus', kind: 'move', location, description: 'the Prometheus data as it was' },
      actions: prom.moveAsideActions(t, stamp),
      undo: { title: 'Put the previous Prometheus data back', actions: prom.moveBackActions(t, stamp) },
    },
    {
      id: 'prometheus:place',
      title: 'Extract the Prometheus backup',
      doneTitle: 'Prometheus backup extracted',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: prom.extractActions(t, comp.path),
      // Undone by prometheus:safety-copy's undo (the restored data is moved away there).
    },
    {
      id: 'prometheus:start',
      title: 'Start Prometheus',
      doneTitle: 'Prometheus started',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: [...startActions('Prometheus', svc), waitUp],
      undo: { title: 'Stop Prometheus', actions: [...stopActions('Prometheus', svc), waitDown] },
    },
    {
      id: 'prometheus:verify-series',
      title: 'Check the restored Prometheus series',
      doneTitle: 'Prometheus series found',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: [
        {
          type: 'check',
          check: prom.seriesCheck(input.set.time),
          purpose: `Series with samples within an hour either side of the backup (${input.set.time})`,
        },
      ],
    },
  ];
}
