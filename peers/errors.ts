/** The peer's .wasm has not been built (or cannot be read). */
export class PeerUnavailableError extends Error {
  override name = 'PeerUnavailableError';

  constructor(
    readonly peer: string,
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(`peer "${peer}" is not built: ${path} is missing; run scripts/build-peers.sh`, options);
  }
}

/** A peer module could not do what was asked: memory would not grow, or it called proc_exit. */
export class PeerError extends Error {
  override name = 'PeerError';

  constructor(
    readonly peer: string,
    message: string,
  ) {
    super(`peer "${peer}": ${message}`);
  }
}
