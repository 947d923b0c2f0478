import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from '../../../src/config.js';

describe('loadConfig', () => {
  it('takes flags over environment over defaults', () => {
    const { config } = loadConfig(['--mtu', '1400', '--sysctl-net-dir', '/host/proc/sys/net/'], {
      PORTNET_MTU: '1300',
      PORTNET_DEFAULT_POOL: '198.18.128.0/17',
    });
    expect(config.mtu).toBe(1400);
    expect(config.defaultPool).toBe('198.18.128.0/17');
    expect(config.sysctlNetDir).toBe('/host/proc/sys/net');
    expect(config.socketPath).toBe(DEFAULTS.socketPath);
    expect(loadConfig([], {}).config.sysctlNetDir).toBe('/proc/sys/net');
  });

  it('refuses bad values and unknown flags by name', () => {
    expect(() => loadConfig(['--mtu', '9x'], {})).toThrow(new ConfigError('--mtu "9x" must be a whole number from 576 to 65535'));
    expect(() => loadConfig(['--log-level', 'loud'], {})).toThrow(/--log-level "loud" must be one of/);
    expect(() => loadConfig(['--frobnicate'], {})).toThrow(ConfigError);
  });
});
