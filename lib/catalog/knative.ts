/**
 * Knative Serving, as the constructs, the chart and the installer agree on it: how the installer is told
 * whether to touch Knative at all, and the second lever it may pull, config-deployment's `runtime-class-name`
 * (Knative 1.15+). The podspec flag itself ({@link KNATIVE_FEATURE}) sits in node-contract.ts with the env.
 */

/** The API group/version Knative Serving serves; the chart asks `.Capabilities` for it. */
export const KNATIVE_SERVING_API = 'serving.knative.dev/v1';

/**
 * `patchKnative`: `auto` wires Knative up where Knative Serving is installed and says, without failing, how
 * to do it later where it is not; `true` always (Knative must be installed: its RBAC is bound in Knative's
 * namespace), `false` never: the installer leaves Knative alone.
 */
export const PATCH_KNATIVE_MODES = ['auto', 'true', 'false'] as const;
export type PatchKnativeMode = (typeof PATCH_KNATIVE_MODES)[number];
export const DEFAULT_PATCH_KNATIVE: PatchKnativeMode = 'auto';

/**
 * config-deployment's `runtime-class-name`: a YAML map from RuntimeClass name to `{selector: {label: value}}`;
 * Knative gives a new revision the RuntimeClass of the most specific entry whose selector its labels match
 * (knative.dev/serving pkg/deployment, Config.PodRuntimeClassName).
 */
export const KNATIVE_DEPLOYMENT = {
  namespace: 'knative-serving',
  configMap: 'config-deployment',
  key: 'runtime-class-name',
} as const;

/** The revision labels that select the RuntimeClass when none are given. */
export const DEFAULT_KNATIVE_SELECTOR: Readonly<Record<string, string>> = { 'knawd.dev/wasm': 'true' };

// Kubernetes label syntax (what Knative checks with labels.ValidatedSelectorFromSet). No lookaround: the
// chart schema is checked with Go's RE2.
const LABEL_NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const DNS_SUBDOMAIN = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
export const LABEL_KEY_PATTERN = new RegExp(`^(${DNS_SUBDOMAIN}/)?${LABEL_NAME}$`);
export const LABEL_VALUE_PATTERN = new RegExp(`^(${LABEL_NAME})?$`);
export const SELECTOR_RULE =
  'one or more label=value pairs with Kubernetes label syntax (keys [prefix/]name, names and values up to 63 letters, digits, "-", "_", "." starting and ending with a letter or digit), such as knawd.dev/wasm=true';

export function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  return LABEL_KEY_PATTERN.test(key) && (slash < 0 || slash <= 253);
}

export function isLabelValue(value: string): boolean {
  return LABEL_VALUE_PATTERN.test(value);
}

/** Why a selector is not one Knative accepts, or undefined when it is. */
export function selectorProblem(selector: Readonly<Record<string, string>>): string | undefined {
  const entries = Object.entries(selector);
  if (entries.length === 0) return 'it is empty';
  const badKey = entries.find(([k]) => !isLabelKey(k));
  if (badKey) return `"${badKey[0]}" is not a label key`;
  const badValue = entries.find(([, v]) => typeof v !== 'string' || !isLabelValue(v));
  if (badValue) return `${JSON.stringify(badValue[1])} (of ${badValue[0]}) is not a label value`;
  return undefined;
}

/** The selector as the installer's setting text, `key=value,key=value` in key order. */
export function formatSelector(selector: Readonly<Record<string, string>>): string {
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

/** The inverse of {@link formatSelector}; undefined when the text is not `key=value[,key=value…]`. */
export function parseSelector(text: string): Record<string, string> | undefined {
  const selector: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return undefined;
    const key = pair.slice(0, eq).trim();
    if (key in selector) return undefined;
    selector[key] = pair.slice(eq + 1).trim();
  }
  return selector;
}
