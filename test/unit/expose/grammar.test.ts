import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseExpose } from '../../../src/expose/grammar.js';
import { ExposeError, type Exposure } from '../../../src/expose/types.js';

/** An option exposure; host ports default to the container ports, as in the grammar. */
function opt(p: Partial<Exposure> & { containerPort: number }): Exposure {
  const containerPortEnd = p.containerPortEnd ?? p.containerPort;
  const hostPort = p.hostPort ?? p.containerPort;
  return {
    hostPort,
    hostPortEnd: p.hostPortEnd ?? hostPort + (containerPortEnd - p.containerPort),
    containerPortEnd,
    proto: 'tcp',
    origin: 'option',
    ...p,
  };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, got none');
}

describe('parseExpose accepts', () => {
  it.each<[string, Exposure[]]>([
    // Values captured from Docker 20.10 (docker-remote-driver-trace.txt).
    ['80', [opt({ containerPort: 80 })]],
    ['8081:81', [opt({ hostPort: 8081, containerPort: 81 })]],
    // The DESIGN.md example: two items separated by a space.
    ['80 8443:443', [opt({ containerPort: 80 }), opt({ hostPort: 8443, containerPort: 443 })]],
    ['80,81', [opt({ containerPort: 80 }), opt({ containerPort: 81 })]],
    ['80, 81', [opt({ containerPort: 80 }), opt({ containerPort: 81 })]],
    ['80,,81', [opt({ containerPort: 80 }), opt({ containerPort: 81 })]],
    ['  80\t\n81 , ', [opt({ containerPort: 80 }), opt({ containerPort: 81 })]],
    ['1', [opt({ containerPort: 1 })]],
    ['65535', [opt({ containerPort: 65535 })]],
    ['080', [opt({ containerPort: 80 })]],
    ['80-81', [opt({ containerPort: 80, containerPortEnd: 81 })]],
    ['8000-8010:9000-9010', [opt({ hostPort: 8000, hostPortEnd: 8010, containerPort: 9000, containerPortEnd: 9010 })]],
    ['8080-8080:80', [opt({ hostPort: 8080, containerPort: 80 })]],
    ['53/udp', [opt({ containerPort: 53, proto: 'udp' })]],
    ['9/sctp', [opt({ containerPort: 9, proto: 'sctp' })]],
    ['80/tcp', [opt({ containerPort: 80 })]],
    // Upper case: Docker's --network long syntax lower-cases, other paths may not.
    ['80/TCP', [opt({ containerPort: 80 })]],
    ['53/Udp', [opt({ containerPort: 53, proto: 'udp' })]],
    ['127.0.0.1:8082:80', [opt({ hostIp: '127.0.0.1', hostPort: 8082, containerPort: 80 })]],
    ['127.0.0.1:80', [opt({ hostIp: '127.0.0.1', containerPort: 80 })]],
    ['10.1.2.3:90-91/udp', [opt({ hostIp: '10.1.2.3', containerPort: 90, containerPortEnd: 91, proto: 'udp' })]],
    // 0.0.0.0 and [::] are family-wide; no host IP at all is both families.
    ['0.0.0.0:8080:80', [opt({ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 })]],
    ['[::]:8080:80', [opt({ hostIp: '::', hostPort: 8080, containerPort: 80 })]],
    ['[::1]:8080:80', [opt({ hostIp: '::1', hostPort: 8080, containerPort: 80 })]],
    ['[::1]:80', [opt({ hostIp: '::1', containerPort: 80 })]],
    ['[2001:db8::1]:8080:80', [opt({ hostIp: '2001:db8::1', hostPort: 8080, containerPort: 80 })]],
    ['[2001:DB8:0:0:0:0:0:1]:8080:80/UDP', [opt({ hostIp: '2001:db8::1', hostPort: 8080, containerPort: 80, proto: 'udp' })]],
    ['[::1]:9000-9001:90-91/udp', [opt({ hostIp: '::1', hostPort: 9000, containerPort: 90, containerPortEnd: 91, proto: 'udp' })]],
    // An IPv4-mapped IPv6 address is normalised to IPv4, as Docker's net.IP marshalling does for -p.
    ['[::ffff:127.0.0.1]:8080:80', [opt({ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 })]],
    ['[::FFFF:7F00:1]:8080:80', [opt({ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 })]],
    // Not duplicates: other protocol, other family, other address, same container port twice.
    ['80 80/udp', [opt({ containerPort: 80 }), opt({ containerPort: 80, proto: 'udp' })]],
    [
      '0.0.0.0:80:80 [::]:80:80',
      [opt({ hostIp: '0.0.0.0', containerPort: 80 }), opt({ hostIp: '::', containerPort: 80 })],
    ],
    [
      '127.0.0.1:80:80 127.0.0.2:80:80',
      [opt({ hostIp: '127.0.0.1', containerPort: 80 }), opt({ hostIp: '127.0.0.2', containerPort: 80 })],
    ],
    ['8080:80 8081:80', [opt({ hostPort: 8080, containerPort: 80 }), opt({ hostPort: 8081, containerPort: 80 })]],
    ['8000-8001:80-81 8002:82', [
      opt({ hostPort: 8000, containerPort: 80, containerPortEnd: 81 }),
      opt({ hostPort: 8002, containerPort: 82 }),
    ]],
  ])('%j', (value, expected) => {
    expect(parseExpose(value)).toEqual(expected);
  });

  it('leaves hostIp out (not undefined-valued) when no host IP is given', () => {
    expect(Object.keys(parseExpose('80')[0] ?? {})).not.toContain('hostIp');
  });
});

