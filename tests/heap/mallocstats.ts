import { expect } from 'vitest';

// sys._debugmallocstats()'s report parsed back into numbers (tests/heap/debugmallocstats.test.ts,
// tests/tuned/).

export interface Parsed {
  header: string;
  rows: { index: number; size: number; pools: number; inUse: number; avail: number }[];
  summary: Map<string, number>;
  labels: string[];
}

/** Parses the report back, insisting on CPython's column widths. */
export function parse(text: string): Parsed {
  const lines = text.split('\n');
  const rows: Parsed['rows'] = [];
  const summary = new Map<string, number>();
  const labels: string[] = [];
  let i = 4;
  for (; lines[i] !== ''; i++) {
    expect(lines[i]).toMatch(/^[ \d]{5} [ \d]{6} [ \d]{11} [ \d]{15} [ \d]{13}$/);
    const [index, size, pools, inUse, avail] = lines[i].trim().split(/\s+/).map(Number);
    rows.push({ index, size, pools, inUse, avail });
  }
  for (i++; i < lines.length && lines[i] !== 'arena map counts'; i++) {
    if (lines[i] === '') continue;
    expect(lines[i]).toMatch(/^.{35}=[ \d,]{21}$/);
    const label = lines[i].slice(0, 35).trimEnd();
    labels.push(label.replace(/^\d+ /, 'N ').replace(/\* \d+ bytes/, '* N bytes'));
    summary.set(label, Number(lines[i].slice(36).replace(/,/g, '')));
    if (label === 'Total') break;
  }
  return { header: lines[0], rows, summary, labels };
}
