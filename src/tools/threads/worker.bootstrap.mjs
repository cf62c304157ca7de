// The threads worker's entry when threads.ts runs from source (tsx, vitest): Node 20's workers
// take no --import, so tsx's loader is registered here before worker.ts is imported. From dist,
// threads.ts starts worker.js itself.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
