// The sweep worker's entry when the tools run from their TypeScript sources (tests, tsx): Node
// runs no TypeScript itself, so tsx's loader is registered before sweep-worker.ts is imported.
// From dist/, sweep.ts starts sweep-worker.js directly.
import { register } from 'tsx/esm/api';

register();
export default (await import('./sweep-worker.ts')).default;
