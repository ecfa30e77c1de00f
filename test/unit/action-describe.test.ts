import { describe, expect, it } from 'vitest';
import { displayAction, displayActionLine, pasteableAction } from '../../source/actions/describe.js';
import type { PlannedAction } from '../../source/actions/types.js';
import { createRedactor } from '../../source/exec/redact.js';
import { shellQuote } from '../../source/text/shell.js';

const stopRedis: PlannedAction = {
  type: 'wait-tcp',
  host: '127.0.0.1',
  port: 6379,
  timeoutSeconds: 30,
  purpose: 'wait until Redis has stopped',
  until: 'down',
};
const stopPrometheus: PlannedAction = {
  type: 'wait-http',
  url: 'http://127.0.0.1:9090/-/ready',
  timeoutSeconds: 30,
  purpose: 'wait until Prometheus has stopped',
  until: 'down',
};

describe('one describer: the plan text, the plan screen and the manual steps say the same thing', () => {
  it('a stop waits for the port to refuse, in every form (the screen once said "to accept")', () => {
    expect(displayAction(stopRedis)).toBe('wait until Redis has stopped (tcp 127.0.0.1:6379 refusing, up to 30s)');
    expect(displayActionLine(stopRedis)).toBe(displayAction(stopRedis));
    expect(displayActionLine(stopRedis)).not.toMatch(/accept/);
    expect(pasteableAction(stopRedis, createRedactor())).toBe(
      '# wait until 127.0.0.1:6379 refuses connections (wait until Redis has stopped)',
    );
  });

  it('an HTTP stop waits until the URL no longer answers', () => {
    expect(displayActionLine(stopPrometheus)).toBe(
      'wait until Prometheus has stopped (http://127.0.0.1:9090/-/ready not answering, up to 30s)',
    );
    expect(displayActionLine({ ...stopPrometheus, until: 'up' })).toContain('/-/ready answering');
    expect(pasteableAction(stopPrometheus, createRedactor())).toContain('no longer answers');
  });

  it('a command: the text plan shows what it does and then the command; the screen line is the command', () => {
    const exec: PlannedAction = {
      type: 'exec',
      argv: ['psql', '-d', 'my db'],
      purpose: 'load the dump',
      runsIn: 'host',
      input: { file: '/b/d.sql.gz', gunzip: true },
      envFrom: { PGPASSWORD: 'PW' },
    };
    const line = `$ psql -d 'my db' < /b/d.sql.gz (gunzip in-process) [env: PGPASSWORD from $PW]  (host)`;
    expect(displayAction(exec)).toBe(`load the dump\n      ${line}`);
    expect(displayActionLine(exec)).toBe(line);
  });

  it('one shell quoter: plain words stay bare, anything else is single-quoted', () => {
    expect(shellQuote('/var/lib/redis')).toBe('/var/lib/redis');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
  });
});
