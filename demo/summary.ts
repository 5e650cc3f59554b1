/**
 * The demo's summary: one row per step (what, seconds, result, engine), printed as a Markdown table, and the
 * parser the test and the bench read it back with (so that what they assert is what a user sees).
 */

export interface Row {
  readonly step: string;
  readonly seconds: number;
  /** `ok: …` or `FAILED: …` (or `interrupted`). */
  readonly result: string;
  /** The chart's ociType the step ran under; `-` where none. */
  readonly engine: string;
}

/** The lines that close the table: each `<name>: <seconds> s`. */
export const TOTALS = { answered: 'cluster up → WASM service answered', total: 'total' } as const;

export interface Summary {
  readonly rows: readonly Row[];
  /** By {@link TOTALS} name; absent when the run did not get there. */
  readonly totals: Readonly<Partial<Record<keyof typeof TOTALS, number>>>;
}

const HEADER = '| step | seconds | result | engine |';
const cell = (s: string): string => s.replace(/\|/g, '/').replace(/\s*\n\s*/g, ' ');

export function formatSummary(summary: Summary): string {
  const lines = ['', 'npm run demo: summary', '', HEADER, '| --- | ---: | --- | --- |'];
  for (const r of summary.rows) lines.push(`| ${cell(r.step)} | ${r.seconds.toFixed(1)} | ${cell(r.result)} | ${cell(r.engine)} |`);
  lines.push('');
  for (const [key, label] of Object.entries(TOTALS) as Array<[keyof typeof TOTALS, string]>) {
    const v = summary.totals[key];
    if (v !== undefined) lines.push(`${label}: ${v.toFixed(1)} s`);
  }
  return lines.join('\n');
}

/** The summary in a demo's output; throws when there is none. */
export function parseSummary(output: string): Summary {
  const lines = output.split('\n');
  const start = lines.indexOf(HEADER);
  if (start < 0) throw new Error(`no summary table (a line "${HEADER}") in the demo's output:\n${output.slice(-3000)}`);
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('| ')) break;
    const [step, seconds, result, engine] = line.slice(2, -2).split(' | ');
    rows.push({ step, seconds: Number(seconds), result, engine });
  }
  const totals: Partial<Record<keyof typeof TOTALS, number>> = {};
  for (const [key, label] of Object.entries(TOTALS) as Array<[keyof typeof TOTALS, string]>) {
    const m = new RegExp(`^${label}: ([0-9.]+) s$`, 'm').exec(output);
    if (m) totals[key] = Number(m[1]);
  }
  return { rows, totals };
}
