import { stringify } from 'yaml';
import { RenderCondition } from '../../constructs/conditions';
import { Repetition } from '../../constructs/repeat';
import { containsValueRef, VALUE_REF_SOURCE, ValueField, valueRef } from '../../constructs/value-ref';
import { countFor, expressionFor, SLOT_VARIABLE } from './expressions';

/** One rendered object and what the chart needs to know about it. */
export interface ChartObject {
  readonly json: any;
  readonly conditions: readonly RenderCondition[];
  readonly valueFields: readonly ValueField[];
  /** Helm hook annotations, for objects that are hooks rather than part of the release. */
  readonly hook?: Readonly<Record<string, string>>;
  /** Rendered once per slot of a count (a `range`), when set. */
  readonly repetition?: Repetition;
}

const CONDITION_EXPRESSIONS: Record<RenderCondition, string> = {
  openshift: 'include "knawd-deployer.isOpenShift" $',
  knative: 'include "knawd-deployer.knative" $',
  knativeRuntimeClass: '$.Values.knative.runtimeClassName.enabled',
  nodeRestriction: 'include "knawd-deployer.nodeRestriction" $',
};

const PLACEHOLDER_LINE = new RegExp(`^(\\s*)(- )?([^\\s:#][^:]*): ${VALUE_REF_SOURCE}$`);
const PLACEHOLDER_ITEM = new RegExp(`^(\\s*)- ${VALUE_REF_SOURCE}$`);

function setPointer(doc: any, pointer: string, value: unknown): void {
  const keys = pointer.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node = doc;
  for (const k of keys.slice(0, -1)) node = node[k] ??= {};
  node[keys[keys.length - 1]] = value;
}

function renderLine(line: string): string[] {
  const field = PLACEHOLDER_LINE.exec(line);
  if (field) {
    const [, indent, dash, key, path] = field;
    const e = expressionFor(path);
    if (e.kind === 'scalar') return [`${indent}${dash ?? ''}${key}: {{ ${e.expr} | quote }}`];
    if (e.kind === 'integer') return [`${indent}${dash ?? ''}${key}: {{ ${e.expr} }}`];
    if (dash) throw new Error(`chart renderer: a structured value reference cannot start a list item (${line.trim()})`);
    const inner = `${indent}  `;
    switch (e.kind) {
      case 'structured':
        return [`{{- with ${e.expr} }}`, `${indent}${key}:`, `${inner}{{- toYaml . | nindent ${inner.length} }}`, '{{- end }}'];
      case 'names':
        return [`{{- with ${e.expr} }}`, `${indent}${key}:`, '{{- range . }}', `${inner}- name: {{ . | quote }}`, '{{- end }}', '{{- end }}'];
      case 'indexed':
        return [`${indent}${key}:`, `{{- range ${SLOT_VARIABLE} := until (${e.count}) }}`, `${inner}- {{ ${e.item} | quote }}`, '{{- end }}'];
    }
  }
  const item = PLACEHOLDER_ITEM.exec(line);
  if (item) {
    const e = expressionFor(item[2]);
    if (e.kind !== 'scalar') throw new Error(`chart renderer: ${item[2]} is not a scalar but is used as a list item`);
    return [`${item[1]}- {{ ${e.expr} | quote }}`];
  }
  if (containsValueRef(line)) throw new Error(`chart renderer: value reference inside a larger scalar: ${line.trim()}`);
  return [line];
}

/** Adds Helm's bookkeeping labels right under the object's own metadata.labels. */
function withBookkeepingLabels(lines: string[]): string[] {
  const metadata = lines.indexOf('metadata:');
  const labels = lines.findIndex((l, i) => i > metadata && l === '  labels:');
  if (metadata < 0 || labels < 0) throw new Error('chart renderer: every object must carry metadata.labels');
  return [...lines.slice(0, labels + 1), '    {{- include "knawd-deployer.bookkeepingLabels" $ | nindent 4 }}', ...lines.slice(labels + 1)];
}

/** The Helm template text of one object. */
export function objectTemplate(obj: ChartObject): string {
  const json = structuredClone(obj.json);
  for (const f of obj.valueFields) setPointer(json, f.pointer, valueRef(f.path));
  if (obj.hook) json.metadata.annotations = { ...json.metadata.annotations, ...obj.hook };
  const yamlLines = stringify(json, { lineWidth: 0 }).trimEnd().split('\n');
  const body = withBookkeepingLabels(yamlLines).flatMap(renderLine);
  const conditions = [...new Set(obj.conditions)];
  // A repeated object: one YAML document per slot.
  const repeated = obj.repetition ? [`{{- range ${SLOT_VARIABLE} := until (${countFor(obj.repetition.countPath)}) }}`, '---', ...body, '{{- end }}'] : body;
  return [
    ...conditions.map((c) => `{{- if ${CONDITION_EXPRESSIONS[c]} }}`),
    ...repeated,
    ...conditions.map(() => '{{- end }}'),
    '',
  ].join('\n');
}
