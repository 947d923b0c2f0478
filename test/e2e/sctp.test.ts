// SCTP exposure end to end (issue 7). The kernel here has SCTP conntrack and NAT but no SCTP sockets
// (socket() gives EPROTONOSUPPORT), so no SCTP server can run. support/sctp.py crafts an SCTP INIT
// (raw IP socket, protocol 132, CRC32c) and listens with a raw socket: the sender runs in the outside
// host, the listener in the container's network namespace (nsenter). What arrives shows whether the
// firewall let the packet through and where the DNAT sent it.
//
// Traffic only goes to the containers made here, to the outside host and to the host side of its veth.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  containerAddress,
  containerPid,
  createOutsideHost,
  ensureTestbed,
  EXPOSE,
  firewallDump,
  nftSets,
  portnetNetwork,
  REPO_ROOT,
  run,
  runContainer,
  scoped,
  startE2ePlugin,
  step,
  useCleanup,
  type Cleanup,
  type OutsideHost,
  type Vantage,
} from './support/index.js';

const SCTP_PY = resolve(REPO_ROOT, 'test/e2e/support/sctp.py');
const haveTool = existsSync(SCTP_PY);
if (!haveTool) step(`SCTP suite skipped: ${SCTP_PY} is missing (it crafts the INIT packets this kernel cannot send)`);

const cleanup = useCleanup('all');
let outside: OutsideHost;

beforeAll(async () => {
  if (!haveTool) return;
  await ensureTestbed();
  await startE2ePlugin(cleanup);
  outside = await createOutsideHost('sctp', {}, cleanup);
  step(`outside host ${outside.address}, host side ${outside.hostAddress}`);
});

interface Heard {
  /** The listener's exit status: 0 when a packet arrived, 1 on timeout. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Listens for an SCTP packet to `port` in `pid`'s network namespace while `send` runs (once the listener
 * says "ready"), then returns what it heard. The INIT goes out up to three times, as a real client would
 * retransmit; one arrival ends the listener.
 */
async function listenWhile(local: Cleanup, pid: number, port: number, timeoutS: number, send: () => Promise<void>): Promise<Heard> {
  const child = spawn('nsenter', ['-t', String(pid), '-n', 'python3', SCTP_PY, 'listen', String(port), String(timeoutS)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
  local.defer(`stop sctp listener on ${port}`, async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let done = false;
  void exited.then(() => (done = true));
  for (let i = 0; i < 100 && !done && !/^ready$/m.test(stdout); i++) await new Promise((r) => setTimeout(r, 50));
  if (!/^ready$/m.test(stdout)) throw new Error(`sctp.py listen ${port} never got ready: ${stdout} ${stderr}`);
  for (let i = 0; i < 3 && !done; i++) {
    await send();
    await new Promise((r) => setTimeout(r, 300));
  }
  return { code: await exited, stdout: stdout.trim(), stderr: stderr.trim() };
}

/**
 * Sends one crafted INIT from `from` to ip:port from `srcPort`. Fixed source ports, one per flow: a resend
 * stays one conntrack entry, and no two flows share a reply tuple (conntrack would remap the source port).
 */
function sender(from: Vantage, ip: string, port: number, srcPort: number): () => Promise<void> {
  return async () => {
    const args = ['python3', SCTP_PY, 'send', ip, String(port), String(srcPort)];
    const r =
      from === 'host'
        ? await run(args[0]!, args.slice(1), { allowFail: true })
        : 'netns' in from
          ? await run('ip', ['netns', 'exec', from.netns, ...args], { allowFail: true })
          : (() => {
              throw new Error('sender: host or netns only');
            })();
    expect(r.code, `sctp.py send ${ip} ${port}: ${r.stderr}`).toBe(0);
  };
}

describe.skipIf(!haveTool)('SCTP exposure (crafted INIT packets)', () => {
  it('an exposed SCTP port receives the INIT (translated, source kept); an unexposed one receives nothing', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'sctp1', '198.18.94.0/24');
      const c = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: '9997:9999/sctp' } } }, local);
      const pid = await containerPid(c.name);
      const address = await containerAddress(c.name, net.name);
      const sets = JSON.stringify(Object.fromEntries(await nftSets()));
      expect(sets).toContain('sctp');

      // Through the host address: host port 9997 arrives on container port 9999 with the client's address.
      const viaHost = await listenWhile(local, pid, 9999, 4, sender(outside, outside.hostAddress, 9997, 40000));
      expect(viaHost.code, `${viaHost.stdout} ${viaHost.stderr}\n${await firewallDump('sctp')}`).toBe(0);
      expect(viaHost.stdout).toMatch(new RegExp(`^got ${outside.address.replaceAll('.', '\\.')} 40000 9999$`, 'm'));
      step(`via the host address: ${viaHost.stdout}`);

      // Directly on the container address (an all-address exposure is open there on the container port).
      const direct = await listenWhile(local, pid, 9999, 4, sender(outside, address, 9999, 40001));
      expect(direct.code, `${direct.stdout} ${direct.stderr}`).toBe(0);
      expect(direct.stdout).toMatch(new RegExp(`^got ${outside.address.replaceAll('.', '\\.')} 40001 9999$`, 'm'));

      // Unexposed: neither the container port 9998 directly nor host port 9998.
      const shut = await listenWhile(local, pid, 9998, 3, async () => {
        await sender(outside, address, 9998, 40002)();
        await sender(outside, outside.hostAddress, 9998, 40003)();
      });
      expect(shut.code, `an INIT to an unexposed port arrived: ${shut.stdout}`).toBe(1);
      expect(shut.stdout).not.toMatch(/^got /m);
      // Control: the same listener and sender work on 9998 when the host sends (the host may reach any port).
      const control = await listenWhile(local, pid, 9998, 4, sender('host', address, 9998, 40004));
      expect(control.code, `${control.stdout} ${control.stderr}`).toBe(0);
    }));
});
