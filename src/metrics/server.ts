import http, { type Server } from 'node:http';
import type { Metrics } from './metrics.js';

/** Only this host may scrape: the metrics show what runs here. */
export const METRICS_HOST = '127.0.0.1';

/**
 * A second, read-only door to the metrics for a Prometheus that cannot read Unix sockets: GET /metrics
 * on 127.0.0.1:PORT, nothing else. Resolves once listening (port 0 picks a free port: see address()).
 */
export function listenMetrics(metrics: Metrics, port: number): Promise<Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('only GET /metrics is served here\n');
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${String(err)}\n`),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: METRICS_HOST, port }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
