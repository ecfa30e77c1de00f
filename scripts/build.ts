import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';

/**
 * The one build of the shipped CLI, used by `npm run build` (into dist/), test/global-setup.ts
 * (into .test-build/<pid>/dist: the tests run what ships) and the benches (bench/build-cli.ts,
 * bench/plain-parallel.ts). The type check stays `tsc -p tsconfig.json --noEmit`.
 *
 * Layout of `<outDir>`:
 * - `bin.js`: the CLI, an esbuild bundle of source/bin.ts with code splitting, so every lazy
 *   `import()` of the sources stays a separate chunk loaded only when reached (the AWS SDK only for
 *   off-site sets, the guide's screens only for the guide, ...). Its chunks, `chunk-<hash>.js`, sit
 *   beside it in `<outDir>` itself: source/version.ts finds `../package.json` from them as it
 *   does from tsc output, and source/bundle.ts finds the separate entries below from them.
 * - `sandbox/service-ctl.js` and `demo/app.js`: separate processes (`node <file> ...`) that find
 *   themselves through import.meta.url, each one self-contained bundle without splitting (their
 *   "am I the entry" check must run in the entry file itself, not in a shared chunk).
 *
 * Why a bundle: loading hundreds of small ESM files from node_modules (ink, react, their
 * dependencies) was most of the guide's time to its first frame (docs/benchmarks.md).
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * yoga-layout (Ink's layout engine) decodes its embedded WebAssembly, a data: URI, with fetch() when
 * fetch exists, and loading Node's fetch (undici) cost ~65 ms of CPU before the guide's first frame.
 * Its own synchronous base64 path is taken instead (the one it uses where there is no fetch).
 */
const yogaWithoutFetch: Plugin = {
  name: 'yoga-without-fetch',
  setup(b) {
    b.onLoad({ filter: /[\\/]yoga-layout[\\/].*yoga-wasm-base64-esm\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const guard = /"function"\s*!=\s*typeof fetch/g;
      const patched = text.replace(guard, '!0');
      return {
        contents: patched,
        loader: 'js',
        warnings:
          patched === text
            ? [{ text: "yoga-layout: no `typeof fetch` guard found (a new version?): it may load Node's fetch before the first frame" }]
            : [],
      };
    });
  },
};

const common: BuildOptions = {
  absWorkingDir: repo,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  // Function and class names stay readable in stack traces and in `error.name` checks.
  keepNames: true,
  // React's production build (the development one checks and warns at every render).
  define: { 'process.env.NODE_ENV': '"production"' },
  // ink imports react-devtools-core only when DEV=true (not installed: it says so, as before).
  external: ['react-devtools-core'],
  // CommonJS dependencies (bundled into ESM) call require() for Node's built-in modules.
  banner: { js: "import{createRequire as __raRequire}from'node:module';const require=__raRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  plugins: [yogaWithoutFetch],
};

export interface BuiltCli {
  /** `<outDir>/bin.js`. */
  readonly bin: string;
  /** esbuild's metafile of the main bundle (which sources and packages each chunk holds). */
  readonly metafile: Metafile;
}

export interface BuildOptionsCli {
  /**
   * More entry points of the main (split) bundle, `{ 'bench/restore-child': 'bench/restore-child.ts' }`:
   * they share its chunks, so they run the same code as the CLI (the benches' engine-only runs).
   */
  readonly extraEntries?: Readonly<Record<string, string>>;
  /** false: readable output with the sources' names (for `node --cpu-prof`); default true. */
  readonly minify?: boolean;
}

/** Build the CLI into `outDir` (emptied first). */
export async function buildCli(outDir: string, opts: BuildOptionsCli = {}): Promise<BuiltCli> {
  const out = path.resolve(outDir);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const [main] = await Promise.all([
    build({
      ...common,
      entryPoints: { bin: 'source/bin.ts', ...opts.extraEntries },
      outdir: out,
      splitting: true,
      chunkNames: 'chunk-[hash]',
      define: { ...common.define, RESTORE_ASSISTANT_BUNDLE: 'true' },
      minify: opts.minify ?? true,
    }),
    build({
      ...common,
      minify: opts.minify ?? true,
      entryPoints: { 'sandbox/service-ctl': 'source/sandbox/service-ctl.ts', 'demo/app': 'source/demo/app.ts' },
      outdir: out,
      splitting: false,
    }),
  ]);
  return { bin: path.join(out, 'bin.js'), metafile: main.metafile as Metafile };
}

const invoked = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invoked) {
  // node --import tsx scripts/build.ts [OUT_DIR] [--no-minify]
  const args = process.argv.slice(2);
  const outDir = args.find((a) => !a.startsWith('--')) ?? path.join(repo, 'dist');
  buildCli(outDir, { minify: !args.includes('--no-minify') }).then(
    ({ bin }) => process.stderr.write(`built ${path.relative(process.cwd(), bin) || bin}\n`),
    (error: unknown) => {
      process.stderr.write(`build failed: ${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
