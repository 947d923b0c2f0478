import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { parseRequest } from '../protocol/schemas.js';
import type { Mutex } from '../state/mutex.js';
import type { Route } from './routes.js';

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

/** Fields worth a log line, picked from a parsed body when present. */
function context(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object') return {};
  const b = body as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if (typeof b.NetworkID === 'string') out.network = b.NetworkID.slice(0, 12);
  if (typeof b.EndpointID === 'string') out.endpoint = b.EndpointID.slice(0, 12);
  if (typeof b.PoolID === 'string') out.pool = b.PoolID;
  return out;
}

/**
 * The plugin's HTTP face: one POST route per protocol method, `{}` for empty answers, and on every
 * failure HTTP 500 with `{"Err": message}` (what Docker reads for both drivers).
 */
export function createApp(routes: Record<string, Route>, lock: Mutex, log: Logger, snapshot: () => unknown) {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(express.raw({ type: () => true, limit: BODY_LIMIT }));

  app.get('/portnet/v1/state', (_req: Request, res: Response) => send(res, 200, snapshot()));

  app.post('/:method', async (req: Request, res: Response) => {
    const route = routes[req.path];
    if (!route) {
      // 404 is Docker's "not implemented"; it tolerates that only where it is meant to.
      send(res, 404, { Err: `portnet does not implement ${req.path.slice(1)}` });
      return;
    }
    const started = process.hrtime.bigint();
    let body: unknown;
    try {
      body = parseBody(req.body);
      const input = parseRequest(route.schema, body);
      const result = await (route.serial ? lock.run(async () => route.handle(input)) : route.handle(input));
      send(res, 200, result ?? {});
      log.info({ call: req.path.slice(1), ...context(body), ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'ok');
    } catch (err) {
      const message = (err as Error).message || String(err);
      send(res, 500, { Err: message });
      log.warn({ call: req.path.slice(1), ...context(body), ms: Number(process.hrtime.bigint() - started) / 1e6, err: message }, 'failed');
    }
  });

  app.use((req: Request, res: Response) => send(res, 404, { Err: `no such endpoint: ${req.method} ${req.path}` }));

  // Body-parser failures (too large, aborted, bad encoding) arrive here.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    const message =
      err.type === 'entity.too.large' ? `request body too large (limit ${BODY_LIMIT})` : `bad request: ${err.message}`;
    log.warn({ call: req.path.slice(1), err: message }, 'failed');
    send(res, 500, { Err: message });
  });
  return app;
}
