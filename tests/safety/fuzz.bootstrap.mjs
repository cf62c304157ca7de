// The fuzz worker's entry: Node runs no TypeScript itself, so tsx's loader is registered
// before fuzz.worker.ts is imported (worker threads do not take --import in Node 20).
import { register } from 'tsx/esm/api';

register();
await import('./fuzz.worker.ts');
