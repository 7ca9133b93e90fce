import assert from 'node:assert/strict';
import { GpuSlots, visibleDeviceIds } from '../../server/jobs/gpu-slots.js';

describe('server/jobs/gpu-slots', () => {
  it("takes the device ids from the server's own CUDA_VISIBLE_DEVICES, else 0..n-1", () => {
    assert.deepEqual(visibleDeviceIds(2, {}), ['0', '1']);
    assert.deepEqual(visibleDeviceIds(2, { CUDA_VISIBLE_DEVICES: '2, 3' }), ['2', '3']);
    assert.deepEqual(visibleDeviceIds(1, { CUDA_VISIBLE_DEVICES: '5,6' }), ['5']);
    assert.deepEqual(visibleDeviceIds(0, {}), []);
  });

  it('gives each training the least busy device, and spreads evenly past one per device', () => {
    const slots = new GpuSlots(['2', '3']);
    const a = slots.acquire();
    const b = slots.acquire();
    assert.deepEqual([a.device, b.device], ['2', '3'], 'two trainings, two devices');
    a.release();
    a.release(); // twice is harmless
    const c = slots.acquire();
    assert.equal(c.device, '2', 'the freed device is reused');
    const d = slots.acquire();
    const e = slots.acquire();
    assert.deepEqual([d.device, e.device].sort(), ['2', '3'], 'past one per device, shared evenly');
    assert.deepEqual(slots.load(), { '2': 2, '3': 2 });
    for (const l of [b, c, d, e]) l.release();
    assert.deepEqual(slots.load(), { '2': 0, '3': 0 });
    assert.throws(() => new GpuSlots([]), /at least one device/);
  });
});
