// UDP state end to end (issue 7): a client that keeps sending from one source port while the container
// behind a UDP exposure is replaced. Conntrack keeps a UDP flow alive for as long as packets keep coming,
// so without portnet flushing the entries of that host port (when the exposure goes and when it comes
// back) the client would stay steered to the old container's address, or to the host itself, forever.
//
// The bound below (5 s) only says "happens at all"; it is no performance claim.
//
// Traffic only goes to the containers made here, to the outside host and to the host side of its veth.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  containerAddress,
  containerAddress6,
  containerPid,
  createOutsideHost,
  ensureTestbed,
  EXPOSE,
  firewallDump,
  portnetNetwork,
  removeContainer,
  runContainer,
  scoped,
  startE2ePlugin,
  step,
  useCleanup,
  type Cleanup,
  type OutsideHost,
} from './support/index.js';

const cleanup = useCleanup('all');
let outside: OutsideHost;
const PORT = 5353;

beforeAll(async () => {
  await ensureTestbed();
  await startE2ePlugin(cleanup);
  outside = await createOutsideHost('udp', { ipv6: true }, cleanup);
  step(`outside host ${outside.address} ${outside.address6}, host side ${outside.hostAddress} ${outside.hostAddress6}`);
});

/**
 * A UDP server in the container's network namespace (host socat via nsenter) that answers each
 * datagram with "TAG <the datagram>", so the client can tell which container answered.
 */
async function taggedServer(local: Cleanup, container: string, tag: string, family: 4 | 6): Promise<() => Promise<void>> {
  const pid = String(await containerPid(container));
  const child = spawn('nsenter', ['-t', pid, '-n', 'socat', `UDP${family}-RECVFROM:${PORT},fork`, `SYSTEM:read x; echo ${tag} $x`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  local.defer(`stop udp server ${tag}`, stop);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`udp server ${tag} exited: ${stderr.trim()}`);
    const ss = spawn('nsenter', ['-t', pid, '-n', 'ss', '-Hlun', 'sport', '=', `:${PORT}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    ss.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise((r) => ss.once('exit', r));
    if (out.trim()) return stop;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`udp server ${tag} did not bind ${PORT} within 5 s: ${stderr.trim()}`);
}

/** One long-lived UDP socket in the outside host sending "seq N" every 50 ms; every reply is recorded. */
const CLIENT = `
const dgram = require('node:dgram');
const [ip, port] = process.argv.slice(1);
const s = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
s.on('message', (m) => process.stdout.write(Date.now() + ' ' + m.toString().trim() + '\\n'));
s.on('error', (e) => process.stderr.write(String(e) + '\\n'));
s.bind(0, () => {
  process.stdout.write('port ' + s.address().port + '\\n');
  let n = 0;
  setInterval(() => s.send('seq ' + n++, Number(port), ip), 50);
});
`;

interface Client {
  replies: Array<{ at: number; text: string }>;
  /** Resolves with the first reply that starts with `tag` and arrives after `since`, or null after timeoutMs. */
  waitFor(tag: string, since: number, timeoutMs: number): Promise<{ at: number; text: string } | null>;
  sourcePort(): number | undefined;
}

function startClient(local: Cleanup, target: string): Client {
  const child: ChildProcess = outside.spawn(process.execPath, ['-e', CLIENT, target, String(PORT)]);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  local.defer('stop the udp client', async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const replies: Array<{ at: number; text: string }> = [];
  let port: number | undefined;
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const p = /^port (\d+)$/.exec(line);
    if (p) port = Number(p[1]);
    const m = /^(\d+) (.*)$/.exec(line);
    if (m) replies.push({ at: Number(m[1]), text: m[2]! });
    for (const w of waiters) w();
  });
  return {
    replies,
    sourcePort: () => port,
    waitFor: (tag, since, timeoutMs) =>
      new Promise((resolve) => {
        const check = (): boolean => {
          const hit = replies.find((r) => r.at >= since && r.text.startsWith(`${tag} `));
          if (!hit) return false;
          waiters.delete(onLine);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const onLine = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(onLine);
          resolve(null);
        }, timeoutMs);
        waiters.add(onLine);
        check();
      }),
  };
}

/** Per family: the network's pools, the two containers' fixed addresses and the host address the client aims at. */
const CASES = [
  { family: 4 as const, subnets: ['198.18.93.0/24'], first: { ip: '198.18.93.10' }, second: { ip: '198.18.93.20' } },
  {
    family: 6 as const,
    subnets: ['198.18.97.0/24', '2001:db8:97::/64'],
    first: { ip: '198.18.97.10', ip6: '2001:db8:97::10' },
    second: { ip: '198.18.97.20', ip6: '2001:db8:97::20' },
  },
];

describe('UDP exposure and container replacement', () => {
  it.each(CASES)('IPv$family: a client sending continuously gets answers from the replacement container', ({ family, subnets, first, second }) =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, `udp${family}`, subnets);
      const target = family === 6 ? outside.hostAddress6! : outside.hostAddress;
      // Fixed, different addresses: if the replacement got the old address, a stale entry would still
      // lead to it and the test would prove nothing.
      const old = await runContainer({ network: { name: net.name, ...first, driverOpts: { [EXPOSE]: `${PORT}/udp` } } }, local);
      const stopOld = await taggedServer(local, old.name, 'old', family);
      const client = startClient(local, target);
      const firstReply = await client.waitFor('old', 0, 10_000);
      expect(firstReply, `no answer from the first container (${client.replies.length} replies)\n${await firewallDump('udp', PORT)}`).not.toBeNull();
      step(`client (source port ${client.sourcePort()}) gets "${firstReply!.text}" through ${target}`);

      const addressOf = (c: string) => (family === 6 ? containerAddress6(c, net.name) : containerAddress(c, net.name));
      const oldAddress = await addressOf(old.name);
      await stopOld();
      await removeContainer(old.name);
      const gone = Date.now();
      // Keep sending for a while with no container behind the port, as a real client would.
      await new Promise((r) => setTimeout(r, 1000));
      expect(client.replies.filter((r) => r.at > gone + 200)).toEqual([]);

      const next = await runContainer({ network: { name: net.name, ...second, driverOpts: { [EXPOSE]: `${PORT}/udp` } } }, local);
      expect(await addressOf(next.name)).not.toBe(oldAddress);
      await taggedServer(local, next.name, 'new', family);
      const up = Date.now();
      const hit = await client.waitFor('new', up, 5000);
      expect(hit, `no answer from the replacement within 5 s of its server starting\n${await firewallDump('udp', PORT)}`).not.toBeNull();
      step(`replacement answered ${hit!.at - up} ms after its server started: "${hit!.text}"`);
    }));
});
