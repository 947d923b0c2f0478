import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ContainerNames } from '../docker/names.js';
import { type Metrics, UNKNOWN_CALL } from '../metrics/metrics.js';
import { parseRequest } from '../protocol/schemas.js';
import type { Mutex } from '../state/mutex.js';
import type { Route } from './routes.js';

/** Optional parts of the app; unit tests build it without them. */
export interface AppExtras {
  /** Counts and times every protocol call; served at GET /metrics. */
  metrics?: Metrics;
  /** Told about Join and DeleteEndpoint after they are answered; names containers in log lines. */
  names?: Pick<ContainerNames, 'container' | 'afterJoin' | 'forget'>;
  /** GET /portnet/v1/firewall: the model the nft table is rendered from (for `portnet doctor` and `inspect`). */
  firewall?: () => unknown;
}

/** Docker's plugin bodies are small; anything near this is an attack or a bug. */
export const BODY_LIMIT = '1mb';
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** Docker sends no Content-Type and sometimes no body at all: take the bytes and parse them ourselves. */
function parseBody(raw: unknown): unknown {
  if (!Buffer.isBuffer(raw) || raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw Object.assign(new Error(`request body is not JSON: ${(err as Error).message}`), { expose: true });
  }
}

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type(CONTENT_TYPE).send(JSON.stringify(body));
}

function ids(body: unknown): { network?: string; endpoint?: string; pool?: string } {
  if (body === null || typeof body !== 'object') return {};
  const b = body as Record<string, unknown>;
  return {
    ...(typeof b.NetworkID === 'string' ? { network: b.NetworkID } : {}),
    ...(typeof b.EndpointID === 'string' ? { endpoint: b.EndpointID } : {}),
    ...(typeof b.PoolID === 'string' ? { pool: b.PoolID } : {}),
  };
}

/** Fields worth a log line, picked from a parsed body when present; the container once Docker has named it. */
function context(body: unknown, names: AppExtras['names']): Record<string, unknown> {
  const { network, endpoint, pool } = ids(body);
  const out: Record<string, unknown> = {};
  if (network !== undefined) out.network = network.slice(0, 12);
  if (endpoint !== undefined) {
    out.endpoint = endpoint.slice(0, 12);
    const container = names?.container(endpoint)?.name;
    if (container !== undefined) out.container = container;
  }
  if (pool !== undefined) out.pool = pool;
  return out;
}

/**
 * The plugin's HTTP face: one POST route per protocol method, `{}` for empty answers, and on every
 * failure HTTP 500 with `{"Err": message}` (what Docker reads for both drivers).
 */
export function createApp(routes: Record<string, Route>, lock: Mutex, log: Logger, snapshot: () => unknown, extras: AppExtras = {}) {
  const { metrics, names } = extras;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(express.raw({ type: () => true, limit: BODY_LIMIT }));

  app.get('/portnet/v1/state', (_req: Request, res: Response) => send(res, 200, snapshot()));
  if (extras.firewall) {
    const firewall = extras.firewall;
    app.get('/portnet/v1/firewall', (_req: Request, res: Response) => send(res, 200, firewall()));
  }
  if (metrics) {
    app.get('/metrics', async (_req: Request, res: Response) => {
      res.status(200).type(metrics.contentType).send(await metrics.text());
    });
  }

  app.post('/:method', async (req: Request, res: Response) => {
    const route = routes[req.path];
    if (!route) {
      // 404 is Docker's "not implemented"; it tolerates that only where it is meant to.
      send(res, 404, { Err: `portnet does not implement ${req.path.slice(1)}` });
      metrics?.observeCall(UNKNOWN_CALL, 'not_implemented');
      return;
    }
    const call = req.path.slice(1);
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    let body: unknown;
    try {
      body = parseBody(req.body);
      const input = parseRequest(route.schema, body);
      const result = await (route.serial ? lock.run(async () => route.handle(input)) : route.handle(input));
      send(res, 200, result ?? {});
      const seconds = elapsed();
      metrics?.observeCall(call, 'ok', seconds);
      log.info({ call, ...context(body, names), ms: Math.round(seconds * 1e6) / 1e3 }, 'ok');
      afterAnswer(call, body);
    } catch (err) {
      const message = (err as Error).message || String(err);
      send(res, 500, { Err: message });
      const seconds = elapsed();
      metrics?.observeCall(call, 'error', seconds);
      log.warn({ call, ...context(body, names), ms: Math.round(seconds * 1e6) / 1e3, err: message }, 'failed');
    }
  });

  /** Work that must never delay (or deadlock) Docker's call: it only schedules. */
  function afterAnswer(call: string, body: unknown): void {
    if (!names) return;
    const { network, endpoint } = ids(body);
    if (network === undefined || endpoint === undefined) return;
    if (call === 'NetworkDriver.Join') names.afterJoin(network, endpoint);
    else if (call === 'NetworkDriver.DeleteEndpoint') names.forget(endpoint);
  }

  app.use((req: Request, res: Response) => send(res, 404, { Err: `no such endpoint: ${req.method} ${req.path}` }));

  // Body-parser failures (too large, aborted, bad encoding) arrive here.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    const message =
      err.type === 'entity.too.large' ? `request body too large (limit ${BODY_LIMIT})` : `bad request: ${err.message}`;
    log.warn({ call: req.path.slice(1), err: message }, 'failed');
    send(res, 500, { Err: message });
    metrics?.observeCall(routes[req.path] ? req.path.slice(1) : UNKNOWN_CALL, 'error');
  });
  return app;
}
