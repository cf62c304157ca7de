// The layer rules of the import graph, checked by tests/layout/layers.test.ts (npm test) and by
// `npm run layers`. Floors are listed bottom up: a file may import from its own floor and the
// floors below it, never from one above. README.md ("How it is built") draws the same picture.

/** The Wasm core, bottom up (assembly/README.md says what each floor owns). */
const CORE_FLOORS = ['memory', 'raw', 'pymalloc', 'debug', 'objects', 'gc', 'heap', 'abi'];

/** The tools built on the library, bottom up. */
const TOOL_FLOORS = ['trace', 'race', 'threads', 'compare', 'cli'];

/** Files the tools may import from the library besides its public entry (src/index.ts). */
const LIBRARY_INTERNALS_FOR_TOOLS = ['config', 'stats', 'builds'];

function upwardRules(prefix, floors) {
  return floors.slice(0, -1).map((floor, i) => ({
    name: `${prefix}${floor}-imports-upward`,
    comment: `${prefix}${floor}/ may import only from the floors below it (${floors.slice(0, i).join(', ') || 'none'})`,
    severity: 'error',
    from: { path: `^${prefix}${floor}/` },
    to: { path: `^${prefix}(${floors.slice(i + 1).join('|')})/` },
  }));
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import circle: no file may depend on itself through others',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upwardRules('assembly/', CORE_FLOORS),
    {
      name: 'core-imports-host',
      comment: 'the Wasm core is self-contained: it imports nothing from the host, the tools or the peers',
      severity: 'error',
      from: { path: '^assembly/' },
      to: { path: '^(src|peers)/' },
    },
    {
      name: 'library-imports-tools',
      comment: 'the library (src/heap/) knows nothing of the tools built on it',
      severity: 'error',
      from: { path: '^src/heap/' },
      to: { path: '^src/(tools/|index\\.ts$)' },
    },
    {
      name: 'tools-bypass-public-entry',
      comment: `the tools use the library through src/index.ts (and ${LIBRARY_INTERNALS_FOR_TOOLS.join(', ')})`,
      severity: 'error',
      from: { path: '^src/tools/' },
      to: { path: `^src/heap/(?!(${LIBRARY_INTERNALS_FOR_TOOLS.join('|')})\\.ts$)` },
    },
    ...upwardRules('src/tools/', TOOL_FLOORS),
    {
      name: 'metrics-imports-tools',
      comment: 'pymalloc-wasm/metrics stands beside the tools: it uses the library through src/index.ts and no tool',
      severity: 'error',
      from: { path: '^src/tools/metrics/' },
      to: { path: '^src/tools/(?!metrics/)' },
    },
    {
      name: 'tools-import-metrics',
      comment: 'no tool depends on pymalloc-wasm/metrics (its prom-client stays out of the others)',
      severity: 'error',
      from: { path: '^src/tools/(?!metrics/)' },
      to: { path: '^src/tools/metrics/' },
    },
    {
      name: 'peers-import-host',
      comment: 'peer modules are Wasm: they may use the core, never the host',
      severity: 'error',
      from: { path: '^peers/' },
      to: { path: '^src/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|build)/' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs'] },
  },
};
