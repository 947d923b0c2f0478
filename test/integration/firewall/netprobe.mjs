// Tiny TCP/UDP server and client for the firewall traffic tests, run inside network namespaces with
// `ip netns exec NS node netprobe.mjs ...`. Replies say who answered and whom they saw, so a test can
// check where a connection landed and whether its source address was kept or translated.
//
//   serve LABEL tcp:80,5000-5004 udp:53   -> prints "ready"; then one JSON line per connection/datagram
//                                            (tcp6:/udp6: listen on IPv6 only, tcp:/udp: on IPv4 only)
//   connect tcp|udp HOST PORT TIMEOUT_MS [LOCAL_ADDRESS]
//                                         -> prints {"result":"ok","reply":"LABEL PEER LOCALPORT"}
//                                            or {"result":"timeout"} / {"result":"refused"} / {"result":"error",...}
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);

function ports(spec) {
  return spec.split(',').flatMap((part) => {
    const [a, b = a] = part.split('-').map(Number);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

function log(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

async function serve(label, specs) {
  const pending = [];
  for (const spec of specs) {
    const [proto, list] = spec.split(':');
    const v6 = proto.endsWith('6');
    const host = v6 ? '::' : '0.0.0.0';
    for (const port of ports(list)) {
      if (proto.startsWith('tcp')) {
        const server = net.createServer((socket) => {
          log({ proto, port, peer: socket.remoteAddress });
          socket.end(`${label} ${socket.remoteAddress} ${socket.localPort}\n`);
          socket.on('error', () => {});
        });
        pending.push(new Promise((resolve) => server.listen({ port, host, ipv6Only: v6 }, resolve)));
      } else {
        const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
        socket.on('message', (_msg, rinfo) => {
          log({ proto, port, peer: rinfo.address });
          socket.send(`${label} ${rinfo.address} ${port}\n`, rinfo.port, rinfo.address);
        });
        pending.push(new Promise((resolve) => socket.bind(port, host, resolve)));
      }
    }
  }
  await Promise.all(pending);
  process.stdout.write('ready\n');
}

function connect(proto, host, port, timeoutMs, localAddress) {
  const done = (result) => {
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  };
  setTimeout(() => done({ result: 'timeout' }), Number(timeoutMs));
  const fail = (err) =>
    done(err.code === 'ECONNREFUSED' ? { result: 'refused' } : { result: 'error', code: err.code, message: err.message });
  if (proto === 'tcp') {
    const socket = net.connect({ host, port: Number(port), ...(localAddress ? { localAddress } : {}) });
    let reply = '';
    socket.on('data', (d) => (reply += d));
    socket.on('end', () => done({ result: 'ok', reply: reply.trim() }));
    socket.on('error', fail);
  } else {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.on('error', fail);
    socket.on('message', (msg) => done({ result: 'ok', reply: msg.toString().trim() }));
    // Connected, so an ICMP port-unreachable comes back as ECONNREFUSED instead of a timeout.
    socket.bind({ port: 0, ...(localAddress ? { address: localAddress } : {}) }, () =>
      socket.connect(Number(port), host, () => socket.send('ping')),
    );
  }
}

if (mode === 'serve') await serve(args[0], args.slice(1));
else if (mode === 'connect') connect(...args);
else {
  process.stderr.write('usage: netprobe.mjs serve LABEL SPEC... | connect PROTO HOST PORT TIMEOUT_MS [LOCAL]\n');
  process.exit(2);
}
