import { UsageError } from '../errors.js';

/**
 * `--every`: how often a scheduled drill runs, as both schedulers can say it exactly. systemd's
 * Persistent= needs an OnCalendar= expression (a run missed while the host was off happens at
 * boot), and a CronJob needs a cron line, so only periods both express are accepted.
 */
export interface Period {
  /** As given, normalised: 6h, 1d, 7d, 30d, 90d. */
  text: string;
  seconds: number;
  /** systemd OnCalendar= */
  onCalendar: string;
  /** Kubernetes CronJob schedule (evaluated in spec.timeZone, Etc/UTC). */
  cron: string;
  /** systemd RandomizedDelaySec=, seconds: spreads a fleet's drills without stretching the period much. */
  randomizedDelaySeconds: number;
}

const SUPPORTED = '1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d, 7d (or 1w), 30d (monthly, on the 1st), 90d (quarterly: Jan, Apr, Jul, Oct)';

export function parsePeriod(value: string): Period {
  const m = /^(\d+)\s*(h|d|w)$/.exec(value.trim().toLowerCase());
  const fail = (): never => {
    throw new UsageError(`--every ${JSON.stringify(value)} is not a period both systemd timers and CronJobs can run exactly.`, {
      next: `Use one of: ${SUPPORTED}.`,
    });
  };
  if (!m) return fail();
  const n = Number(m[1]);
  const unit = m[2];
  if (unit === 'h') {
    if (n === 24) return parsePeriod('1d');
    if (n < 1 || 24 % n !== 0) return fail();
    return {
      text: `${n}h`,
      seconds: n * 3600,
      onCalendar: n === 1 ? '*-*-* *:15:00' : `*-*-* 00/${n}:15:00`,
      cron: n === 1 ? '15 * * * *' : `15 */${n} * * *`,
      randomizedDelaySeconds: Math.round((n * 3600) / 10),
    };
  }
  const days = unit === 'w' ? n * 7 : n;
  switch (days) {
    case 1:
      return { text: '1d', seconds: 86_400, onCalendar: '*-*-* 04:30:00', cron: '30 4 * * *', randomizedDelaySeconds: 1800 };
    case 7:
      return { text: '7d', seconds: 7 * 86_400, onCalendar: 'Mon *-*-* 04:30:00', cron: '30 4 * * 1', randomizedDelaySeconds: 3600 };
    case 30:
      return { text: '30d', seconds: 30 * 86_400, onCalendar: '*-*-01 04:30:00', cron: '30 4 1 * *', randomizedDelaySeconds: 3600 };
    case 90:
      return {
        text: '90d',
        seconds: 90 * 86_400,
        onCalendar: '*-01,04,07,10-01 04:30:00',
        cron: '30 4 1 1,4,7,10 *',
        randomizedDelaySeconds: 3600,
      };
    default:
      return fail();
  }
}
