/** One benchmark figure; `target`/`pass` when the figure has a target. */
export interface BenchResult {
  readonly name: string;
  /** A number, or a figure that is not one (e.g. `5m / 16Mi`). */
  readonly value: number | string;
  readonly unit: string;
  readonly target?: number;
  readonly pass?: boolean;
}

export function timeMs(fn: () => unknown): number {
  const start = process.hrtime.bigint();
  fn();
  return Number((process.hrtime.bigint() - start) / 1000000n);
}