describe('parseExpose rejects', () => {
  const F = 'com.example.expose';
  it.each<[string, string]>([
    // Empty value: an error rather than "nothing exposed".
    ['', `${F}: value "" names no port (leave the option out to expose nothing)`],
    [' , ', `${F}: value " , " names no port (leave the option out to expose nothing)`],
    // Out of range.
    ['70000', `${F}: item "70000" — port 70000 is out of range 1-65535`],
    ['0', `${F}: item "0" — port 0 is out of range 1-65535`],
    ['65536', `${F}: item "65536" — port 65536 is out of range 1-65535`],
    ['99999999999999999999', `${F}: item "99999999999999999999" — port 99999999999999999999 is out of range 1-65535`],
    ['0:80', `${F}: item "0:80" — host port 0 is out of range 1-65535`],
    ['8080:0', `${F}: item "8080:0" — container port 0 is out of range 1-65535`],
    ['8080:80-70000', `${F}: item "8080:80-70000" — container port 70000 is out of range 1-65535`],
    // Ranges.
    ['90-80', `${F}: item "90-80" — port range 90-80 is reversed`],
    ['9001-9000:90-91', `${F}: item "9001-9000:90-91" — host port range 9001-9000 is reversed`],
    ['8080-8081:80-82', `${F}: item "8080-8081:80-82" — host ports 8080-8081 and container ports 80-82 differ in length (2 vs 3)`],
    ['8080-8081:80', `${F}: item "8080-8081:80" — host ports 8080-8081 and container ports 80 differ in length (2 vs 1)`],
    ['8080:80-81', `${F}: item "8080:80-81" — host ports 8080 and container ports 80-81 differ in length (1 vs 2)`],
    // Protocols.
    ['80/icmp', `${F}: item "80/icmp" — unknown protocol "icmp" (expected tcp, udp or sctp)`],
    ['80/', `${F}: item "80/" — unknown protocol "" (expected tcp, udp or sctp)`],
    ['80/tcp/udp', `${F}: item "80/tcp/udp" — unknown protocol "tcp/udp" (expected tcp, udp or sctp)`],
    ['/tcp', `${F}: item "/tcp" — the port is empty`],
    // Junk, shell metacharacters included: plain junk, never anything else.
    ['abc', `${F}: item "abc" — port "abc" is not a port number or range`],
    ['80;rm -rf /', `${F}: item "80;rm" — port "80;rm" is not a port number or range`],
    ['$(x)', `${F}: item "$(x)" — port "$(x)" is not a port number or range`],
    ['`reboot`', `${F}: item "\`reboot\`" — port "\`reboot\`" is not a port number or range`],
    ['80&&id', `${F}: item "80&&id" — port "80&&id" is not a port number or range`],
    ['80|nc', `${F}: item "80|nc" — port "80|nc" is not a port number or range`],
    ['8080:80"', `${F}: item "8080:80\\"" — container port "80\\"" is not a port number or range`],
    ['-80', `${F}: item "-80" — port "-80" is not a port number or range`],
    ['80-', `${F}: item "80-" — port "80-" is not a port number or range`],
    ['+80', `${F}: item "+80" — port "+80" is not a port number or range`],
    ['1e3', `${F}: item "1e3" — port "1e3" is not a port number or range`],
    ['８０', `${F}: item "８０" — port "８０" is not a port number or range`],
    ['80:', `${F}: item "80:" — the container port is empty`],
    ['127.0.0.1::80', `${F}: item "127.0.0.1::80" — the host port is empty (an ephemeral host port is only available through Docker's -p)`],
    [':80', `${F}: item ":80" — the host IP is empty`],
    // Host IPs: hostnames, bad literals, unbracketed or malformed IPv6.
    ['localhost:8080:80', `${F}: item "localhost:8080:80" — host IP "localhost" is not an IP address (hostnames are not accepted; IPv6 goes in brackets)`],
    ['localhost:80', `${F}: item "localhost:80" — host IP "localhost" is not an IP address (hostnames are not accepted; IPv6 goes in brackets)`],
    ['example.com:80:80', `${F}: item "example.com:80:80" — host IP "example.com" is not an IP address (hostnames are not accepted; IPv6 goes in brackets)`],
    ['256.1.1.1:80:80', `${F}: item "256.1.1.1:80:80" — host IP "256.1.1.1" is not an IP address (hostnames are not accepted; IPv6 goes in brackets)`],
    ['010.0.0.1:80:80', `${F}: item "010.0.0.1:80:80" — host IP "010.0.0.1" is not an IP address (hostnames are not accepted; IPv6 goes in brackets)`],
    ['127.1:80:80', `${F}: item "127.1:80:80" — host IP "127.1" is not an IP address (hostnames are not accepted; IPv6 goes in brackets)`],
    ['::1:8080:80', `${F}: item "::1:8080:80" — too many ":" (an IPv6 host IP goes in brackets, e.g. [::1]:8080:80)`],
    ['1.2.3.4:5:6:7', `${F}: item "1.2.3.4:5:6:7" — too many ":" (an IPv6 host IP goes in brackets, e.g. [::1]:8080:80)`],
    ['[::1]:1:2:3', `${F}: item "[::1]:1:2:3" — too many ":"`],
    ['[::1]', `${F}: item "[::1]" — expected ":" and a port after the bracketed host IP`],
    ['[::1]8080:80', `${F}: item "[::1]8080:80" — expected ":" and a port after the bracketed host IP`],
    ['[::1:8080:80', `${F}: item "[::1:8080:80" — the "[" of the host IP is never closed`],
    ['[]:80:80', `${F}: item "[]:80:80" — the host IP is empty`],
    ['[127.0.0.1]:80:80', `${F}: item "[127.0.0.1]:80:80" — host IP "[127.0.0.1]" is not an IPv6 address`],
    ['[fe80::1%eth0]:80:80', `${F}: item "[fe80::1%eth0]:80:80" — host IP "[fe80::1%eth0]" is not an IPv6 address`],
    ['[gggg::1]:80:80', `${F}: item "[gggg::1]:80:80" — host IP "[gggg::1]" is not an IPv6 address`],
    ['[1::2::3]:80:80', `${F}: item "[1::2::3]:80:80" — host IP "[1::2::3]" is not an IPv6 address`],
    // The first bad item is reported, even after good ones.
    ['80 81 x', `${F}: item "x" — port "x" is not a port number or range`],
    // Duplicates and overlaps within one value name both items.
    ['80 80', `${F}: items "80" and "80" both publish host port 80/tcp on all addresses`],
    ['80 80/tcp', `${F}: items "80" and "80/tcp" both publish host port 80/tcp on all addresses`],
    ['80/UDP 80/udp', `${F}: items "80/UDP" and "80/udp" both publish host port 80/udp on all addresses`],
    ['8080:80 8080:81', `${F}: items "8080:80" and "8080:81" both publish host port 8080/tcp on all addresses`],
    ['0.0.0.0:80:80 127.0.0.1:80:81', `${F}: items "0.0.0.0:80:80" and "127.0.0.1:80:81" both publish host port 80/tcp on 127.0.0.1`],
    ['80 [::]:80:80', `${F}: items "80" and "[::]:80:80" both publish host port 80/tcp on [::]`],
    ['[::1]:80:80 [0:0::1]:80:81', `${F}: items "[::1]:80:80" and "[0:0::1]:80:81" both publish host port 80/tcp on [::1]`],
    ['127.0.0.1:80:80 [::ffff:7f00:1]:80:80', `${F}: items "127.0.0.1:80:80" and "[::ffff:7f00:1]:80:80" both publish host port 80/tcp on 127.0.0.1`],
    ['8000-8010:9000-9010 8005:90', `${F}: items "8000-8010:9000-9010" and "8005:90" both publish host port 8005/tcp on all addresses`],
  ])('%j', (value, message) => {
    const err = thrown(() => parseExpose(value));
    expect(err).toBeInstanceOf(ExposeError);
    expect((err as Error).message).toBe(message);
  });

  it('quotes a huge item only in part', () => {
    const item = 'x'.repeat(500);
    const message = (thrown(() => parseExpose(item)) as Error).message;
    expect(message).toMatch(/^com\.example\.expose: item "x{63}… \(502 characters\) — port "x{63}… \(502 characters\) is not/);
    expect(message.length).toBeLessThan(250);
  });

  it('escapes control characters in quoted items', () => {
    // Separators are whitespace; \u0007 is not, so it stays in the item and must not reach a log raw.
    const message = (thrown(() => parseExpose('80\u0007')) as Error).message;
    expect(message).toBe('com.example.expose: item "80\\u0007" — port "80\\u0007" is not a port number or range');
  });

  it('names the field it was given', () => {
    expect(() => parseExpose('0', 'Options["com.example.expose"]')).toThrow(
      'Options["com.example.expose"]: item "0" — port 0 is out of range 1-65535',
    );
  });

  it('refuses a value that is not a string', () => {
    expect(() => parseExpose(80 as unknown as string)).toThrow('com.example.expose: expected a string, got 80');
  });
});

