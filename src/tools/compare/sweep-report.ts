// The sweep's page (`pymalloc sweep --out DIR` writes DIR/sweep.html and DIR/sweep.json): a
// scatter of fragmentation against ns/op, one point per setting of the grid, the Pareto front
// joined by a line, the peers as reference points; then every figure.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { chartJsSource, escapeHtml, jsonSafe, prepareReportDirectory, scriptSafe, STYLE } from './report.js';
import type { SweepPoint, SweepResult } from './sweep.js';

interface ScatterPoint {
  x: number;
  y: number;
  label: string;
}

function scatter(points: readonly SweepPoint[]): ScatterPoint[] {
  return points
    .filter((p) => p.nsPerOp !== null && p.fragmentation !== null)
    .map((p) => ({ x: p.nsPerOp!, y: p.fragmentation!, label: p.label }));
}

const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById('data').textContent);
new Chart(document.getElementById('sweep'), {
  type: 'scatter',
  data: { datasets: [
    { label: 'Pareto front', data: data.front, showLine: true, borderColor: '#d62728', backgroundColor: '#d62728', pointRadius: 5 },
    { label: 'other settings', data: data.others, borderColor: '#1f77b4', backgroundColor: '#1f77b4', pointRadius: 4 },
    { label: 'peers', data: data.peers, borderColor: '#2ca02c', backgroundColor: '#2ca02c', pointStyle: 'rectRot', pointRadius: 7 },
  ] },
  options: {
    maintainAspectRatio: false,
    plugins: { tooltip: { callbacks: { label: (c) => c.raw.label + ': ' + c.raw.x.toFixed(1) + ' ns/op, fragmentation ' + c.raw.y.toFixed(3) } } },
    scales: {
      x: { title: { display: true, text: 'ns/op (geometric mean over the workloads)' } },
      y: { title: { display: true, text: 'fragmentation (geometric mean)' } },
    },
  },
});
`;

function figure(value: number | null, digits: number): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}

function tableHtml(result: SweepResult): string {
  const head = result.workloads.map((w) => `<th>${escapeHtml(w)}</th>`).join('');
  const rows = result.points.map((p) => {
    const cells = p.workloads
      .map((w) => `<td>${w.failure ? escapeHtml(`failed: ${w.failure}`) : `${figure(w.nsPerOp, 1)} ns, ${figure(w.fragmentation, 3)}`}</td>`)
      .join('');
    return `<tr><td>${p.pareto ? '★ ' : ''}${escapeHtml(p.label)}${p.setting ? '' : ' (peer)'}</td><td>${figure(p.nsPerOp, 1)}</td><td>${figure(p.fragmentation, 3)}</td>${cells}</tr>`;
  });
  return `<table><tr><th>setting</th><th>ns/op</th><th>fragmentation</th>${head}</tr>${rows.join('')}</table>`;
}

/** The whole page. */
export function renderSweepReport(result: SweepResult, generated = new Date()): string {
  const data = jsonSafe({
    front: scatter(result.points.filter((p) => p.pareto)).sort((a, b) => a.x - b.x),
    others: scatter(result.points.filter((p) => p.setting && !p.pareto)),
    peers: scatter(result.points.filter((p) => !p.setting)),
  });
  const skipped = result.skipped.map((s) => `<li>${escapeHtml(s.label)}: ${escapeHtml(s.reason)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pymalloc-wasm: sweep</title>
<style>${STYLE}</style></head><body>
<h1>Sweep of pymalloc's settings</h1>
<p class="note">Generated ${escapeHtml(generated.toISOString())} by pymalloc-wasm on Node ${escapeHtml(process.version)}. A setting is a
policy (cpython: CPython's; tuned: a formerly full pool relinked last) and a geometry (alignment / pool size / arena size).
Each is replayed over ${result.workloads.length} workloads (median of ${result.repeat} timed runs); its figures are the
geometric means over them. The Pareto front (★) holds the settings no other one beats on both.</p>
${skipped ? `<ul>${skipped}</ul>` : ''}
<h2>Fragmentation against ns/op</h2>
<div class="chart"><canvas id="sweep"></canvas></div>
<h2>All figures</h2>
${tableHtml(result)}
<script>${scriptSafe(chartJsSource())}</script>
<script type="application/json" id="data">${data}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}

/** Writes sweep.html and sweep.json into `dir` (made if need be); returns the page's path. */
export async function writeSweepReport(dir: string, result: SweepResult): Promise<string> {
  await prepareReportDirectory(dir);
  const page = join(dir, 'sweep.html');
  await writeFile(page, renderSweepReport(result));
  await writeFile(join(dir, 'sweep.json'), JSON.stringify(result, null, 2) + '\n');
  return page;
}
