// npm run service: the example service on PORT (default 8080), MODE 'heap' (default) or 'js'.
import { startService } from './server.js';

const service = await startService({
  port: Number(process.env.PORT ?? 8080),
  mode: (process.env.MODE ?? 'heap') as 'heap' | 'js',
  ...(process.env.THREADS ? { threads: Number(process.env.THREADS) } : {}),
  ...(process.env.MAX_MEMORY ? { maxMemory: Number(process.env.MAX_MEMORY) } : {}),
});
console.log(`listening on ${service.url} (${service.options.mode} mode, ${service.options.threads} workers); metrics at ${service.url}/metrics`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void service.close().then(() => process.exit(0)));
}
