import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/metrics/metrics.js';
import { RepairLog } from '../../../src/reconcile/repair.js';

describe('RepairLog', () => {
  it('counts every repair in portnet_reconcile_repairs_total by kind', async () => {
    const metrics = new Metrics();
    const before = await metrics.registry.getSingleMetricAsString('portnet_reconcile_repairs_total');
    const count = (text: string) => Number(/kind="orphan-link"} (\d+)/.exec(text)?.[1] ?? 0);
    const log = new RepairLog(pino({ level: 'silent' }));
    log.add('orphan-link', 'removed orphan link', { link: 'pn0123456789a' });
    log.add('orphan-link', 'removed orphan link', { link: 'pn0123456789b' });
    const after = await metrics.registry.getSingleMetricAsString('portnet_reconcile_repairs_total');
    expect(count(after) - count(before)).toBe(2);
    expect(log.repairs.map((r) => r.kind)).toEqual(['orphan-link', 'orphan-link']);
  });
});
