// Where the tools keep what they compile on first use (record's mtrace shim, the native replayer,
// the C peer allocators): the user's cache, never the installed package, which may be read-only.

import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

const CACHE_NAME = 'pymalloc-wasm';

/**
 * $XDG_CACHE_HOME/pymalloc-wasm, or ~/.cache/pymalloc-wasm: the XDG base directory specification,
 * which says a relative XDG_CACHE_HOME is to be ignored.
 */
export function userCacheDir(): string {
  const xdgCache = process.env.XDG_CACHE_HOME;
  return join(xdgCache !== undefined && isAbsolute(xdgCache) ? xdgCache : join(homedir(), '.cache'), CACHE_NAME);
}
