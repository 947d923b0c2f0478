import { describe, expect, it } from 'vitest';
import { describeAddress, describeHost, formatExposure, quote } from '../../../src/expose/format.js';
import { parseExpose } from '../../../src/expose/grammar.js';
import type { Exposure } from '../../../src/expose/types.js';

function ex(p: Partial<Exposure> & { hostPort: number; containerPort: number }): Exposure {
  return { hostPortEnd: p.hostPort, containerPortEnd: p.containerPort, proto: 'tcp', origin: 'publish', ...p };
}

describe('formatExposure', () => {
  it.each<[Exposure, string]>([
    [ex({ hostPort: 8080, containerPort: 80 }), '*:8080→80/tcp'],
    [ex({ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 }), '0.0.0.0:8080→80/tcp'],
    [ex({ hostIp: '127.0.0.1', hostPort: 8082, containerPort: 80 }), '127.0.0.1:8082→80/tcp'],
    [ex({ hostIp: '::1', hostPort: 9000, hostPortEnd: 9001, containerPort: 90, containerPortEnd: 91, proto: 'udp' }), '[::1]:9000-9001→90-91/udp'],
    [ex({ hostIp: '::', hostPort: 80, containerPort: 80, proto: 'sctp' }), '[::]:80→80/sctp'],
    [ex({ hostPort: 0, hostPortEnd: 0, containerPort: 80 }), '*:?→80/tcp'],
    [ex({ hostIp: '127.0.0.1', hostPort: 8000, hostPortEnd: 8010, containerPort: 80 }), '127.0.0.1:?8000-8010→80/tcp'],
    [ex({ hostIface: 'eth0', hostPort: 8080, containerPort: 80 }), '%eth0:8080→80/tcp'],
    [ex({ hostIface: 'WAN.7', hostPort: 53, containerPort: 53, proto: 'udp' }), '%WAN.7:53→53/udp'],
    [ex({ hostPort: 8080, containerPort: 80, sources: ['10.0.0.0/8', '2001:db8::/32'] }), '*:8080→80/tcp@10.0.0.0/8+2001:db8::/32'],
    [ex({ hostIface: 'eth0', hostPort: 8080, containerPort: 80, sources: ['192.0.2.1/32'] }), '%eth0:8080→80/tcp@192.0.2.1/32'],
    [ex({ hostPort: 8080, containerPort: 80, sources: ['0.0.0.0/0', '::/0'] }), '*:8080→80/tcp@any'],
    [ex({ hostPort: 8080, containerPort: 80, sources: ['0.0.0.0/0'] }), '*:8080→80/tcp@0.0.0.0/0'],
  ])('%j → %s', (exposure, text) => {
    expect(formatExposure(exposure)).toBe(text);
  });

  it.each<[string, string]>([
    ['80', '*:80→80/tcp'],
    ['8081:81', '*:8081→81/tcp'],
    ['127.0.0.1:8443:443/UDP', '127.0.0.1:8443→443/udp'],
    ['[2001:DB8:0::1]:9000-9001:90-91/sctp', '[2001:db8::1]:9000-9001→90-91/sctp'],
    ['%eth0:8080:80', '%eth0:8080→80/tcp'],
    ['%eth0:80/udp@2001:DB8::/32+10.0.0.0/8', '%eth0:80→80/udp@10.0.0.0/8+2001:db8::/32'],
    ['80@ANY', '*:80→80/tcp@any'],
  ])('shows the option item %j as %s', (item, text) => {
    expect(parseExpose(item).map(formatExposure)).toEqual([text]);
  });
});

describe('describeAddress', () => {
  it.each<[string | undefined, string]>([
    [undefined, 'all addresses'],
    ['0.0.0.0', '0.0.0.0'],
    ['::', '[::]'],
    ['10.1.2.3', '10.1.2.3'],
  ])('%s → %s', (hostIp, text) => {
    expect(describeAddress(hostIp)).toBe(text);
  });
});

describe('describeHost', () => {
  it.each<[Partial<Exposure>, string]>([
    [{}, 'all addresses'],
    [{ hostIp: '::1' }, '[::1]'],
    [{ hostIface: 'eth0' }, '%eth0'],
  ])('%j → %s', (host, text) => {
    expect(describeHost(host)).toBe(text);
  });
});

describe('quote', () => {
  it.each<[unknown, string]>([
    ['80', '"80"'],
    ['a"b', '"a\\"b"'],
    ['line\nbreak', '"line\\nbreak"'],
    [80, '80'],
    [null, 'null'],
    [undefined, 'undefined'],
    [{ a: 1 }, '{"a":1}'],
    ['y'.repeat(100), `"${'y'.repeat(63)}… (102 characters)`],
  ])('%j → %s', (value, text) => {
    expect(quote(value)).toBe(text);
  });

  it('survives values JSON cannot write', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(quote(circular)).toBe('[object Object]');
    expect(quote(10n)).toBe('10');
  });
});
