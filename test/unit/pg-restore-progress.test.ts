import { describe, expect, it } from 'vitest';
import { PgRestoreItemCounter } from '../../source/engine/streams.js';

/**
 * pg_restore --verbose progress counts each TOC entry once (issue 12: "125 of 125 items" three
 * times, then a detail of "168"). The lines are pg_restore 15's own, captured from a restore of
 * the seeded shop database with --jobs 2 (and --jobs 1).
 */

const parallel = [
  'pg_restore: connecting to database for restore',
  'pg_restore: processing item 3405 ENCODING ENCODING',
  'pg_restore: processing item 3406 STDSTRINGS STDSTRINGS',
  'pg_restore: processing item 3407 SEARCHPATH SEARCHPATH',
  'pg_restore: processing item 3408 DATABASE shop',
  'pg_restore: processing item 6 SCHEMA app',
  'pg_restore: creating SCHEMA "app"',
  'pg_restore: processing item 849 TYPE story_status',
  'pg_restore: creating TYPE "app.story_status"',
  'pg_restore: processing item 3223 DEFAULT users id',
  'pg_restore: creating DEFAULT "app.users id"',
  'pg_restore: entering main parallel loop',
  'pg_restore: launching item 3396 TABLE DATA users',
  'pg_restore: launching item 3398 TABLE DATA stories',
  'pg_restore: processing data for table "app.stories"',
  'pg_restore: processing data for table "app.users"',
  'pg_restore: finished item 3398 TABLE DATA stories',
  'pg_restore: launching item 3239 INDEX stories_author_status_idx',
  'pg_restore: creating INDEX "app.stories_author_status_idx"',
  'pg_restore: finished item 3396 TABLE DATA users',
  'pg_restore: finished item 3239 INDEX stories_author_status_idx',
  'pg_restore: finished main parallel loop',
  'pg_restore: processing missed item 3250 ACL SCHEMA app',
];

describe('PgRestoreItemCounter', () => {
  it('--jobs 2: each entry once, by dump id; the header entries --list does not show are not counted', () => {
    const c = new PgRestoreItemCounter();
    const rises = parallel.filter((l) => c.line(l)).length;
    // SCHEMA app, TYPE, DEFAULT, 2 × TABLE DATA, INDEX, the missed ACL: 7 entries, each counted once.
    expect(c.count).toBe(7);
    expect(rises).toBe(7);
  });

  it('--jobs 1 (no ids logged): one entry per creating / processing data / executing line', () => {
    const c = new PgRestoreItemCounter();
    for (const l of [
      'pg_restore: connecting to database for restore',
      'pg_restore: creating SCHEMA "app"',
      'pg_restore: creating TABLE "app.users"',
      'pg_restore: processing data for table "app.users"',
      'pg_restore: executing SEQUENCE SET users_id_seq',
      'pg_restore: error: could not execute query',
    ])
      c.line(l);
    expect(c.count).toBe(4);
  });

  it('a dump line that only looks like pg_restore output on stdout is the caller’s to skip; a repeated id is not recounted', () => {
    const c = new PgRestoreItemCounter();
    c.line('pg_restore: launching item 10 TABLE DATA t');
    c.line('pg_restore: launching item 10 TABLE DATA t');
    c.line('pg_restore: creating TABLE "x"');
    expect(c.count).toBe(1);
  });
});
