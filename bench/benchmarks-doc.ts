import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Put `section` (which starts with its own `## heading` line) into docs/benchmarks.md: it replaces
 * the section with that heading, up to the next `## `, or is appended; the file is created if missing.
 */
export async function writeBenchSection(heading: string, section: string): Promise<void> {
  const file = path.join(repo, 'docs', 'benchmarks.md');
  let doc = '# Benchmarks\n\nNumbers from `npm run bench`; they depend on the machine. None of them is a test.\n';
  try {
    doc = await readFile(file, 'utf8');
  } catch {
    // a new file
  }
  const start = doc.indexOf(`\n## ${heading}`);
  if (start === -1) doc = `${doc.replace(/\n*$/, '\n')}\n${section}`;
  else {
    const next = doc.indexOf('\n## ', start + 1);
    doc = `${doc.slice(0, start)}\n${section}${next === -1 ? '' : doc.slice(next)}`;
  }
  await writeFile(file, doc.replace(/\n{3,}/g, '\n\n'));
}
