import { describe, expect, it } from 'vitest';
import { allowsAnySource, ANY_SOURCES, effectiveSources, formatSources, parseSources } from '../../../src/expose/sources.js';

const fail = (why: string) => new Error(why);
const parse = (...texts: string[]) => parseSources(texts, fail);

describe('parseSources', () => {
  it.each<[string[], string[] | 'any']>([
    [['10.0.0.0/8'], ['10.0.0.0/8']],
    [['192.0.2.7'], ['192.0.2.7/32']],
    [['2001:DB8::1'], ['2001:db8::1/128']],
    [['2001:0db8:0000::/32'], ['2001:db8::/32']],
    [['[2001:db8::]/32'], ['2001:db8::/32']],
    [['[2001:db8::/32]'], ['2001:db8::/32']],
    [['0.0.0.0/0'], ['0.0.0.0/0']],
    [['::/0'], ['::/0']],
    [['0.0.0.0/0', '::/0'], ['0.0.0.0/0', '::/0']],
    // Sorted: IPv4 before IPv6, then by address, then by prefix; repeats and covered entries dropped.
    [['2001:db8::/32', '198.51.100.0/24', '10.0.0.0/8', '192.0.2.0/24'], ['10.0.0.0/8', '192.0.2.0/24', '198.51.100.0/24', '2001:db8::/32']],
    [['10.0.0.0/8', '10.0.0.0/8'], ['10.0.0.0/8']],
    [['10.1.0.0/16', '10.0.0.0/8', '10.255.255.255'], ['10.0.0.0/8']],
    [['10.0.0.0/9', '10.128.0.0/9'], ['10.0.0.0/9', '10.128.0.0/9']],
    [['2001:db8:1::/48', '2001:db8::/32'], ['2001:db8::/32']],
    // IPv4-mapped IPv6 is IPv4, as for host IPs.
    [['::ffff:192.0.2.1'], ['192.0.2.1/32']],
    [['::ffff:10.0.0.0/104'], ['10.0.0.0/8']],
    [['::ffff:0:0/96'], ['0.0.0.0/0']],
    [['any'], 'any'],
    [['Any', 'ANY'], 'any'],
  ])('%j → %j', (texts, expected) => {
    expect(parse(...texts)).toEqual(expected);
  });

  it.each<[string[], string]>([
    [[], 'no source is given'],
    [[''], 'a source is empty (sources are joined by a single "+")'],
    [['10.1.2.3/8'], 'source "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?'],
    [['192.0.2.1/24'], 'source "192.0.2.1/24" has host bits set; did you mean 192.0.2.0/24?'],
    [['2001:db8::1/64'], 'source "2001:db8::1/64" has host bits set; did you mean 2001:db8::/64?'],
    [['::ffff:10.1.0.0/104'], 'source "::ffff:10.1.0.0/104" has host bits set; did you mean 10.0.0.0/8?'],
    [['10.0.0.0/33'], 'source "10.0.0.0/33" has an invalid prefix length "33" (IPv4 allows 0 to 32)'],
    [['::/129'], 'source "::/129" has an invalid prefix length "129" (IPv6 allows 0 to 128)'],
    [['10.0.0.0/-1'], 'source "10.0.0.0/-1" has an invalid prefix length "-1" (IPv4 allows 0 to 32)'],
    [['10.0.0.0/8/8'], 'source "10.0.0.0/8/8" has an invalid prefix length "8/8" (IPv4 allows 0 to 32)'],
    [['10.0.0.256'], 'source "10.0.0.256" is not an IP address or CIDR (hostnames are not accepted)'],
    [['010.0.0.0/8'], 'source "010.0.0.0/8" is not an IP address or CIDR (hostnames are not accepted)'],
    [['example.com'], 'source "example.com" is not an IP address or CIDR (hostnames are not accepted)'],
    [['fe80::1%eth0'], 'source "fe80::1%eth0" is not an IP address or CIDR (hostnames are not accepted)'],
    [['[]'], 'source "[]" is not an IP address or CIDR (hostnames are not accepted)'],
    [['[10.0.0.1]'], 'source "[10.0.0.1]": only IPv6 may be written in brackets'],
    [['anything'], 'source "anything" is not an IP address or CIDR (hostnames are not accepted)'],
    [['any', '10.0.0.0/8'], '"any" is mixed with addresses (any already allows every source; keep one or the other)'],
    [['10.0.0.0/8', 'ANY'], '"ANY" is mixed with addresses (any already allows every source; keep one or the other)'],
  ])('refuses %j', (texts, message) => {
    expect(() => parse(...texts)).toThrow(message);
  });

  it('quotes a hostile source safely', () => {
    expect(() => parse('\u001b[2J')).toThrow('source "\\u001b[2J" is not an IP address or CIDR');
  });
});

describe('allowsAnySource and formatSources', () => {
  it('treats no list and the any list as any', () => {
    expect(allowsAnySource(undefined)).toBe(true);
    expect(allowsAnySource([...ANY_SOURCES])).toBe(true);
    expect(allowsAnySource(['0.0.0.0/0'])).toBe(false);
    expect(allowsAnySource(['::/0', '0.0.0.0/0'])).toBe(false);
    expect(formatSources([...ANY_SOURCES])).toBe('any');
    expect(formatSources(['10.0.0.0/8', '2001:db8::/32'])).toBe('10.0.0.0/8+2001:db8::/32');
  });
});

describe('effectiveSources', () => {
  it("is the item's own list, else the network default, and never anything for a loopback exposure", () => {
    expect(effectiveSources({ sources: ['192.0.2.0/24'] }, ['10.0.0.0/8'])).toEqual({ sources: ['192.0.2.0/24'], from: 'item' });
    expect(effectiveSources({}, ['10.0.0.0/8'])).toEqual({ sources: ['10.0.0.0/8'], from: 'network' });
    expect(effectiveSources({}, undefined)).toBeUndefined();
    expect(effectiveSources({ hostIp: '127.0.0.1' }, ['10.0.0.0/8'])).toBeUndefined();
    expect(effectiveSources({ hostIp: '::1' }, ['10.0.0.0/8'])).toBeUndefined();
  });
});
