import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barChart, CounterSampler, MinuteSeries } from '../../src/ui/activity.ts';

const T0 = Date.parse('2026-01-01T12:00:00Z');
const min = (n: number) => T0 + n * 60_000;

describe('per-minute series', () => {
  it('counts per minute over the last hour, reusing each slot an hour later', () => {
    const series = new MinuteSeries(60);
    series.add(1, min(0), min(0));
    series.add(2, min(0) + 59_000, min(0) + 59_000);
    series.add(5, min(3), min(3));
    let values = series.values(min(3));
    assert.equal(values.length, 60);
    assert.deepEqual(values.slice(-4), [3, 0, 0, 5]);
    assert.equal(series.total(min(3)), 8);
    // An hour later the old minutes are gone, and their slots hold new ones.
    series.add(7, min(60), min(60));
    values = series.values(min(60));
    assert.equal(values.at(-1), 7);
    assert.equal(series.total(min(60)), 12, 'minute 0 left the window; minute 3 is still in it');
    assert.equal(series.total(min(200)), 0);
  });

  it('ignores events older than the window or ahead of the clock', () => {
    const series = new MinuteSeries(60);
    series.add(1, min(-60), min(0));
    series.add(1, min(1), min(0));
    assert.equal(series.total(min(0)), 0);
  });

  it('adds what a growing counter grew by, and starts over when it went back', () => {
    let counter = 1000;
    const series = new MinuteSeries(60);
    const sampler = new CounterSampler(() => counter, series);
    sampler.sample(min(0));
    counter = 1500;
    sampler.sample(min(0) + 10_000);
    counter = 4000;
    sampler.sample(min(1));
    counter = 10;
    sampler.sample(min(2));
    counter = 30;
    sampler.sample(min(2) + 5000);
    assert.deepEqual(series.values(min(2)).slice(-3), [500, 2500, 20]);
  });
});

describe('bar charts', () => {
  it('scales bars to the largest value and labels each minute', () => {
    const values = new Array<number>(60).fill(0);
    values[59] = 10;
    values[58] = 5;
    const chart = barChart(values, min(59), (v) => `${v} boots`);
    assert.equal(chart.empty, false);
    assert.equal(chart.maxText, '10 boots');
    assert.equal(chart.totalText, '15 boots');
    const last = chart.bars[59];
    const before = chart.bars[58];
    assert.equal(last?.height, 78);
    assert.equal(last && last.y + last.height, chart.height);
    assert.equal(before?.height, 39);
    assert.equal(last?.title, '12:59 UTC: 10 boots');
    assert.equal(chart.bars[0]?.height, 0);
    assert.ok(chart.bars.every((bar) => bar.x >= 0 && bar.x + bar.width <= chart.width));
    assert.equal(barChart(new Array<number>(60).fill(0), min(0), String).empty, true);
  });
});
