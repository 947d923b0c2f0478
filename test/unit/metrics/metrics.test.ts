import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { countRepair, Metrics } from '../../../src/metrics/metrics.js';
import { listenMetrics } from '../../../src/metrics/server.js';
import { createNetwork, ep, get, NET, plugin, runEndpoint, stopEndpoint } from '../cli/support.js';

/** The value of one sample of the exposition text, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter((x) => x !== '');
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return 0;
}

describe('metrics', () => {
  it('count calls by endpoint and outcome, time them, and track endpoints, exposures and pool usage', async () => {
    const p = await plugin();
    const scrape = async () => {
      const r = await get(p, '/metrics');
      expect(r.status).toBe(200);
      expect(r.type).toMatch(/^text\/plain/);
      return r.text;
    };
    const before = await scrape();
    expect(sample(before, 'portnet_endpoints')).toBe(0);
    await createNetwork(p, NET, '198.18.1.0/29');
    const a = await runEndpoint(p, NET, '198.18.1.0/29', ep(1), { 'com.example.expose': '8080:80 53/udp' });
    let text = await scrape();
    expect(sample(text, 'portnet_requests_total', { call: 'NetworkDriver.Join', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'portnet_request_duration_seconds_count', { call: 'NetworkDriver.Join' })).toBe(1);
    expect(sample(text, 'portnet_networks')).toBe(1);
    expect(sample(text, 'portnet_endpoints')).toBe(1);
    expect(sample(text, 'portnet_endpoints_joined')).toBe(1);
    expect(sample(text, 'portnet_exposures', { proto: 'tcp' })).toBe(1);
    expect(sample(text, 'portnet_exposures', { proto: 'udp' })).toBe(1);
    expect(sample(text, 'portnet_pool_addresses_allocated', { pool: '198.18.1.0/29' })).toBe(1);
    expect(sample(text, 'portnet_pool_addresses_capacity', { pool: '198.18.1.0/29' })).toBe(6);

    // A refused call counts as an error; the container stopping brings the gauges back.
    const bad = await request(p.app).post('/NetworkDriver.Join').send(Buffer.from(JSON.stringify({ NetworkID: NET, EndpointID: ep(9) })));
    expect(bad.status).toBe(500);
    await stopEndpoint(p, NET, '198.18.1.0/29', ep(1), a);
    text = await scrape();
    expect(sample(text, 'portnet_requests_total', { call: 'NetworkDriver.Join', outcome: 'error' })).toBe(1);
    expect(sample(text, 'portnet_requests_total', { call: 'NetworkDriver.DeleteEndpoint', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'portnet_endpoints')).toBe(0);
    expect(sample(text, 'portnet_exposures', { proto: 'tcp' })).toBe(0);
    expect(sample(text, 'portnet_pool_addresses_allocated', { pool: '198.18.1.0/29' })).toBe(0);
  });

  it('count unknown paths under one label, so random paths cannot grow the metric', async () => {
    const p = await plugin();
    for (const path of ['/Frob.A', '/Frob.B']) expect((await request(p.app).post(path).send(Buffer.from('{}'))).status).toBe(404);
    const text = (await get(p, '/metrics')).text;
    expect(sample(text, 'portnet_requests_total', { call: 'unknown', outcome: 'not_implemented' })).toBe(2);
    expect(text).not.toContain('Frob');
  });

  it('count reconcile repairs process-wide, in every registry', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    const before = sample(await a.text(), 'portnet_reconcile_repairs_total', { kind: 'orphan_link' });
    countRepair('orphan_link');
    countRepair('orphan_link', 2);
    expect(sample(await a.text(), 'portnet_reconcile_repairs_total', { kind: 'orphan_link' })).toBe(before + 3);
    expect(sample(await b.text(), 'portnet_reconcile_repairs_total', { kind: 'orphan_link' })).toBe(before + 3);
  });

  it('are also served on 127.0.0.1 only, GET /metrics and nothing else', async () => {
    const metrics = new Metrics();
    const server = await listenMetrics(metrics, 0);
    try {
      const { address, port } = server.address() as AddressInfo;
      expect(address).toBe('127.0.0.1');
      const fetch = (path: string, method = 'GET') =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.end();
        });
      const ok = await fetch('/metrics');
      expect(ok.status).toBe(200);
      expect(ok.body).toContain('# TYPE portnet_requests_total counter');
      expect(ok.body).toContain('portnet_process_cpu_seconds_total');
      expect((await fetch('/portnet/v1/state')).status).toBe(404);
      expect((await fetch('/metrics', 'POST')).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
