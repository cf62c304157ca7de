// Request size <-> size class, and the block-boundary test for a pool.
//
// With ALIGNMENT = 1 << alignmentShift, a request of n bytes (1 <= n <= smallThreshold)
// goes to size class (n - 1) >> alignmentShift, whose blocks are (index + 1) << alignmentShift
// bytes:
//
//   request in bytes    size of block    size class index      (ALIGNMENT 8)
//        1-8                  8                 0
//        9-16                16                 1
//       17-24                24                 2
//        ...                ...               ...
//      505-512              512                63
//
//   request in bytes    size of block    size class index      (ALIGNMENT 16)
//        1-16                16                 0
//       17-32                32                 1
//        ...                ...               ...
//      497-512              512                31
//
// Tricky: free() must reject an address that is inside a pool but not at a block boundary,
// and a division on the free path costs more than the rest of free. A size d = d0 << k with
// d0 odd divides x < 2^32 iff rotr(x * inverse(d0), k) <= (2^32 - 1) / d, where the inverse
// is taken mod 2^32 (Granlund and Montgomery). The three numbers are kept per class in the
// divisibility table, so the test is a multiply, a rotate and a compare.
//
// ╒══════════ Divisibility table entry (DIVISIBILITY_OFFSET + 12 * class) ═══════════╕
//  +0  inverse   u32   inverse of the odd part of the class size, mod 2^32
//  +4  shift     u32   trailing zero bits of the class size
//  +8  limit     u32   (2^32 - 1) / class size
// ╘══════════════════════════════════════════════════════════════════════════════════╛

import { HEAP, DIVISIBILITY_OFFSET, header, alignmentShift } from "../memory/header";

// @ts-ignore: decorator
@inline const ENTRY_BYTES: usize = 12;

// @ts-ignore: decorator
@inline export function sizeClassOf(n: usize): u32 {
  return <u32>((n - 1) >> alignmentShift());
}

// @ts-ignore: decorator
@inline export function classSize(index: u32): u32 {
  return (index + 1) << alignmentShift();
}

/** True iff `offset` is a whole number of blocks of size class `index`. */
// @ts-ignore: decorator
@inline export function isBlockMultiple(offset: u32, index: u32): bool {
  const entry = HEAP + DIVISIBILITY_OFFSET + <usize>index * ENTRY_BYTES;
  return rotr<u32>(offset * load<u32>(entry), load<u32>(entry, 4)) <= load<u32>(entry, 8);
}

/** Inverse of an odd number mod 2^32, by Newton's iteration (each step doubles the good bits). */
function oddInverse(odd: u32): u32 {
  let inverse = odd; // correct to 3 bits: odd * odd == 1 mod 8
  for (let i = 0; i < 4; i++) inverse *= 2 - odd * inverse;
  return inverse;
}

/** Fills the divisibility table for the configured classes. */
export function initSizeClasses(): void {
  const numClasses = header().numClasses;
  for (let index: u32 = 0; index < numClasses; index++) {
    const size = classSize(index);
    const shift = ctz<u32>(size);
    const entry = HEAP + DIVISIBILITY_OFFSET + <usize>index * ENTRY_BYTES;
    store<u32>(entry, oddInverse(size >> shift));
    store<u32>(entry, shift, 4);
    store<u32>(entry, <u32>(u32.MAX_VALUE / size), 8);
  }
}
