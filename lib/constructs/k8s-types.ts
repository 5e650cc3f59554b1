/** The plain Kubernetes shapes the props use, in their API (JSON) form, so users pass what they know from YAML. */

export interface Toleration {
  readonly key?: string;
  readonly operator?: 'Exists' | 'Equal';
  readonly value?: string;
  readonly effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  readonly tolerationSeconds?: number;
}

export interface ResourceRequirements {
  readonly requests?: Record<string, string>;
  readonly limits?: Record<string, string>;
}

export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface UpdateStrategy {
  readonly type: 'RollingUpdate' | 'OnDelete';
  readonly rollingUpdate?: { readonly maxUnavailable?: number | string; readonly maxSurge?: number | string };
}
