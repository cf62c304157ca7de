// The C peers (dlmalloc, mimalloc) in an installed package: built on first use, into the user's
// cache, by the package's own scripts/build-peers.sh --c-only, when Debian's clang for
// wasm32-wasi is there; otherwise one line names what is missing and how to install it.

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import {
  ALLOCATOR_NAMES, C_PEERS, C_TOOLCHAIN_PACKAGES, PACKAGE_ROOT, allocatorBuiltFrom, userPeersDir, wasmPath,
  type AllocatorName,
} from './allocators.js';

const execFileAsync = promisify(execFile);

const BUILD_SCRIPT = join(PACKAGE_ROOT, 'scripts', 'build-peers.sh');

/** Why the C peers cannot be built here, naming the packages to install; undefined if they can. */
export async function cToolchainMissing(): Promise<string | undefined> {
  const install = `apt-get install ${C_TOOLCHAIN_PACKAGES.join(' ')}`;
  let libc: string;
  try {
    ({ stdout: libc } = await execFileAsync('clang', ['--target=wasm32-wasi', '-print-file-name=libc.a']));
  } catch {
    return `clang is missing: ${install}`;
  }
  // clang prints the bare name back when it has no such file: wasi-libc is not installed.
  if (!existsSync(libc.trim())) return `wasi-libc is missing (clang has no wasm32-wasi libc.a): ${install}`;
  return undefined;
}

/** One allocator as `pymalloc peers` lists it. */
export interface PeerStatus {
  name: AllocatorName;
  built: boolean;
  /** The module's file, where it is or where it would be. */
  path: string;
  builtFrom: string;
}

export function peerStatus(): PeerStatus[] {
  return ALLOCATOR_NAMES.map((name) => {
    const path = wasmPath(name);
    const built = existsSync(path);
    return { name, built, path, builtFrom: built ? allocatorBuiltFrom(name) : 'not built' };
  });
}

/** The C peers that no default directory holds. */
export function missingCPeers(): AllocatorName[] {
  return C_PEERS.filter((name) => !existsSync(wasmPath(name)));
}

/**
 * Builds the C peers into userPeersDir() (unless built already), the script's lines going to
 * `log`. Resolves to the C peers that exist afterwards; a peer that cannot be built is left out,
 * and the log says why.
 */
export async function buildCPeers(log: (line: string) => void): Promise<AllocatorName[]> {
  const missing = await cToolchainMissing();
  if (missing !== undefined) {
    log(`dlmalloc, mimalloc: cannot be built: ${missing}`);
    return C_PEERS.filter((name) => existsSync(wasmPath(name)));
  }
  const out = userPeersDir();
  await new Promise<void>((resolve) => {
    const child = spawn('bash', [BUILD_SCRIPT, '--c-only'], { env: { ...process.env, PEERS_OUT: out }, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    const lines = (data: Buffer) => {
      pending += data.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop()!;
      for (const line of parts) if (line.length > 0) log(line);
    };
    child.stdout.on('data', lines);
    child.stderr.on('data', lines);
    child.on('close', () => {
      if (pending.length > 0) log(pending);
      resolve();
    });
    child.on('error', (error) => {
      log(`cannot run ${BUILD_SCRIPT}: ${error.message}`);
      resolve();
    });
  });
  return C_PEERS.filter((name) => existsSync(wasmPath(name)));
}
