import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * Validates a Kubernetes object offline: built-in kinds against kubernetes-models' JSON schemas, the OpenShift
 * SCC against the openAPIV3Schema of the CRD fixture the constructs are generated from.
 * Returns the list of problems (empty when valid).
 */
export function validateObject(obj: any): string[] {
  if (obj.apiVersion === 'security.openshift.io/v1') return validateScc(obj);
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : [undefined, obj.apiVersion];
  const modulePath = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Model = require(modulePath)[obj.kind];
  if (!Model) return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    return [`${obj.kind}/${obj.metadata?.name}: ${(e as Error).message}`];
  }
}

let sccValidator: ((o: unknown) => boolean) & { errors?: unknown } | undefined;

export const SCC_CRD_PATH = join(__dirname, '..', '..', 'charts-src', 'crds', 'securitycontextconstraints.crd.yaml');

function validateScc(obj: any): string[] {
  if (!sccValidator) {
    const crd = parse(readFileSync(SCC_CRD_PATH, 'utf8'));
    const schema = crd.spec.versions[0].schema.openAPIV3Schema;
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
    ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
    // `nullable` is OpenAPI, not JSON Schema: let null through wherever the CRD allows it.
    sccValidator = ajv.compile(allowNulls(schema));
  }
  return sccValidator(obj) ? [] : [`SecurityContextConstraints: ${JSON.stringify(sccValidator.errors)}`];
}

function allowNulls(schema: any): any {
  if (Array.isArray(schema)) return schema.map(allowNulls);
  if (!schema || typeof schema !== 'object') return schema;
  const out: any = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, allowNulls(s)])) : allowNulls(v);
  if (schema.nullable && schema.type) out.type = [schema.type, 'null'];
  delete out.nullable;
  // additionalProperties are not forbidden by the CRD; a typo in our SCC would pass, so forbid them here.
  if (schema.properties && schema.type === 'object' && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}
