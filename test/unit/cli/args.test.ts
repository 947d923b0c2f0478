import { describe, expect, it } from 'vitest';
import { parseClientFlags, splitServeExtras } from '../../../src/cli/args.js';
import { ConfigError } from '../../../src/config.js';
import { defaultLogFormat } from '../../../src/logging.js';

describe('CLI flags', () => {
  it('ls/inspect/doctor take --socket (or PORTNET_SOCKET) and --json', () => {
    expect(parseClientFlags([], {})).toEqual({ socket: '/run/docker/plugins/portnet.sock', json: false, positionals: [] });
    expect(parseClientFlags(['--json'], { PORTNET_SOCKET: '/run/x.sock' })).toMatchObject({ socket: '/run/x.sock', json: true });
    expect(parseClientFlags(['--socket', '/run/y.sock'], { PORTNET_SOCKET: '/run/x.sock' }).socket).toBe('/run/y.sock');
    expect(parseClientFlags(['web', '--json'], {}, 1)).toMatchObject({ positionals: ['web'], json: true });
    expect(() => parseClientFlags(['--frob'], {})).toThrow(ConfigError);
    expect(() => parseClientFlags(['extra'], {})).toThrow('unexpected argument "extra"');
  });

  it('serve takes --metrics-port (or PORTNET_METRICS_PORT) out and leaves the rest to loadConfig', () => {
    expect(splitServeExtras(['--socket', '/s', '--metrics-port', '9464', '--mtu', '1400'], {})).toEqual({
      extras: { metricsPort: 9464 },
      rest: ['--socket', '/s', '--mtu', '1400'],
    });
    expect(splitServeExtras(['--metrics-port=9100'], {})).toEqual({ extras: { metricsPort: 9100 }, rest: [] });
    expect(splitServeExtras([], { PORTNET_METRICS_PORT: '9200' }).extras).toEqual({ metricsPort: 9200 });
    expect(splitServeExtras(['--frob'], {}).rest).toEqual(['--frob']);
    expect(() => splitServeExtras(['--metrics-port', '70000'], {})).toThrow('--metrics-port "70000" must be a port number from 1 to 65535');
    expect(() => splitServeExtras(['--metrics-port'], {})).toThrow('--metrics-port needs a value');
  });

  it('logs pretty at a terminal and JSON lines otherwise, unless PORTNET_LOG_FORMAT says', () => {
    expect(defaultLogFormat({}, true)).toBe('pretty');
    expect(defaultLogFormat({}, false)).toBe('json');
    expect(defaultLogFormat({ PORTNET_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(defaultLogFormat({ PORTNET_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
  });
});
