import { describe, expect, it } from 'vitest';
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
