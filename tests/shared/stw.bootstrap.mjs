// The stop-the-world test workers' entry (tests/shared/stw.test.ts): tsx's loader first, as in
// worker.bootstrap.mjs, then the tasks.
import { register } from 'tsx/esm/api';

register();
await import('./stw.worker.ts');
