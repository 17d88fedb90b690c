// The SVG chart renderer on fixed data (well-formed, deterministic, ticks and names present), its
// tick rules, and the report's reductions: CDFs, downsampling, KV use per device, the CDF's rate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { escapeXml, formatTicks, logTicks, niceTicks, renderLineChart, type LineChart } from '../src/sim/plot.js';
import { cdf, cdfRuns, downsample, kvSeries, resultsCsv, saturated, utilisationSeries, writeReport, type RunDigest } from '../src/sim/report.js';
import type { StepRecord } from '../src/engine/types.js';

/** Fails unless every opened tag is closed in order; returns the tag names seen. */
function checkBalanced(svg: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([A-Za-z][\w-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, selfClose] = m;
    seen.push(name);
    if (selfClose === '/') continue;
    if (close === '/') assert.equal(stack.pop(), name, `</${name}> closes ${stack.join('>')}`);
    else stack.push(name);
  }
  assert.deepEqual(stack, [], 'unclosed tags');
  return seen;
}

const chart: LineChart = {
  title: 'Throughput <vs> rate & "more"',
  xLabel: 'rate (req/s)',
  yLabel: 'tokens/s',
  markers: true,
  series: [
    { name: 'hetis', points: [[1, 900], [2, 1800], [4, 3300], [8, 4100]] },
    { name: 'homogeneous', points: [[1, 880], [2, 1700], [4, 2500], [8, 2600], [16, NaN]] },
  ],
};

test('renderLineChart: well-formed SVG with the series names, ticks and escaped text; same input, same bytes', () => {
  const svg = renderLineChart(chart);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  const tags = checkBalanced(svg);
  assert.ok(tags.includes('path') && tags.includes('circle') && tags.includes('text'));
  for (const s of ['>hetis<', '>homogeneous<', '>rate (req/s)<', '>tokens/s<']) assert.ok(svg.includes(s), s);
  assert.ok(svg.includes('Throughput &lt;vs&gt; rate &amp; &quot;more&quot;'));
  assert.ok(!svg.includes('<vs>'));
  for (const t of ['>0<', '>1000<', '>5000<', '>2<', '>8<']) assert.ok(svg.includes(t), `tick ${t}`);
  assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'));
  assert.equal(renderLineChart(structuredClone(chart)), svg);
  assert.equal(svg.match(/<circle/g)?.length, 8, 'one marker per finite point');
});

test('renderLineChart: log x, empty data and more series than colours stay well-formed', () => {
  const log = renderLineChart({ title: 'CDF', xLabel: 'TTFT (s)', yLabel: 'fraction', logX: true, series: [{ name: 'a', points: [[0, 0], [0.02, 0.1], [3, 1]] }] });
  checkBalanced(log);
  for (const t of ['>0.02<', '>0.1<', '>1<', '>5<']) assert.ok(log.includes(t), `log tick ${t}`);
  assert.ok(log.includes('(log scale)'));
  const empty = renderLineChart({ title: 'none', xLabel: 'x', yLabel: 'y', series: [] });
  checkBalanced(empty);
  assert.ok(empty.includes('no data'));
  const many = renderLineChart({ title: 'm', xLabel: 'x', yLabel: 'y', series: Array.from({ length: 10 }, (_, i) => ({ name: `d${i}`, points: [[0, i], [1, i + 1]] as [number, number][] })) });
  checkBalanced(many);
  assert.equal(many.match(/stroke-dasharray/g)?.length, 4, 'series 9 and 10 dashed, in plot and legend');
});

