// Reachability probes from a vantage point: the host itself, a test network namespace (an OutsideHost is
// one), or a container's network namespace (host tools run there with `nsenter -t PID -n`, so the probe
// sees exactly the container's interfaces, routes and source address).
//
// Only ever probe loopback and addresses that live in namespaces the test made (Strict traffic rule).
import net from 'node:net';
import http from 'node:http';
import dgram from 'node:dgram';
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from './exec.js';
import { containerPid } from './docker.js';

export type Vantage = 'host' | { netns: string } | { pid: number } | { container: string };
export type TcpOutcome = 'open' | 'refused' | 'timeout' | 'unreachable';

export interface TcpProbe {
  outcome: TcpOutcome;
  /** The error text behind a non-open outcome. */
  detail: string;
}

/** Command prefix that runs a host program inside the vantage's network namespace. */
async function prefix(from: Exclude<Vantage, 'host'>): Promise<string[]> {
  if ('netns' in from) return ['ip', 'netns', 'exec', from.netns];
  const pid = 'pid' in from ? from.pid : await containerPid(from.container);
  return ['nsenter', '-t', String(pid), '-n'];
}

function classify(text: string): TcpOutcome {
  if (/refused/i.test(text)) return 'refused';
  if (/unreachable|no route/i.test(text)) return 'unreachable';
  return 'timeout';
}

const secs = (ms: number): string => (ms / 1000).toFixed(3);

/** An IPv6 literal (the probes pick the address family from the address). */
export const isV6 = (ip: string): boolean => ip.includes(':');

/** socat's client address for ip:port: `TCP4:1.2.3.4:80` or `TCP6:[2001:db8::1]:80`. */
function socatTarget(proto: 'TCP' | 'UDP', ip: string, port: number): string {
  return isV6(ip) ? `${proto}6:[${ip}]:${port}` : `${proto}4:${ip}:${port}`;
}

/** Try a TCP connection; 'open' means the handshake completed. */
export async function tcpProbe(from: Vantage, ip: string, port: number, timeoutMs = 2000): Promise<TcpProbe> {
  if (from === 'host') {
    return new Promise((resolve) => {
      const s = net.connect({ host: ip, port, timeout: timeoutMs });
      const done = (p: TcpProbe): void => {
        s.destroy();
        resolve(p);
      };
      s.once('connect', () => done({ outcome: 'open', detail: '' }));
      s.once('timeout', () => done({ outcome: 'timeout', detail: `no answer in ${timeoutMs} ms` }));
      s.once('error', (e: NodeJS.ErrnoException) =>
        done({ outcome: e.code === 'ECONNREFUSED' ? 'refused' : /UNREACH/.test(e.code ?? '') ? 'unreachable' : classify(e.message), detail: e.message }),
      );
    });
  }
  const [cmd, ...args] = await prefix(from);
  const r = await run(cmd!, [...args, 'socat', '-u', 'OPEN:/dev/null', `${socatTarget('TCP', ip, port)},connect-timeout=${secs(timeoutMs)}`], {
    allowFail: true,
    timeoutMs: timeoutMs + 5000,
  });
  if (r.code === 0) return { outcome: 'open', detail: '' };
  return { outcome: r.timedOut ? 'timeout' : classify(r.stderr), detail: r.stderr.trim() };
}

/** true when a TCP connection to ip:port from the vantage completes within timeoutMs. */
export async function tcpConnect(from: Vantage, ip: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return (await tcpProbe(from, ip, port, timeoutMs)).outcome === 'open';
}

export interface HttpResponse {
  status: number;
  body: string;
}

/** GET http://ip:port/path (HTTP/1.0, Connection: close). Throws when no response arrives. */
export async function httpGet(from: Vantage, ip: string, port: number, path = '/', timeoutMs = 5000): Promise<HttpResponse> {
  if (from === 'host') {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: ip, port, path, agent: false, timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET http://${ip}:${port}${path}: no answer in ${timeoutMs} ms`)));
      req.on('error', reject);
    });
  }
  const [cmd, ...args] = await prefix(from);
  const request = `GET ${path} HTTP/1.0\r\nHost: ${isV6(ip) ? `[${ip}]` : ip}:${port}\r\nUser-Agent: portnet-e2e\r\nConnection: close\r\n\r\n`;
  const r = await run(cmd!, [...args, 'socat', `-T${secs(timeoutMs)}`, '-', `${socatTarget('TCP', ip, port)},connect-timeout=${secs(timeoutMs)}`], {
    input: request,
    allowFail: true,
    timeoutMs: timeoutMs + 5000,
  });
  const m = /^HTTP\/\d\.\d (\d{3})[^\r\n]*\r?\n([\s\S]*?)\r?\n\r?\n([\s\S]*)$/.exec(r.stdout);
  if (!m) throw new Error(`GET http://${ip}:${port}${path} from ${JSON.stringify(from)}: no HTTP response (${r.stderr.trim() || `got ${JSON.stringify(r.stdout.slice(0, 200))}`})`);
  return { status: Number(m[1]), body: m[3]! };
}

/** Send one UDP datagram and return the first reply, or null when none arrives within timeoutMs. */
export async function udpExchange(from: Vantage, ip: string, port: number, payload: string, timeoutMs = 2000): Promise<string | null> {
  if (from === 'host') {
    return new Promise((resolve) => {
      const s = dgram.createSocket(isV6(ip) ? 'udp6' : 'udp4');
      const t = setTimeout(() => {
        s.close();
        resolve(null);
      }, timeoutMs);
      s.once('message', (m) => {
        clearTimeout(t);
        s.close();
        resolve(m.toString('utf8'));
      });
      s.once('error', () => {
        clearTimeout(t);
        s.close();
        resolve(null);
      });
      s.send(payload, port, ip);
    });
  }
  const [cmd, ...args] = await prefix(from);
  const r = await run(cmd!, [...args, 'socat', `-T${secs(timeoutMs)}`, '-', socatTarget('UDP', ip, port)], {
    input: payload,
    allowFail: true,
    timeoutMs: timeoutMs + 5000,
  });
  return r.stdout.length > 0 ? r.stdout : null;
}

export interface EchoServer {
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * An echo server (socat … EXEC:cat) listening in the vantage's namespace on `port` (all addresses, or
 * `bind`). Resolves once the port is bound. Stop it (or register stop() with a Cleanup).
 */
export async function startEchoServer(from: Vantage, proto: 'tcp' | 'udp', port: number, bind?: string): Promise<EchoServer> {
  const pre = from === 'host' ? [] : await prefix(from);
  const addr = proto === 'tcp' ? `TCP4-LISTEN:${port},fork,reuseaddr` : `UDP4-RECVFROM:${port},fork`;
  const full = [...pre, 'socat', bind ? `${addr},bind=${bind}` : addr, 'EXEC:cat'];
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  // Wait until the socket is bound (visible in the namespace's socket table).
  const ss = [...pre, 'ss', '-Hln', proto === 'tcp' ? '-t' : '-u', 'sport', '=', `:${port}`];
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`echo server ${full.join(' ')} exited: ${stderr.trim()}`);
    const r = await run(ss[0]!, ss.slice(1), { allowFail: true });
    if (r.stdout.trim()) return { process: child, stop };
    await new Promise((res) => setTimeout(res, 50));
  }
  await stop();
  throw new Error(`echo server ${full.join(' ')} did not bind within 5 s: ${stderr.trim()}`);
}
