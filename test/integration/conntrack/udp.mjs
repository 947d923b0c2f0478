// UDP server and continuous client for the conntrack flush test, run inside network namespaces with
// `ip netns exec NS node udp.mjs ...`.
//
//   serve LABEL PORT          -> prints "ready", then answers every datagram (v4 or v6) with "LABEL"
//   stream HOST PORT EVERY_MS -> sends a datagram every EVERY_MS from ONE source port, for ever, and
//                                prints the label of every reply on a line of its own
//
// One source port matters: a client that keeps its 5-tuple is what keeps a conntrack entry alive,
// and so what a stale entry traps (a resolver, a syslog forwarder, a game client).
// The stream socket is not connected, so an ICMP port unreachable (no DNAT yet) does not end it.
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'serve') {
  const [label, port] = args;
  const v4 = dgram.createSocket('udp4');
  const v6 = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  const bound = [v4, v6].map((socket) => {
    socket.on('message', (_msg, rinfo) => socket.send(`${label}\n`, rinfo.port, rinfo.address));
    return new Promise((resolve) => socket.bind(Number(port), socket === v4 ? '0.0.0.0' : '::', resolve));
  });
  await Promise.all(bound);
  process.stdout.write('ready\n');
} else if (mode === 'stream') {
  const [host, port, every] = args;
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  socket.on('message', (msg) => process.stdout.write(`${msg.toString().trim()}\n`));
  socket.on('error', () => {});
  socket.bind(0, () => {
    process.stdout.write('ready\n');
    let n = 0;
    setInterval(() => socket.send(String(n++), Number(port), host), Number(every));
  });
} else {
  process.stderr.write('usage: udp.mjs serve LABEL PORT | stream HOST PORT EVERY_MS\n');
  process.exit(2);
}
