// What a user installs: `npm pack`, installed into an empty project, must run the CLI's
// comparison on the allocators that need only npm packages and import the library by name,
// with nothing from this checkout on the path.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let project = '';

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'pymalloc-pack-'));
  // Scripts are skipped: npm test's pretest has just built what the tarball holds.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', project], { cwd: ROOT });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(project, filename)], { cwd: project });
}, 180_000);

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

describe('the packed package, installed into an empty project', () => {
  it('holds the peers, the shipped traces and the demo', async () => {
    const installed = join(project, 'node_modules', 'pymalloc-wasm');
    expect((await readdir(join(installed, 'build', 'peers'))).filter((f) => f.endsWith('.wasm'))).toEqual(
      expect.arrayContaining(['bump.wasm', 'pymalloc-3.12.wasm', 'pymalloc-3.7.wasm', 'tlsf.wasm']),
    );
    expect((await readdir(join(installed, 'traces'))).filter((f) => f.endsWith('.trace.gz')).length).toBe(7);
    expect(await readdir(join(installed, 'examples'))).toContain('demo.mjs');
  });

  it('runs npx pymalloc compare from the project', async () => {
    const { stdout } = await run(
      'npx',
      ['pymalloc', 'compare', '--workload', 'plateau', '--allocators', 'pymalloc-3.12,tlsf,bump', '--json', '--scale', '0.05', '--no-native'],
      { cwd: project },
    );
    const { results } = JSON.parse(stdout) as { results: { allocator: string; workload: string; fragmentation: number }[] };
    expect(results.map((r) => `${r.workload}/${r.allocator}`)).toEqual(['plateau/pymalloc-3.12', 'plateau/tlsf', 'plateau/bump']);
    for (const r of results) expect(r.fragmentation).toBeGreaterThanOrEqual(1);
  });

  it('runs npx pymalloc race from the project: its workers and the shared build are in the package', async () => {
    const { stdout } = await run('npx', ['pymalloc', 'race', '--ops', '1000', '--runs', '1', '--no-price', '--json'], { cwd: project });
    const { results } = JSON.parse(stdout) as { results: { mode: string; test: string; lostUpdates: number; checkPassed: boolean }[] };
    expect(results.map((r) => `${r.test}/${r.mode}`)).toEqual(['refcount', 'alloc'].flatMap((test) => ['gil', 'free-threaded', 'none'].map((mode) => `${test}/${mode}`)));
    for (const r of results.filter((x) => x.mode !== 'none')) expect(r).toMatchObject({ lostUpdates: 0, checkPassed: true });
  });

  it('runs npx pymalloc threads from the project: its workers and the free-threaded build are in the package', async () => {
    const { stdout } = await run('npx', ['pymalloc', 'threads', '--workers', '1', '--quick', '--iterations', '1000', '--objects', '10', '--json'], { cwd: project });
    const { alloc, footprint } = JSON.parse(stdout) as { alloc: { mode: string; ops: number }[]; footprint: { blocksInUse: number }[] };
    expect(alloc).toMatchObject([{ mode: 'gil', ops: 1000 }, { mode: 'free-threaded', ops: 1000 }]);
    expect(footprint.map((r) => r.blocksInUse)).toEqual([256, 256]);
  });

  it('replays a shipped trace by name', async () => {
    const { stdout } = await run('npx', ['pymalloc', 'compare', '--workload', 'trace:git-log', '--allocators', 'pymalloc-3.12', '--json', '--no-native'], { cwd: project });
    const { results } = JSON.parse(stdout) as { results: { workload: string; ops: number }[] };
    expect(results).toMatchObject([{ workload: 'trace:git-log', ops: 24537 + 276 }]);
  });

  it('builds the C peers on first use into the user\'s cache, never into the package', async () => {
    const installed = join(project, 'node_modules', 'pymalloc-wasm');
    // As after `npm ci` of a checkout without clang: the tarball then holds no C peers.
    for (const name of ['dlmalloc', 'mimalloc']) {
      await rm(join(installed, 'build', 'peers', `${name}.wasm`), { force: true });
      await rm(join(installed, 'build', 'peers', `${name}.version`), { force: true });
    }
    const cache = await mkdtemp(join(tmpdir(), 'pymalloc-cache-'));
    const env = { ...process.env, XDG_CACHE_HOME: cache, CI: 'true' };
    try {
      const { stdout, stderr } = await run(
        'npx', ['pymalloc', 'compare', '--workload', 'plateau', '--allocators', 'dlmalloc', '--scale', '0.05', '--json', '--no-native'],
        { cwd: project, env },
      );
      expect(stderr).toContain(`pymalloc: building the C peers (dlmalloc, mimalloc) on first use, into ${join(cache, 'pymalloc-wasm', 'peers')}`);
      const { results } = JSON.parse(stdout) as { results: { allocator: string; failure?: unknown }[] };
      expect(results.map((r) => [r.allocator, r.failure])).toEqual([['dlmalloc', undefined]]);
      expect(await readdir(join(cache, 'pymalloc-wasm', 'peers'))).toContain('dlmalloc.wasm');
      expect(await readdir(join(installed, 'build', 'peers'))).not.toContain('dlmalloc.wasm');
      const peers = await run('npx', ['pymalloc', 'peers'], { cwd: project, env });
      expect(peers.stdout).toMatch(new RegExp(`^dlmalloc +built +wasi-libc .* ${join(cache, 'pymalloc-wasm', 'peers', 'dlmalloc.wasm')}$`, 'm'));
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  }, 120_000);

  it('names what is missing, and how to install it, where clang is not', async () => {
    // A PATH with node alone on it.
    const bin = await mkdtemp(join(tmpdir(), 'pymalloc-bin-'));
    await symlink(process.execPath, join(bin, 'node'));
    const cli = join(project, 'node_modules', 'pymalloc-wasm', 'dist', 'tools', 'cli', 'index.js');
    const cache = await mkdtemp(join(tmpdir(), 'pymalloc-cache-'));
    try {
      const { stdout, stderr } = await run('node', [cli, 'peers'], { cwd: project, env: { PATH: bin, XDG_CACHE_HOME: cache } });
      expect(stdout).toMatch(/^dlmalloc +missing +not built/m);
      expect(stderr).toContain('clang is missing: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32');
      expect(stderr).toContain('`pymalloc peers --build`');
    } finally {
      await rm(bin, { recursive: true, force: true });
      await rm(cache, { recursive: true, force: true });
    }
  });

  it('imports pymalloc-wasm by name with plain node', async () => {
    const script = "import { Heap } from 'pymalloc-wasm'; const h = await Heap.create(); const p = h.malloc(36); console.log(h.usableSize(p));";
    const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: project });
    expect(stdout.trim()).toBe('48');
  });
});