describe('parseExpose: source allowlists (@SOURCE+SOURCE)', () => {
  it.each<[string, Exposure[]]>([
    ['80@10.0.0.0/8', [opt({ containerPort: 80, sources: ['10.0.0.0/8'] })]],
    ['8080:80/udp@192.0.2.7', [opt({ hostPort: 8080, containerPort: 80, proto: 'udp', sources: ['192.0.2.7/32'] })]],
    // Canonical: sorted IPv4 first, numerically; IPv6 RFC 5952; plain addresses get a full-length prefix.
    [
      '80@2001:DB8::/32+192.0.2.0/24+10.0.0.0/8+2001:db8:0:0::1',
      [opt({ containerPort: 80, sources: ['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32'] })],
    ],
    ['80@192.0.2.1+192.0.2.1', [opt({ containerPort: 80, sources: ['192.0.2.1/32'] })]],
    ['80@10.0.0.0/8+10.1.0.0/16', [opt({ containerPort: 80, sources: ['10.0.0.0/8'] })]],
    ['80@[2001:db8::]/32', [opt({ containerPort: 80, sources: ['2001:db8::/32'] })]],
    ['80@[2001:db8::1]', [opt({ containerPort: 80, sources: ['2001:db8::1/128'] })]],
    ['80@::ffff:10.0.0.0/104', [opt({ containerPort: 80, sources: ['10.0.0.0/8'] })]],
    ['80@0.0.0.0/0', [opt({ containerPort: 80, sources: ['0.0.0.0/0'] })]],
    // `any` is stored distinctly from "no list", so it overrides the network default.
    ['80@any', [opt({ containerPort: 80, sources: ['0.0.0.0/0', '::/0'] })]],
    ['80@ANY', [opt({ containerPort: 80, sources: ['0.0.0.0/0', '::/0'] })]],
    ['80@any+any', [opt({ containerPort: 80, sources: ['0.0.0.0/0', '::/0'] })]],
    [
      '[2001:db8::1]:8080:80/tcp@2001:db8:1::/48',
      [opt({ hostIp: '2001:db8::1', hostPort: 8080, containerPort: 80, sources: ['2001:db8:1::/48'] })],
    ],
    ['198.51.100.1:80@10.0.0.0/8', [opt({ hostIp: '198.51.100.1', containerPort: 80, sources: ['10.0.0.0/8'] })]],
    ['%eth0:80@10.0.0.0/8', [opt({ hostIface: 'eth0', containerPort: 80, sources: ['10.0.0.0/8'] })]],
    // Items are still separated by whitespace or commas around the sources.
    [
      '80@10.0.0.0/8, 443@any',
      [opt({ containerPort: 80, sources: ['10.0.0.0/8'] }), opt({ containerPort: 443, sources: ['0.0.0.0/0', '::/0'] })],
    ],
  ])('%j', (value, expected) => {
    expect(parseExpose(value)).toEqual(expected);
  });

  it('leaves sources out (not undefined-valued) when the item has no "@"', () => {
    expect(Object.keys(parseExpose('80')[0] ?? {})).not.toContain('sources');
  });

  const F = 'com.example.expose';
  it.each<[string, string]>([
    ['80@', `${F}: item "80@" — no source after "@"`],
    ['80@10.0.0.0/8+', `${F}: item "80@10.0.0.0/8+" — a source is empty (sources are joined by a single "+")`],
    ['80@10.0.0.0/8++192.0.2.0/24', `${F}: item "80@10.0.0.0/8++192.0.2.0/24" — a source is empty (sources are joined by a single "+")`],
    ['80@a@b', `${F}: item "80@a@b" — more than one "@" (join sources with "+", e.g. 80@10.0.0.0/8+192.0.2.0/24)`],
    ['80@10.1.2.3/8', `${F}: item "80@10.1.2.3/8" — source "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`],
    ['80@2001:db8::1/32', `${F}: item "80@2001:db8::1/32" — source "2001:db8::1/32" has host bits set; did you mean 2001:db8::/32?`],
    ['80@10.0.0.0/33', `${F}: item "80@10.0.0.0/33" — source "10.0.0.0/33" has an invalid prefix length "33" (IPv4 allows 0 to 32)`],
    ['80@10.0.0.0/08', `${F}: item "80@10.0.0.0/08" — source "10.0.0.0/08" has an invalid prefix length "08" (IPv4 allows 0 to 32)`],
    ['80@10.0.0.0/', `${F}: item "80@10.0.0.0/" — source "10.0.0.0/" has an invalid prefix length "" (IPv4 allows 0 to 32)`],
    ['80@office', `${F}: item "80@office" — source "office" is not an IP address or CIDR (hostnames are not accepted)`],
    ['80@10.0.0.0/8+any', `${F}: item "80@10.0.0.0/8+any" — "any" is mixed with addresses (any already allows every source; keep one or the other)`],
    ['80@ANY+10.0.0.0/8', `${F}: item "80@ANY+10.0.0.0/8" — "ANY" is mixed with addresses (any already allows every source; keep one or the other)`],
    ['127.0.0.1:80@10.0.0.0/8', `${F}: item "127.0.0.1:80@10.0.0.0/8" — sources do not apply to loopback host IP "127.0.0.1": only this host's own processes reach it, and they are never filtered`],
    ['127.0.0.5:80@any', `${F}: item "127.0.0.5:80@any" — sources do not apply to loopback host IP "127.0.0.5": only this host's own processes reach it, and they are never filtered`],
    ['[::1]:80@::1', `${F}: item "[::1]:80@::1" — sources do not apply to loopback host IP "::1": only this host's own processes reach it, and they are never filtered`],
    // The item's other errors still come through with sources present.
    ['0@10.0.0.0/8', `${F}: item "0@10.0.0.0/8" — port 0 is out of range 1-65535`],
    ['80/icmp@10.0.0.0/8', `${F}: item "80/icmp@10.0.0.0/8" — unknown protocol "icmp" (expected tcp, udp or sctp)`],
    // Sources never make two items on one host port different: one port leads to one place.
    ['80@10.0.0.0/8 80@192.0.2.0/24', `${F}: items "80@10.0.0.0/8" and "80@192.0.2.0/24" both publish host port 80/tcp on all addresses`],
    ['80 80@any', `${F}: items "80" and "80@any" both publish host port 80/tcp on all addresses`],
  ])('refuses %j', (value, message) => {
    const err = thrown(() => parseExpose(value));
    expect(err).toBeInstanceOf(ExposeError);
    expect((err as Error).message).toBe(message);
  });
});

