/**
 * The dashboard's charts: boots per minute and mirror throughput over the last hour, kept as
 * per-minute counters in fixed rings (60 numbers each, whatever the traffic), and drawn as small
 * server-rendered SVG bar charts (numbers only: no text from a device reaches them).
 */

/** Counts per minute for the last `size` minutes, in a ring: a minute's slot is reused an hour later. */
export class MinuteSeries {
  private readonly counts: number[];
  /** The minute (ms / 60 000) each slot holds; -1: never used. */
  private readonly minutes: number[];

  readonly size: number;

  constructor(size = 60) {
    this.size = size;
    this.counts = new Array<number>(size).fill(0);
    this.minutes = new Array<number>(size).fill(-1);
  }

  add(value: number, atMs: number, nowMs: number): void {
    const minute = Math.floor(atMs / 60_000);
    const current = Math.floor(nowMs / 60_000);
    // A late event older than the window, or one from a clock ahead of ours, counts nowhere.
    if (minute <= current - this.size || minute > current) return;
    const slot = minute % this.size;
    if (this.minutes[slot] !== minute) {
      this.minutes[slot] = minute;
      this.counts[slot] = 0;
    }
    this.counts[slot] = (this.counts[slot] ?? 0) + value;
  }

  /** Oldest first; the last value is the current minute's so far. */
  values(nowMs: number): number[] {
    const current = Math.floor(nowMs / 60_000);
    const values: number[] = [];
    for (let minute = current - this.size + 1; minute <= current; minute++) {
      const slot = minute % this.size;
      values.push(this.minutes[slot] === minute ? (this.counts[slot] ?? 0) : 0);
    }
    return values;
  }

  total(nowMs: number): number {
    return this.values(nowMs).reduce((sum, value) => sum + value, 0);
  }
}

/**
 * Samples a counter that only grows (bytes from upstreams) and adds what it grew by to a
 * series; a counter that went back (a restart of its source) starts over from its new value.
 */
export class CounterSampler {
  private last: number | undefined;
  private readonly read: () => number;
  private readonly series: MinuteSeries;

  constructor(read: () => number, series: MinuteSeries) {
    this.read = read;
    this.series = series;
  }

  sample(nowMs: number): void {
    const value = this.read();
    const grown = this.last === undefined || value < this.last ? 0 : value - this.last;
    this.last = value;
    if (grown > 0) this.series.add(grown, nowMs, nowMs);
  }
}

export interface ChartBar {
  x: number;
  y: number;
  width: number;
  height: number;
  /** The bar's tooltip: its minute and value. */
  title: string;
}

export interface Chart {
  width: number;
  height: number;
  bars: ChartBar[];
  /** The largest value, as shown at the top of the axis. */
  maxText: string;
  totalText: string;
  /** Whether any minute had something: an empty hour says so instead of drawing nothing. */
  empty: boolean;
}

const WIDTH = 600;
const HEIGHT = 80;

/** A bar chart of per-minute values (oldest first) ending at `nowMs`; `format` writes a value. */
export function barChart(values: readonly number[], nowMs: number, format: (value: number) => string): Chart {
  const max = Math.max(0, ...values);
  const slot = WIDTH / Math.max(1, values.length);
  const first = Math.floor(nowMs / 60_000) - values.length + 1;
  const bars = values.map((value, i) => {
    const height = max > 0 ? Math.max(value > 0 ? 1 : 0, Math.round((value / max) * (HEIGHT - 2))) : 0;
    const minute = new Date((first + i) * 60_000).toISOString().slice(11, 16);
    return { x: Math.round(i * slot * 10) / 10, y: HEIGHT - height, width: Math.max(1, Math.round((slot - 1) * 10) / 10), height, title: `${minute} UTC: ${format(value)}` };
  });
  return { width: WIDTH, height: HEIGHT, bars, maxText: format(max), totalText: format(values.reduce((sum, value) => sum + value, 0)), empty: max === 0 };
}
