import { describe, expect, it } from 'vitest';
import { OptionError, parseNetworkOptions } from '../../../src/network/options.js';

const FROM = 'com.example.expose.from';

describe('parseNetworkOptions', () => {
  it('defaults: icc and masquerade on, no default allowlist', () => {
    const opts = parseNetworkOptions(undefined);
    expect(opts).toEqual({ icc: true, masquerade: true, raw: {} });
    expect(Object.keys(opts)).not.toContain('exposeFrom');
  });

  it.each<[string, string[] | undefined]>([
    ['10.0.0.0/8', ['10.0.0.0/8']],
    // Whitespace, commas and '+' all separate, and the list comes out canonical.
    ['2001:DB8::/32 10.0.0.0/8', ['10.0.0.0/8', '2001:db8::/32']],
    ['192.0.2.0/24,10.0.0.0/8', ['10.0.0.0/8', '192.0.2.0/24']],
    ['192.0.2.0/24+10.0.0.0/8', ['10.0.0.0/8', '192.0.2.0/24']],
    [' 192.0.2.0/24 , 10.0.0.0/8\t+ 198.51.100.7 ', ['10.0.0.0/8', '192.0.2.0/24', '198.51.100.7/32']],
    ['10.0.0.0/8 10.0.0.0/8 10.2.0.0/16', ['10.0.0.0/8']],
    // `any` is the same as no option: nothing to override.
    ['any', undefined],
    ['ANY', undefined],
  ])('reads %s=%j', (value, exposeFrom) => {
    const opts = parseNetworkOptions({ [FROM]: value });
    expect(opts.exposeFrom).toEqual(exposeFrom);
    expect(opts.raw).toEqual({ [FROM]: value });
  });

  it('takes the key in any case, as the other options', () => {
    expect(parseNetworkOptions({ 'Com.Example.Expose.From': '10.0.0.0/8' }).exposeFrom).toEqual(['10.0.0.0/8']);
  });

  it.each<[string, string]>([
    ['', `network option ${FROM}="": no source is given`],
    [' , ', `network option ${FROM}=" , ": no source is given`],
    ['10.1.2.3/8', `network option ${FROM}="10.1.2.3/8": source "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`],
    ['office.example.com', `network option ${FROM}="office.example.com": source "office.example.com" is not an IP address or CIDR (hostnames are not accepted)`],
    ['any 10.0.0.0/8', `network option ${FROM}="any 10.0.0.0/8": "any" is mixed with addresses (any already allows every source; keep one or the other)`],
    ['10.0.0.0/40', `network option ${FROM}="10.0.0.0/40": source "10.0.0.0/40" has an invalid prefix length "40" (IPv4 allows 0 to 32)`],
  ])('refuses %j, naming the option and the value', (value, message) => {
    let err: unknown;
    try {
      parseNetworkOptions({ [FROM]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionError);
    expect((err as Error).message).toBe(message);
  });

  it('still refuses unknown com.example.* keys, and lists expose.from among the known ones', () => {
    expect(() => parseNetworkOptions({ 'com.example.expose.fromm': '10.0.0.0/8' })).toThrow(
      'unknown network option com.example.expose.fromm; portnet knows com.example.icc, com.example.masquerade, com.example.expose.from',
    );
    expect(() => parseNetworkOptions({ 'com.example.expose': '80' })).toThrow(OptionError);
  });

  it('keeps reading icc and masquerade beside it', () => {
    expect(parseNetworkOptions({ 'com.example.icc': 'off', [FROM]: '10.0.0.0/8' })).toMatchObject({
      icc: false,
      masquerade: true,
      exposeFrom: ['10.0.0.0/8'],
    });
    expect(() => parseNetworkOptions({ 'com.example.icc': 'maybe' })).toThrow('network option com.example.icc="maybe" must be true or false');
  });
});
