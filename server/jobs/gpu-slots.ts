// Which GPU a training runs on. The queue runs one training per CUDA device (config.ts
// trainingConcurrency); each fold's child process gets CUDA_VISIBLE_DEVICES set to one device, the
// least busy one, so two folds never share a GPU while another idles. The ids are the ones the
// server itself was given (its own CUDA_VISIBLE_DEVICES, e.g. "2,3" on a shared node), else 0..n-1.
// NNUNET_MAX_TRAINING_JOBS above the device count makes trainings share devices, spread evenly.

export interface GpuLease {
  /** The value for the child's CUDA_VISIBLE_DEVICES. */
  device: string;
  release(): void;
}

export class GpuSlots {
  private readonly busy: Map<string, number>;

  constructor(readonly devices: string[]) {
    if (devices.length === 0) throw new Error('GpuSlots needs at least one device');
    this.busy = new Map(devices.map((d) => [d, 0]));
  }

  /** The least busy device (the first of equals), held until release(). */
  acquire(): GpuLease {
    let device = this.devices[0];
    for (const d of this.devices) if (this.busy.get(d)! < this.busy.get(device)!) device = d;
    this.busy.set(device, this.busy.get(device)! + 1);
    let released = false;
    return {
      device,
      release: () => {
        if (released) return;
        released = true;
        this.busy.set(device, this.busy.get(device)! - 1);
      },
    };
  }

  /** Trainings running on each device. */
  load(): Record<string, number> {
    return Object.fromEntries(this.busy);
  }
}

/** The ids of the `count` devices libtorch sees, as CUDA_VISIBLE_DEVICES values for the children. */
export function visibleDeviceIds(count: number, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = (env.CUDA_VISIBLE_DEVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (given.length > 0) return given.slice(0, count);
  return Array.from({ length: count }, (_, i) => String(i));
}
