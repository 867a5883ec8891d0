/** /healthz, /readyz, /metrics, /debug/runtime, /debug/heap. */
import { readdir } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapSnapshot } from 'node:v8';
import type { FastifyInstance } from 'fastify';
import type { Storage } from '../storage/index.ts';
import type { FerryMetrics } from '../observability/metrics.ts';

export interface SystemRouteDeps {
  storage: Storage;
  metrics: FerryMetrics;
  isDraining: () => boolean;
}

async function countOpenFds(): Promise<number | undefined> {
  try {
    return (await readdir('/proc/self/fd')).length;
  } catch {
    return undefined;
  }
}

export { countOpenFds };

export function registerSystemRoutes(app: FastifyInstance, deps: SystemRouteDeps): void {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  app.addHook('onClose', async () => { loopDelay.disable(); });

  app.get('/healthz', { config: { access: 'public' } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/readyz', { config: { access: 'public' } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    if (deps.isDraining()) return reply.code(503).send({ status: 'draining' });
    let health;
    try {
      health = await deps.storage.check();
    } catch {
      return reply.code(503).send({ status: 'storage-unavailable' });
    }
    // A backup serves while the primary is down: still ready, and the body says which is down.
    if (health !== undefined) return { status: 'degraded', backend: health.degraded };
    return { status: 'ready' };
  });

  app.get('/metrics', { config: { access: 'metrics' } }, async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    reply.header('cache-control', 'no-store');
    return deps.metrics.registry.metrics();
  });

  app.get('/debug/runtime', { config: { access: 'loopback-or-admin' } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    const mem = process.memoryUsage();
    const resources = process.getActiveResourcesInfo();
    const byType: Record<string, number> = {};
    for (const r of resources) byType[r] = (byType[r] ?? 0) + 1;
    return {
      pid: process.pid,
      node: process.version,
      uptimeSeconds: process.uptime(),
      memory: { rss: mem.rss, heapTotal: mem.heapTotal, heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers },
      eventLoopDelayMs: { mean: loopDelay.mean / 1e6, p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      activeResources: byType,
      openFds: await countOpenFds(),
      cpuUsageMicros: process.cpuUsage(),
    };
  });

  // A heap snapshot holds every secret in memory (link keys, JWT keys, tokens in flight):
  // see loopbackMaySeeSecrets in src/auth for when loopback alone may take one.
  app.get('/debug/heap', { config: { access: 'loopback-or-admin', exposesSecrets: true } }, async (_req, reply) => {
    reply.header('content-type', 'application/json');
    reply.header('content-disposition', `attachment; filename="ferry-${process.pid}-${Date.now()}.heapsnapshot"`);
    reply.header('cache-control', 'no-store');
    return reply.send(getHeapSnapshot());
  });
}
