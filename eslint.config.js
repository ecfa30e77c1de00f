import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

/**
 * Layer rules (docs/architecture.md, "Layout"): each folder imports only what sits below it.
 * `group` patterns are gitignore-style, matched against the import specifier.
 */
const runner = {
  group: ['**/exec/run.js', '**/exec/safe-fs.js', 'execa', 'zx', 'node:child_process', 'child_process'],
  message: 'only the runner (exec/run.ts) starts processes; this layer must not.',
};
const engine = {
  group: ['**/engine/*', '!**/engine/events.js'],
  message: 'screens render state and events; the engine is reached through session/ (GuideDeps).',
};
const above = (what, layer) => ({ group: [`**/${what}/*`], message: `${layer} sits below ${what}/ and must not import it.` });

const noCommands = above('commands', 'this layer');

/**
 * One entry per folder: flat config does not merge two `no-restricted-imports` settings for the same
 * file (the later replaces the earlier), so each folder's patterns are listed once, in full.
 */
const layers = [
  // Screens and components draw; they never run commands or reach into the engine.
  {
    files: ['source/ui/screens/**', 'source/ui/components/**'],
    patterns: [runner, engine, above('session', 'a screen'), above('probe', 'a screen')],
  },
  // The plan is pure data built from facts: no processes, no probing, no engine. (exec/context.ts,
  // which only shapes argv for docker/compose/kubectl exec, is allowed.)
  {
    files: ['source/plan/**'],
    patterns: [runner, ...['probe', 'engine', 'session', 'ui'].map((w) => above(w, 'plan/'))],
  },
  // The vocabulary and the text helpers are leaves.
  {
    files: ['source/actions/**', 'source/text/**'],
    patterns: [runner, ...['plan', 'engine', 'session', 'ui', 'probe', 'targets', 'catalog'].map((w) => above(w, 'a leaf module'))],
  },
  { files: ['source/targets/**'], patterns: ['plan', 'engine', 'session', 'ui'].map((w) => above(w, 'targets/')) },
  { files: ['source/catalog/**'], patterns: ['plan', 'engine', 'session', 'ui', 'probe'].map((w) => above(w, 'catalog/')) },
  { files: ['source/engine/**'], patterns: ['session', 'ui', 'probe'].map((w) => above(w, 'engine/')) },
  // Read-only probing runs processes (through the runner) but never the engine.
  { files: ['source/probe/**'], patterns: ['engine', 'session', 'ui'].map((w) => above(w, 'probe/')) },
  // Point-in-time recovery: its own use case beside session/ (catalog of WAL, verify, plan, run); never the screens.
  { files: ['source/pitr/**'], patterns: [above('ui', 'pitr/')] },
];

/** Nothing below session/ imports commands/ (commands parse arguments and print; they are the top). */
const allBelowCommands = ['source/**/*.{ts,tsx}'];
const notBelowCommands = ['source/commands/**', 'source/cli.tsx', 'source/bin.ts'];

function layerRules() {
  const configs = layers.map(({ files, ignores, patterns }) => ({
    files,
    ...(ignores ? { ignores } : {}),
    rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, noCommands] }] },
  }));
  const covered = layers.flatMap((l) => l.files);
  configs.unshift({
    files: allBelowCommands,
    ignores: [...notBelowCommands, ...covered],
    rules: { 'no-restricted-imports': ['error', { patterns: [noCommands] }] },
  });
  return configs;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.test-build/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    languageOptions: { parserOptions: { project: ['./tsconfig.json'], tsconfigRootDir: import.meta.dirname } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  { files: ['source/**/*.{ts,tsx}'], rules: { 'no-console': 'error' } },
  ...layerRules(),
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
