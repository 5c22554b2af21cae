// Lint rules: the recommended sets, plus the few that catch the bugs this project cares about
// (floating promises lose errors; a forgotten await in a guard is a missed deadline), and the
// layers' import boundaries (docs/architecture.md, "Layers and boundaries").
import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const root = import.meta.dirname;

/**
 * What each layer may import besides its own folder: a path ending in `.ts` is that one module
 * (a layer's public API, or the codec files), any other path a whole folder. A file's layer is
 * the longest key that contains it.
 */
const layers = {
  'src/zk': [],
  'src/recipes': ['src/zk/index.ts'],
  'src/guard': ['src/zk/index.ts', 'src/recipes/index.ts'],
  'src/forensics': ['src/zk/jute.ts', 'src/zk/records.ts', 'src/zk/txn.ts', 'src/zk/errors.ts', 'src/zk/admin.ts'],
  'src/lab': ['src/zk', 'src/recipes', 'src/guard', 'src/forensics'],
  'src/cli': ['src'],
  // The package's root entry (src/index.ts) re-exports the public APIs a service imports.
  src: ['src/zk/index.ts', 'src/recipes/index.ts', 'src/guard/index.ts'],
};

/**
 * Single modules allowed more than their layer, because talking to what the rest of the layer
 * only reads about is their job (docs/architecture.md has the same rows). Each entry adds exactly
 * the listed modules to exactly that file:
 * - the online audit is the one place forensics talks to live servers; it opens its sessions
 *   through zk's public API, as a service would (the rest of forensics reads files and captures).
 */
const moduleAllowances = {
  'src/forensics/zkdata/online.ts': ['src/zk/index.ts'],
};

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `target` (a path from the repository root) as a relative import written in `dir`. */
function specifier(dir, target) {
  const rel = posix.relative(dir, target);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

function layerOf(dir) {
  return Object.keys(layers)
    .filter((l) => dir === l || dir.startsWith(`${l}/`))
    .sort((a, b) => b.length - a.length)[0];
}

/** The no-restricted-imports patterns for the files directly in `dir` (with `file`, for that one file). */
function boundaryPatterns(dir, file) {
  const patterns = [
    {
      // A path like ../x/../../y would hide where an import lands: relative imports are written plainly.
      regex: '^(?:\\.\\.?/)*(?:[^./][^/]*/)+\\.\\.?(?:/|$)',
      message: 'write relative imports without inner ./ or ../ segments, so the layer boundaries can be checked',
    },
  ];
  if (dir !== 'src' && !dir.startsWith('src/')) {
    patterns.push({
      regex: `^${escape(specifier(dir, 'src/cli'))}(?:/|$)`,
      message: 'nothing imports src/cli: run the command as a process instead',
    });
  }
  if (dir === 'examples' || dir.startsWith('examples/')) {
    patterns.push({
      regex: `^${escape(specifier(dir, 'src'))}(?:/|$)`,
      message: "examples import the package as users do ('zkwarden', 'zkwarden/recipes', ...), not src/",
    });
  }
  const layer = layerOf(dir);
  if (!layer) return patterns;
  patterns.push({ regex: '^zkwarden(?:/|$)', message: 'src/ imports its own modules by relative path, never the package by name' });
  const allowed = [...layers[layer], ...(file ? (moduleAllowances[file] ?? []) : [])];
  const allow = allowed.map((t) => escape(specifier(dir, t)) + (t.endsWith('.ts') ? '$' : '(?:/|$)'));
  // Climbing one level more than `dir` lies below its layer's folder leaves the layer. (The
  // root entry's folder is all of src/: it imports nothing relative but the APIs listed.)
  const depth = dir === layer ? 0 : dir.slice(layer.length + 1).split('/').length;
  const out = layer === 'src' ? '\\.\\.?/' : `(?:\\.\\./){${depth + 1}}`;
  const name = layer === 'src' ? 'src/index.ts' : layer;
  patterns.push({
    regex: `^${allow.length ? `(?!(?:${allow.join('|')}))` : ''}${out}`,
    message: `${name} may import only ${allowed.length ? allowed.join(', ') : 'its own modules'} besides its own folder (docs/architecture.md, Layers and boundaries)`,
  });
  return patterns;
}

function directories(dir) {
  const out = [dir];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.')) out.push(...directories(posix.join(dir, e.name)));
  }
  return out;
}

const checked = ['src', 'test', 'bench', 'examples', 'scripts'].filter((d) => {
  try {
    return readdirSync(join(root, d)).length >= 0;
  } catch {
    return false;
  }
});
// One config per folder (and per module allowance), so each file gets exactly one set of patterns.
const boundaries = [
  ...checked.flatMap(directories).map((dir) => ({
    files: [`${dir}/*.ts`, `${dir}/*.js`, `${dir}/*.mjs`],
    rules: { 'no-restricted-imports': ['error', { patterns: boundaryPatterns(dir) }] },
  })),
  ...Object.keys(moduleAllowances).map((file) => ({
    files: [file],
    rules: { 'no-restricted-imports': ['error', { patterns: boundaryPatterns(posix.dirname(file), file) }] },
  })),
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'lab-runs/**', '.zkwarden/**', '.notes/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: root } },
    rules: {
      // node:test's describe/it return promises the runner itself tracks.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
  ...boundaries,
);
