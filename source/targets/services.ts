import type { PlannedAction, PlannedCommand } from '../actions/types.js';
import type { AppService, ServiceControl } from '../recipe/schema.js';

/**
 * Stopping and starting services with the recipe's own argv (run on the host: `systemctl`,
 * `docker stop`, `docker compose stop`, ...), and waiting until each is really stopped/running.
 */

type Controlled = Pick<ServiceControl, 'stop' | 'start' | 'status' | 'timeoutSeconds'>;

function cmd(argv: string[], purpose: string, timeoutSeconds: number): PlannedCommand {
  return { argv: [...argv], purpose, runsIn: 'host', timeoutSeconds };
}

export function stopActions(name: string, svc: Controlled): PlannedAction[] {
  const actions: PlannedAction[] = [{ type: 'exec', ...cmd(svc.stop, `Stop ${name}`, svc.timeoutSeconds) }];
  if (svc.status) {
    actions.push({
      type: 'wait-command',
      command: cmd(svc.status, `Status of ${name} (non-zero when stopped)`, Math.min(30, svc.timeoutSeconds)),
      untilExit: 'non-zero',
      timeoutSeconds: svc.timeoutSeconds,
      purpose: `Wait until ${name} is stopped`,
    });
  }
  return actions;
}

export function startActions(name: string, svc: Controlled): PlannedAction[] {
  const actions: PlannedAction[] = [{ type: 'exec', ...cmd(svc.start, `Start ${name}`, svc.timeoutSeconds) }];
  if (svc.status) {
    actions.push({
      type: 'wait-command',
      command: cmd(svc.status, `Status of ${name} (zero when running)`, Math.min(30, svc.timeoutSeconds)),
      untilExit: 'zero',
      timeoutSeconds: svc.timeoutSeconds,
      purpose: `Wait until ${name} is running`,
    });
  }
  return actions;
}

export function appServiceControl(svc: AppService): Controlled {
  return { stop: svc.stop, start: svc.start, ...(svc.status ? { status: svc.status } : {}), timeoutSeconds: svc.timeoutSeconds };
}
