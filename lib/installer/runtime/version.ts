/** Container runtime versions as the Node object and the runtimes' own `--version` print them. */

export interface RuntimeVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** `1.7.22`, `v2.0.1`, `containerd://1.7.22`, `cri-o://1.36.3`, `crio version 1.36.3` → the version; undefined otherwise. */
export function parseRuntimeVersion(text: string | undefined): RuntimeVersion | undefined {
  const match = /(?:^|[^\d.])v?(\d+)\.(\d+)\.(\d+)/.exec(text ?? '');
  return match ? { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) } : undefined;
}

export function formatVersion(v: RuntimeVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}
