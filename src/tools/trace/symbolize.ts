// Symbolizing call sites after recording: each site's module-relative address becomes a function
// and file:line with binutils' addr2line, run once per module on all of its addresses.
//
//     site: 0x1184 in /tmp/prog ──+ base of /tmp/prog's first PT_LOAD──> ELF address 0x1184
//        ──- 1 (a return address points past the call)──> addr2line -f -C -e /tmp/prog
//        ──> keep_blocks, /tmp/prog.c:9
//
// Tricky: mtrace prints the caller relative to the module's lowest mapped address (dladdr's
// dli_fbase), not to its load bias. For a PIE program or a shared object the two agree (their
// first segment is at 0); a program linked at a fixed address (-no-pie) starts at 0x400000, so
// the ELF address is the printed one plus the page-aligned address of the first PT_LOAD segment.
//
// A site that cannot be symbolized keeps its raw module and address, with the reason: the
// module is not known (an address outside any mapped file), its file is not found (it was
// removed, or recorded on another machine), it is not an ELF file addr2line reads, or it has no
// debug info (then the dynamic symbol mtrace saw is shown, if any).

import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';

import type { CallSite } from './format.js';

/** What is known of where a site is. */
export interface SymbolizedSite {
  /** The function, when addr2line or mtrace named one. */
  function?: string;
  /** The source file and line, when the module has debug info. */
  file?: string;
  line?: number;
  /** Why there is no file:line, when there is none. */
  problem?: string;
}

const ADDR2LINE = 'addr2line';
const PAGE_SIZE = 4096n;
const PT_LOAD = 1;
const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const;

/** The page-aligned address of an ELF file's first PT_LOAD segment, or a reason it has none. */
async function loadBase(path: string): Promise<bigint | string> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `binary not found: ${path}` : `cannot read ${path}: ${(error as Error).message}`;
  }
  try {
    const header = Buffer.alloc(64);
    await file.read(header, 0, 64, 0);
    if (ELF_MAGIC.some((byte, i) => header[i] !== byte)) return `not an ELF file: ${path}`;
    if (header[5] !== 1) return `not a little-endian ELF file: ${path}`;
    const is64 = header[4] === 2;
    const tableOffset = is64 ? Number(header.readBigUInt64LE(0x20)) : header.readUInt32LE(0x1c);
    const entrySize = header.readUInt16LE(is64 ? 0x36 : 0x2a);
    const entries = header.readUInt16LE(is64 ? 0x38 : 0x2c);
    const table = Buffer.alloc(entrySize * entries);
    await file.read(table, 0, table.length, tableOffset);
    let lowest: bigint | undefined;
    for (let at = 0; at + entrySize <= table.length; at += entrySize) {
      if (table.readUInt32LE(at) !== PT_LOAD) continue;
      const address = is64 ? table.readBigUInt64LE(at + 0x10) : BigInt(table.readUInt32LE(at + 0x08));
      if (lowest === undefined || address < lowest) lowest = address;
    }
    if (lowest === undefined) return `no loadable segment in ${path}`;
    return lowest - (lowest % PAGE_SIZE);
  } finally {
    await file.close();
  }
}

/** addr2line's answers for the addresses, in order: [function, file:line] pairs. */
function addr2line(module: string, addresses: readonly string[]): Promise<[string, string][] | string> {
  return new Promise((resolve) => {
    const child = execFile(ADDR2LINE, ['-f', '-C', '-e', module], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => {
      if (error !== null) {
        const code = (error as NodeJS.ErrnoException).code;
        resolve(code === 'ENOENT' ? `${ADDR2LINE} not found in PATH (Debian, Ubuntu: apt-get install binutils)` : `${ADDR2LINE} failed on ${module}: ${error.message.trim()}`);
        return;
      }
      const lines = stdout.split('\n');
      resolve(addresses.map((_, i) => [lines[2 * i] ?? '??', lines[2 * i + 1] ?? '??:0']));
    });
    child.stdin!.on('error', () => {}); // addr2line exiting early is reported by its exit status
    child.stdin!.end(`${addresses.join('\n')}\n`);
  });
}

/** "/src/prog.c:9 (discriminator 3)" -> file and line; undefined for "??:0" and "??:?". */
function parseLocation(text: string): { file: string; line: number } | undefined {
  const match = /^(.*):(\d+)(?: \(discriminator \d+\))?$/.exec(text.trim());
  if (match === null || match[1] === '??' || match[2] === '0') return undefined;
  return { file: match[1]!, line: Number(match[2]) };
}

/** The name mtrace saw ("__strdup+1a"), without its offset. */
function dynamicSymbol(site: CallSite): string | undefined {
  const name = site.symbol.replace(/[+-](0x)?[0-9a-f]+$/, '');
  return name === '' ? undefined : name;
}

function unsymbolized(site: CallSite, problem: string): SymbolizedSite {
  const name = dynamicSymbol(site);
  return name === undefined ? { problem } : { function: name, problem };
}

/** Symbolizes sites, by id. Never throws for a site: what fails is said in `problem`. */
export async function symbolizeSites(sites: readonly CallSite[]): Promise<Map<number, SymbolizedSite>> {
  const result = new Map<number, SymbolizedSite>();
  const byModule = new Map<string, CallSite[]>();
  for (const site of sites) {
    if (site.module === '') {
      result.set(site.id, unsymbolized(site, 'the address is in no module mtrace knew (no file mapped there)'));
      continue;
    }
    const list = byModule.get(site.module) ?? [];
    list.push(site);
    byModule.set(site.module, list);
  }
  await Promise.all(
    [...byModule].map(async ([module, moduleSites]) => {
      const base = await loadBase(module);
      if (typeof base === 'string') {
        for (const site of moduleSites) result.set(site.id, unsymbolized(site, base));
        return;
      }
      // The address of the call instruction's last byte: its line, not the next statement's.
      const addresses = moduleSites.map((site) => `0x${(base + BigInt(site.address) - 1n).toString(16)}`);
      const answers = await addr2line(module, addresses);
      moduleSites.forEach((site, i) => {
        if (typeof answers === 'string') {
          result.set(site.id, unsymbolized(site, answers));
          return;
        }
        const [name, where] = answers[i]!;
        const location = parseLocation(where);
        const fn = name !== '??' ? name : dynamicSymbol(site);
        if (location !== undefined) result.set(site.id, { ...(fn === undefined ? {} : { function: fn }), ...location });
        else result.set(site.id, { ...(fn === undefined ? {} : { function: fn }), problem: `no debug info for this address in ${module}` });
      });
    }),
  );
  return result;
}
