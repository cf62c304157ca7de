// The import graph keeps its floors (.dependency-cruiser.cjs): no circle anywhere in assembly/,
// src/ or peers/, no import from a floor above. The second half proves the rules can fail: a
// copy of the tree with one upward import, one circle and one library-to-tool import added
// must be refused with exactly those rules named.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TREES = ['assembly', 'src', 'peers'];
const config = createRequire(import.meta.url)(join(ROOT, '.dependency-cruiser.cjs'));

async function violations(baseDir: string): Promise<IViolation[]> {
  const { output } = await cruise(TREES, {
    ...config.options,
    baseDir,
    validate: true,
    ruleSet: { forbidden: config.forbidden },
  });
  return (output as ICruiseResult).summary.violations;
}

const describeViolation = (v: IViolation) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (circle ${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`;

describe('the import graph', () => {
  it('has no circle and no upward import', async () => {
    const found = await violations(ROOT);
    expect(found.map(describeViolation)).toEqual([]);
  });

  it('sees every layer and resolves every relative import', async () => {
    const { output } = await cruise(TREES, { ...config.options, baseDir: ROOT });
    const modules = (output as ICruiseResult).modules.map((m) => m.source);
    for (const file of ['assembly/memory/header.ts', 'assembly/abi/index.ts', 'src/index.ts', 'src/tools/cli/index.ts', 'peers/pymalloc/runtime.ts']) {
      expect(modules).toContain(file);
    }
    // Every relative import resolved to a file: an unresolved one would hide an edge from the rules.
    const unresolved = (output as ICruiseResult).modules.flatMap((m) =>
      m.dependencies.filter((d) => d.module.startsWith('.') && d.couldNotResolve).map((d) => `${m.source} -> ${d.module}`),
    );
    expect(unresolved).toEqual([]);
  });

  describe('on a copy with forbidden imports added', () => {
    let copy = '';
    afterAll(async () => {
      if (copy) await rm(copy, { recursive: true, force: true });
    });

    it('names the upward import, the circle and the library-to-tool import', async () => {
      copy = await mkdtemp(join(tmpdir(), 'layers-'));
      for (const tree of TREES) await cp(join(ROOT, tree), join(copy, tree), { recursive: true });
      const prepend = async (file: string, line: string) => {
        const path = join(copy, file);
        await writeFile(path, `${line}\n${await readFile(path, 'utf8')}`);
      };
      // The pool layer reaching up into the collector.
      await prepend('assembly/pymalloc/pool.ts', 'import { collect } from "../gc/collector";');
      // A circle inside one floor: the size classes importing the pool layer that imports them.
      await prepend('assembly/pymalloc/sizeclass.ts', 'import { poolCapacity } from "./pool";');
      // The library importing a tool.
      await prepend('src/heap/stats.ts', "import { compare } from '../tools/compare/index.js';");

      const found = (await violations(copy)).map(describeViolation);
      expect(found).toContain('assembly/pymalloc-imports-upward: assembly/pymalloc/pool.ts -> assembly/gc/collector.ts');
      expect(found.some((v) => v.startsWith('no-circular: assembly/pymalloc/'))).toBe(true);
      expect(found).toContain('library-imports-tools: src/heap/stats.ts -> src/tools/compare/index.ts');
    });
  });
});
