// Which Wasm file of build/ runs a heap. Every preset has release builds of its own with its
// geometry fixed at compile time (scripts/build-presets.sh), so that the fast paths shift and mask
// by constants; any other geometry, and every debug build, runs a generic module that reads the
// geometry from the heap header. The tuned policy is compiled in as well: a heap of the tuned
// preset whose geometry is not the preset's runs the generic module of that policy. A shared heap
// runs the shared build (CPython's policy, any geometry), which imports its memory; a
// free-threaded one the free-threaded build.

import { PRESETS, type HeapConfig } from './config.js';

function hasPresetGeometry(config: HeapConfig): boolean {
  const preset = PRESETS[config.preset];
  return (
    config.alignment === preset.alignment && config.poolSize === preset.poolSize &&
    config.arenaSize === preset.arenaSize && config.smallRequestThreshold === preset.smallRequestThreshold
  );
}

/** The file name, under build/, of the module that runs a heap of this configuration. */
export function buildFile(config: HeapConfig): string {
  if (config.concurrency === 'free-threaded') return `pymalloc.${config.build}.ft.wasm`;
  if (config.shared) return `pymalloc.${config.build}.shared.wasm`;
  if (config.build === 'release' && hasPresetGeometry(config)) return `pymalloc-${config.preset}.release.wasm`;
  return config.policy === 'tuned' ? `pymalloc-tuned-policy.${config.build}.wasm` : `pymalloc.${config.build}.wasm`;
}
