// Admission control for Predict (DESIGN.md "Processes and concurrency"): at most `maxRunning`
// calls run the model at once and at most `maxQueued` more wait; a call past both is refused at
// once with RESOURCE_EXHAUSTED and a retry hint, instead of the server running out of memory.
// A call holds its ticket from its header on (its input is spooled to disk meanwhile).

export interface Ticket {
  /** Resolves when a run slot is free; rejects if the ticket was released first. */
  run(): Promise<void>;
  /** True once run() resolved. */
  readonly running: boolean;
  /** Frees the slot (or the queue place); safe to call more than once. */
  release(): void;
}

export class Admission {
  private runningCount = 0;
  private admitted = 0;
  private readonly waiters: Array<{ resolve: () => void; reject: (e: Error) => void; ticket: object }> = [];
  /** Exponential moving average of run times, for the retry hint. */
  private averageRunMs = 5_000;

  constructor(
    readonly maxRunning: number,
    readonly maxQueued: number,
    private readonly onChange: (running: number, queued: number) => void = () => {},
  ) {}

  get running(): number {
    return this.runningCount;
  }

  get queued(): number {
    return this.admitted - this.runningCount;
  }

  /** A rough wait before a retry may be admitted: one average run per queue position ahead. */
  retryAfterMs(): number {
    return Math.max(1_000, Math.round((this.averageRunMs * (this.queued + 1)) / this.maxRunning));
  }

  /** A ticket, or undefined when running and queued places are all taken. */
  tryAdmit(): Ticket | undefined {
    if (this.admitted >= this.maxRunning + this.maxQueued) return undefined;
    this.admitted++;
    this.changed();
    let state: 'waiting' | 'running' | 'released' = 'waiting';
    let startedAt = 0;
    const key = {};
    const ticket: Ticket = {
      run: () => {
        if (state === 'released') return Promise.reject(new Error('ticket released'));
        if (state === 'running') return Promise.resolve();
        const start = () => {
          state = 'running';
          startedAt = performance.now();
          this.runningCount++;
          this.changed();
        };
        if (this.runningCount < this.maxRunning && this.waiters.length === 0) {
          start();
          return Promise.resolve();
        }
        return new Promise<void>((resolve, reject) => this.waiters.push({ resolve: () => (start(), resolve()), reject, ticket: key }));
      },
      get running() {
        return state === 'running';
      },
      release: () => {
        if (state === 'released') return;
        if (state === 'running') {
          this.runningCount--;
          this.averageRunMs = 0.8 * this.averageRunMs + 0.2 * (performance.now() - startedAt);
        } else {
          const i = this.waiters.findIndex((w) => w.ticket === key);
          if (i >= 0) this.waiters.splice(i, 1)[0].reject(new Error('ticket released'));
        }
        state = 'released';
        this.admitted--;
        this.wakeNext();
        this.changed();
      },
    };
    return ticket;
  }

  private wakeNext(): void {
    while (this.runningCount < this.maxRunning && this.waiters.length > 0) this.waiters.shift()!.resolve();
  }

  private changed(): void {
    this.onChange(this.runningCount, this.queued);
  }
}