describe('parseExpose: interface binding (%IFNAME)', () => {
  it.each<[string, Exposure[]]>([
    ['%eth0:8080:80', [opt({ hostIface: 'eth0', hostPort: 8080, containerPort: 80 })]],
    ['%eth0:80', [opt({ hostIface: 'eth0', containerPort: 80 })]],
    ['%wlp3s0:9000-9001:90-91/udp', [opt({ hostIface: 'wlp3s0', hostPort: 9000, containerPort: 90, containerPortEnd: 91, proto: 'udp' })]],
    ['%eth0.100:80', [opt({ hostIface: 'eth0.100', containerPort: 80 })]],
    ['%br-0a1b_c:80', [opt({ hostIface: 'br-0a1b_c', containerPort: 80 })]],
    ['%_x:80', [opt({ hostIface: '_x', containerPort: 80 })]],
    ['%a23456789012345:80', [opt({ hostIface: 'a23456789012345', containerPort: 80 })]],
    // Kept as given: Linux interface names are case-sensitive.
    ['%WAN:80', [opt({ hostIface: 'WAN', containerPort: 80 })]],
    // Two interfaces, or an interface and loopback, do not meet.
    ['%eth0:80 %eth1:80', [opt({ hostIface: 'eth0', containerPort: 80 }), opt({ hostIface: 'eth1', containerPort: 80 })]],
    ['%eth0:80 127.0.0.1:80:80 [::1]:80:80', [
      opt({ hostIface: 'eth0', containerPort: 80 }),
      opt({ hostIp: '127.0.0.1', containerPort: 80 }),
      opt({ hostIp: '::1', containerPort: 80 }),
    ]],
    ['%eth0:80 %eth0:80/udp', [opt({ hostIface: 'eth0', containerPort: 80 }), opt({ hostIface: 'eth0', containerPort: 80, proto: 'udp' })]],
  ])('%j', (value, expected) => {
    expect(parseExpose(value)).toEqual(expected);
  });

  const F = 'com.example.expose';
  const badName = (name: string) =>
    `${F}: item "%${name}:80" — interface name "${name}" is not valid (1-15 characters of A-Z a-z 0-9 _ . -, not starting with "-" or ".")`;
  it.each<[string, string]>([
    ['%eth0', `${F}: item "%eth0" — expected ":" and a port after the interface name (e.g. %eth0:8080:80)`],
    ['%:80', `${F}: item "%:80" — the interface name after "%" is empty`],
    ['%eth0:1:2:3', `${F}: item "%eth0:1:2:3" — too many ":"`],
    ['%eth0::80', `${F}: item "%eth0::80" — the host port is empty (an ephemeral host port is only available through Docker's -p)`],
    ['%eth0:', `${F}: item "%eth0:" — the port is empty`],
    ['%a234567890123456:80', badName('a234567890123456')],
    ['%-eth0:80', badName('-eth0')],
    ['%.eth0:80', badName('.eth0')],
    ['%eth/0:80', `${F}: item "%eth/0:80" — unknown protocol "0:80" (expected tcp, udp or sctp)`],
    ['%eth 0:80', `${F}: item "%eth" — expected ":" and a port after the interface name (e.g. %eth0:8080:80)`],
    ['%eth$0:80', badName('eth$0')],
    ['%eth0%1:80', badName('eth0%1')],
    ['%ethé:80', badName('ethé')],
    ['%lo:80', `${F}: item "%lo:80" — %lo would never match: use 127.0.0.1 or [::1] to expose to this host's own processes`],
    // Conflicts within one value.
    ['%eth0:80 %eth0:80:81', `${F}: items "%eth0:80" and "%eth0:80:81" both publish host port 80/tcp on %eth0`],
    ['%eth0:80@10.0.0.0/8 %eth0:80@any', `${F}: items "%eth0:80@10.0.0.0/8" and "%eth0:80@any" both publish host port 80/tcp on %eth0`],
    ['80 %eth0:80', `${F}: items "80" and "%eth0:80" both publish host port 80/tcp on %eth0`],
    ['0.0.0.0:80:80 %eth0:80', `${F}: items "0.0.0.0:80:80" and "%eth0:80" both publish host port 80/tcp on the IPv4 addresses of %eth0`],
    ['%eth0:80 [::]:80:80', `${F}: items "%eth0:80" and "[::]:80:80" both publish host port 80/tcp on the IPv6 addresses of %eth0`],
    [
      '%eth0:80 198.51.100.1:80:80',
      `${F}: items "%eth0:80" and "198.51.100.1:80:80" both publish host port 80/tcp on 198.51.100.1 ` +
        '(198.51.100.1 may be an address of eth0: an interface binding holds its port on every address that is not loopback)',
    ],
    [
      '[2001:db8::1]:80:80 %eth0:80',
      `${F}: items "[2001:db8::1]:80:80" and "%eth0:80" both publish host port 80/tcp on [2001:db8::1] ` +
        '([2001:db8::1] may be an address of eth0: an interface binding holds its port on every address that is not loopback)',
    ],
  ])('refuses %j', (value, message) => {
    const err = thrown(() => parseExpose(value));
    expect(err).toBeInstanceOf(ExposeError);
    expect((err as Error).message).toBe(message);
  });
});