test('ticks: 1-2-5 steps enclosing the data, log decades, labels without float noise', () => {
  assert.deepEqual(niceTicks(0, 4100), [0, 1000, 2000, 3000, 4000, 5000]);
  assert.deepEqual(niceTicks(0.013, 0.127, 6), [0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14]);
  assert.deepEqual(niceTicks(0.1, 0.7), [0, 0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceTicks(0.1, 0.7, 6), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.deepEqual(niceTicks(5, 5), [2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(niceTicks(0, 0), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(logTicks(0.03, 4), [0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]);
  assert.deepEqual(logTicks(0.5, 20000), [0.1, 1, 10, 100, 1000, 10000, 100000]);
  assert.deepEqual(formatTicks([0, 5000, 10000, 15000, 20000]), ['0', '5k', '10k', '15k', '20k']);
  assert.deepEqual(formatTicks([0, 0.2, 0.4, 0.6000000000000001]), ['0', '0.2', '0.4', '0.6']);
  assert.deepEqual(formatTicks([0, 2e6, 4e6]), ['0', '2M', '4M']);
  assert.deepEqual(formatTicks([0.01, 1, 1000, 10000], true), ['0.01', '1', '1000', '10k']);
  assert.equal(escapeXml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&#39;');
});

test('cdf and downsample keep the ends and at most the asked number of points', () => {
  assert.deepEqual(cdf([3, 1, 2]), [[1, 1 / 3], [2, 2 / 3], [3, 1]]);
  const big = cdf(Array.from({ length: 10_000 }, (_, i) => 10_000 - i), 500);
  assert.equal(big.length, 500);
  assert.deepEqual(big[0], [1, 1e-4]);
  assert.deepEqual(big[499], [10_000, 1]);
  const series = Array.from({ length: 5000 }, (_, i): [number, number] => [i, i === 1234 ? 99 : i % 7]);
  const d = downsample(series, 500);
  assert.ok(d.length <= 500);
  assert.ok(d.some(([t, v]) => t === 1234 && v === 99), 'the peak survives');
  assert.ok(d.every((p, i) => i === 0 || p[0] > d[i - 1]![0]), 'time order');
});

function step(start: number, kv: Record<string, number>): StepRecord {
  return { index: 0, start, seconds: 1, interval: 1, predictedSeconds: 1, prefillTokens: 0, decodeTokens: 1, migrations: 0, migratedBytes: 0, kvUsedBlocks: kv };
}

test('kvSeries: one series per device, a worker shared by two replicas shows their sum', () => {
  const steps = [
    step(0, { 'replica0/primaries': 4, w: 1 }), step(2, { 'replica0/primaries': 6, w: 2 }),
    step(1, { 'replica1/primaries': 5, w: 10 }), step(3, { 'replica1/primaries': 0, w: 0 }),
  ];
  const s = kvSeries(steps);
  assert.deepEqual(s.map((x) => x.name), ['replica0/primaries', 'replica1/primaries', 'w']);
  assert.deepEqual(s[0]!.points, [[1, 4], [3, 6]]);
  assert.deepEqual(s[2]!.points, [[1, 1], [2, 11], [3, 12], [4, 2]]);
});

function digest(system: string, rate: number, reqS: number): RunDigest {
  return { system, rate, row: { system, rate, note: 'a,b' }, throughputTokS: reqS * 300, throughputReqS: reqS, ttftCdf: [], tpotCdf: [], kv: [], util: [] };
}

test('latency CDFs use the highest unsaturated rate per system, else the lowest; results.csv has one row per run', () => {
  const runs = [digest('a', 2, 2), digest('b', 2, 1.5), digest('a', 4, 3.7), digest('b', 4, 2), digest('a', 8, 4)];
  assert.deepEqual(runs.map(saturated), [false, true, false, true, true]);
  assert.deepEqual(cdfRuns(runs).map((r) => [r.system, r.rate]), [['a', 4], ['b', 2]]);
  assert.equal(resultsCsv(runs.slice(0, 2)), 'system,rate,note\na,2,"a,b"\nb,2,"a,b"\n');
});

test('writeReport without a PNG renderer writes SVG only and returns the one-line reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hetis-report-'));
  try {
    const runs = [digest('a', 2, 2), digest('a', 4, 3)];
    const r = writeReport(dir, runs, '', { error: 'PNG output unavailable (test); writing SVG only' });
    assert.equal(r.warning, 'PNG output unavailable (test); writing SVG only');
    assert.deepEqual(readdirSync(dir).sort(), ['kv-use-a.svg', 'results.csv', 'throughput-vs-rate.svg', 'tpot-cdf.svg', 'ttft-cdf.svg']);
    assert.deepEqual([...r.files].sort(), readdirSync(dir).sort());
    // One rate: no throughput chart.
    const one = writeReport(join(dir, 'one'), [digest('a', 2, 2)], '', { error: 'x' });
    assert.ok(!one.files.includes('throughput-vs-rate.svg'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('utilisation: busy seconds per time window over the window, shared devices summed, capped at 1', () => {
  const step = (start: number, seconds: number, busy: Record<string, number>): StepRecord => ({
    index: 0, start, seconds, interval: seconds, predictedSeconds: seconds, prefillTokens: 0, decodeTokens: 1, migrations: 0, migratedBytes: 0, kvUsedBlocks: {}, busy,
  });
  const series = utilisationSeries([
    step(0, 1, { 'w1': 0.5, 'replica0/primaries': 1 }),
    step(1, 1, { 'w1': 0.25, 'replica0/primaries': 0.5 }),
    step(1.5, 0.5, { 'w1': 0.5, 'replica1/primaries': 0.5 }),
  ], 2);
  assert.deepEqual(series.map((s) => s.name), ['replica0/primaries', 'replica1/primaries', 'w1']);
  const w1 = series.find((s) => s.name === 'w1')!.points;
  assert.deepEqual(w1, [[0.5, 0.5], [1.5, 0.75]]);
  assert.deepEqual(series[0]!.points.map((p) => p[1]), [1, 0.5]);
  const { busy: _none, ...untimed } = step(0, 1, {});
  assert.deepEqual(utilisationSeries([untimed]), [], 'steps without busy times: no series');
});
