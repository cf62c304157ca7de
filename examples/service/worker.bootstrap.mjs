// The pool's worker entry: Node 20 runs no TypeScript, and worker threads do not take --import,
// so tsx's loader is registered here before worker.ts is loaded; piscina calls its default export.
import { register } from 'tsx/esm/api';

register();
const { default: handler } = await import('./worker.ts');
export default handler;
