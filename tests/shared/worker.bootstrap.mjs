// The shared-heap test workers' entry: Node runs no TypeScript itself, so tsx's loader is
// registered before worker.ts is imported (worker threads do not take --import in Node 20).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
