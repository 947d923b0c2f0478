import { describe, expect, it } from 'vitest';
import { formatExposure } from '../../../src/expose/format.js';
import { parsePortmap, samePublishSet } from '../../../src/expose/portmap.js';
import { ExposeError, hostPortToPick, type Exposure } from '../../../src/expose/types.js';

function pub(p: Partial<Exposure> & { hostPort: number; containerPort: number }): Exposure {
  return { hostPortEnd: p.hostPort, containerPortEnd: p.containerPort, proto: 'tcp', origin: 'publish', ...p };
}

function binding(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080, ...over };
}

// Verbatim from docker-remote-driver-trace.txt: `-p 8080:80 -p 127.0.0.1:8443:443/udp`, in CreateEndpoint
// (and, here identical, Join and ProgramExternalConnectivity).
const TRACE_PR1 = JSON.parse(
  '[{"Proto":17,"IP":"","Port":443,"HostIP":"127.0.0.1","HostPort":8443,"HostPortEnd":8443},' +
    '{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]',
) as unknown;

describe('parsePortmap accepts', () => {
  it('the portmap of the trace', () => {
    expect(parsePortmap(TRACE_PR1, 'com.docker.network.portmap')).toEqual([
      pub({ hostIp: '127.0.0.1', hostPort: 8443, containerPort: 443, proto: 'udp' }),
      pub({ hostPort: 8080, containerPort: 80 }),
    ]);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['[] (the trace, pr2)', []],
  ])('%s as nothing published', (_, raw) => {
    expect(parsePortmap(raw, 'com.docker.network.portmap')).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, Exposure]>([
    ['sctp', binding({ Proto: 132 }), pub({ hostPort: 8080, containerPort: 80, proto: 'sctp' })],
    ['HostIP "0.0.0.0" as IPv4-wide', binding({ HostIP: '0.0.0.0' }), pub({ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 })],
    ['HostIP "::" as IPv6-wide', binding({ HostIP: '::' }), pub({ hostIp: '::', hostPort: 8080, containerPort: 80 })],
    ['HostIP canonicalised', binding({ HostIP: '2001:DB8:0::1' }), pub({ hostIp: '2001:db8::1', hostPort: 8080, containerPort: 80 })],
    ['HostIP null as all addresses', binding({ HostIP: null }), pub({ hostPort: 8080, containerPort: 80 })],
    ['HostPortEnd 0 as a single port', binding({ HostPortEnd: 0 }), pub({ hostPort: 8080, containerPort: 80 })],
    // `-p 80` / `-P`: ephemeral.
    ['HostPort 0 as ephemeral', binding({ HostPort: 0, HostPortEnd: 0 }), pub({ hostPort: 0, hostPortEnd: 0, containerPort: 80 })],
    // `-p 8000-8010:80`: one port of the range, kept as a longer host range over one container port.
    ['a host range for one container port', binding({ HostPort: 8000, HostPortEnd: 8010 }), pub({ hostPort: 8000, hostPortEnd: 8010, containerPort: 80 })],
    // Go's encoding/json: missing fields are zero values, keys match case-insensitively, extra keys ignored.
    ['missing optional fields', { Proto: 6, Port: 80 }, pub({ hostPort: 0, hostPortEnd: 0, containerPort: 80 })],
    ['lower-cased keys', { proto: 17, ip: '', port: 53, hostip: '127.0.0.1', hostport: 5353, hostportend: 5353 }, pub({ hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, proto: 'udp' })],
    ['unknown keys', binding({ Future: true }), pub({ hostPort: 8080, containerPort: 80 })],
  ])('%s', (_, raw, expected) => {
    expect(parsePortmap([raw], 'com.docker.network.portmap')).toEqual([expected]);
  });

  it('marks ephemeral and range-pick bindings as still to be picked, and nothing else', () => {
    const [ephemeral, pick, fixed] = parsePortmap(
      [binding({ HostPort: 0, HostPortEnd: 0 }), binding({ HostPort: 8000, HostPortEnd: 8010 }), binding()],
      'pm',
    ) as [Exposure, Exposure, Exposure];
    expect([hostPortToPick(ephemeral), hostPortToPick(pick), hostPortToPick(fixed)]).toEqual([true, true, false]);
    expect(formatExposure(pick)).toBe('*:?8000-8010→80/tcp');
  });
});

describe('parsePortmap rejects', () => {
  const F = 'com.docker.network.portmap';
  it.each<[string, unknown, string]>([
    ['an object', {}, `${F}: expected an array of port bindings, got {}`],
    ['a string', '8080:80', `${F}: expected an array of port bindings, got "8080:80"`],
    ['a non-object element', [5], `${F}[0]: expected a port binding object, got 5`],
    ['a null element', [binding(), null], `${F}[1]: expected a port binding object, got null`],
    ['an array element', [[]], `${F}[0]: expected a port binding object, got []`],
    ['missing Proto', [{ Port: 80 }], `${F}[0].Proto: missing`],
    ['ICMP', [binding({ Proto: 1 })], `${F}[0].Proto: 1 is not tcp (6), udp (17) or sctp (132)`],
    ['a Proto name', [binding({ Proto: 'tcp' })], `${F}[0].Proto: "tcp" is not tcp (6), udp (17) or sctp (132)`],
    ['missing Port', [{ Proto: 6 }], `${F}[0].Port: missing`],
    ['Port 0', [binding({ Port: 0 })], `${F}[0].Port: 0 is out of range 1-65535`],
    ['Port 70000', [binding({ Port: 70000 })], `${F}[0].Port: 70000 is out of range 1-65535`],
    ['a fractional Port', [binding({ Port: 80.5 })], `${F}[0].Port: expected an integer port, got 80.5`],
    ['a string Port', [binding({ Port: '80' })], `${F}[0].Port: expected an integer port, got "80"`],
    ['HostPort 70000', [binding(), binding({ HostPort: 70000 })], `${F}[1].HostPort: 70000 is out of range 0-65535`],
    ['a negative HostPort', [binding({ HostPort: -1 })], `${F}[0].HostPort: -1 is out of range 0-65535`],
    ['HostPortEnd below HostPort', [binding({ HostPort: 8080, HostPortEnd: 8000 })], `${F}[0].HostPortEnd: 8000 is below HostPort 8080`],
    ['HostPortEnd without HostPort', [binding({ HostPort: 0, HostPortEnd: 5 })], `${F}[0].HostPortEnd: 5 given without a HostPort (HostPort is 0)`],
    ['HostPortEnd 65536', [binding({ HostPortEnd: 65536 })], `${F}[0].HostPortEnd: 65536 is out of range 0-65535`],
    ['a hostname HostIP', [binding({ HostIP: 'localhost' })], `${F}[0].HostIP: "localhost" is not an IP address`],
    ['a bracketed HostIP', [binding({ HostIP: '[::1]' })], `${F}[0].HostIP: "[::1]" is not an IP address`],
    ['a numeric HostIP', [binding({ HostIP: 5 })], `${F}[0].HostIP: 5 is not an IP address`],
    ['a junk IP', [binding({ IP: '$(x)' })], `${F}[0].IP: "$(x)" is not an IP address`],
  ])('%s', (_, raw, message) => {
    expect(() => parsePortmap(raw, F)).toThrow(ExposeError);
    expect(() => parsePortmap(raw, F)).toThrow(message);
  });

  it('names the field path it was given', () => {
    expect(() => parsePortmap([binding({ Port: 0 })], 'Join.Options["com.docker.network.portmap"]')).toThrow(
      'Join.Options["com.docker.network.portmap"][0].Port: 0 is out of range 1-65535',
    );
  });
});

describe('samePublishSet', () => {
  const a = pub({ hostPort: 8080, containerPort: 80 });
  const b = pub({ hostIp: '127.0.0.1', hostPort: 8443, containerPort: 443, proto: 'udp' });
  const c = pub({ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 });

  it('matches CreateEndpoint, Join and ProgramExternalConnectivity of the trace, in any order', () => {
    const create = parsePortmap(TRACE_PR1, 'CreateEndpoint');
    const join = parsePortmap(TRACE_PR1, 'Join');
    expect(samePublishSet(create, join)).toBe(true);
    expect(samePublishSet(create, [...join].reverse())).toBe(true);
  });

  it.each<[string, Exposure[], Exposure[], boolean]>([
    ['both empty', [], [], true],
    ['empty vs one', [], [a], false],
    ['all addresses vs IPv4 only', [a], [c], false],
    ['a repeat counts', [a, a], [a], false],
    ['same length, other members', [a, a], [a, b], false],
    ['same members, other order', [a, b, c], [c, a, b], true],
    ['option vs publish', [a], [{ ...a, origin: 'option' }], false],
  ])('%s', (_, x, y, same) => {
    expect(samePublishSet(x, y)).toBe(same);
    expect(samePublishSet(y, x)).toBe(same);
  });
});
