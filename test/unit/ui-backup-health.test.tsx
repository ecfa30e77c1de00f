import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from 'ink-testing-library';
import { initialState } from '../../source/ui/wizard.js';
import { fakeDeps, recipeFixture, setFixture } from '../support/ui-fixtures.js';
import { keys } from '../support/keys.js';
import { renderGuide } from '../support/ui-render.js';

/** The guide's backup screen shows the backup-health problem of the set under the cursor. */

afterEach(() => cleanup());

const flat = (frame: string): string => frame.replace(/\s+/g, ' ');

describe('backup screen: backup health', () => {
  it('a dump far smaller than the sets before it is named under the list; for the set before it only its missing checksum', async () => {
    const tiny = setFixture('2026-01-18_01-45-13', '2026-01-18T01:45:13.000Z');
    tiny.components = tiny.components.map((c) => (c.kind === 'postgres' ? { ...c, size: 20 } : c));
    const sets = [tiny, setFixture('2026-01-17_01-45-02', '2026-01-17T01:45:02.000Z'), setFixture('2026-01-16_01-44-58', '2026-01-16T01:44:58.000Z'), setFixture('2026-01-15_01-44-58', '2026-01-15T01:44:58.000Z')];
    const control = fakeDeps({ sets });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do');
    const f = await g.press(keys.enter, '2026-01-18 01:45Z');
    // two problems: the tiny dump, and the fixture's Prometheus file has no checksum
    expect(flat(f)).toMatch(/Health \[1 of 2, all in `list`\]: postgres is 20 B, 100% smaller than the median/);
    // the set before it is as big as the ones before it: only its missing checksum is named
    const next = await g.press(keys.down, '›');
    expect(flat(next)).not.toMatch(/smaller than the median/);
    expect(flat(next)).toMatch(/Health: no checksum recorded for prometheus/);
  });
});