describe('parseExpose properties', () => {
  const octet = fc.integer({ min: 0, max: 255 });
  const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
  const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16).toUpperCase()).join(':'));
  const source = fc.oneof(
    v4,
    v6,
    fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${a}/${p}`),
    fc.tuple(v6, fc.integer({ min: 0, max: 128 })).map(([a, p]) => `${a}/${p}`),
    fc.constantFrom('any', 'ANY', '10.0.0.0/8', '2001:DB8::/32'),
  );
  const port = fc.integer({ min: 1, max: 65535 });
  const item = fc.record({
    host: fc.constantFrom('', '127.0.0.1:', '[::1]:', '0.0.0.0:', '[::]:', '[2001:DB8::1]:', '198.51.100.1:', '%eth0:', '%ETH1:'),
    hostPort: fc.option(port, { nil: undefined }),
    containerPort: port,
    proto: fc.constantFrom('', '/tcp', '/UDP', '/Sctp'),
    sources: fc.option(fc.array(source, { minLength: 1, maxLength: 4 }), { nil: undefined }),
  }).map((i) => `${i.host}${i.hostPort === undefined ? '' : `${i.hostPort}:`}${i.containerPort}${i.proto}${i.sources ? `@${i.sources.join('+')}` : ''}`);
  const value = fc.array(item, { minLength: 1, maxLength: 4 }).map((items) => items.join(' '));

  function outcome(text: string): { ok: Exposure[] } | { error: string } {
    try {
      return { ok: parseExpose(text) };
    } catch (err) {
      expect(err).toBeInstanceOf(ExposeError);
      return { error: (err as Error).message };
    }
  }

  it('parses lower-cased input the same, interface names aside (Docker lower-cases --network values)', () => {
    fc.assert(
      fc.property(value, (text) => {
        const lowered = text.toLowerCase();
        const [a, b] = [outcome(text), outcome(lowered)];
        expect('ok' in a).toBe('ok' in b);
        if ('ok' in a && 'ok' in b) {
          expect(b.ok).toEqual(a.ok.map((x) => (x.hostIface === undefined ? x : { ...x, hostIface: x.hostIface.toLowerCase() })));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps sources canonical: sorted, IPv4 first, no entry covered by another, stable on re-parse', () => {
    fc.assert(
      fc.property(value, (text) => {
        const r = outcome(text);
        if (!('ok' in r)) return;
        for (const x of r.ok) {
          if (x.sources === undefined) continue;
          expect(x.sources.length).toBeGreaterThan(0);
          const families = x.sources.map((s) => (s.includes(':') ? 6 : 4));
          expect(families).toEqual([...families].sort());
          // Re-parsing the canonical text gives the same list.
          const again = parseExpose(`80@${x.sources.join('+')}`)[0]!.sources;
          expect(again).toEqual(x.sources);
          for (const s of x.sources) expect(s).toBe(s.toLowerCase());
        }
      }),
      { numRuns: 500 },
    );
  });

  it('throws nothing but ExposeError on junk built from the grammar\'s own characters', () => {
    const junk = fc.string({ unit: fc.constantFrom(...'0123456789:[]%@+/-.abcdefANYtcpudpsctpeth, '.split('')), maxLength: 40 });
    fc.assert(fc.property(junk, (text) => void outcome(text)), { numRuns: 2000 });
  });
});
