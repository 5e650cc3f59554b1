/**
 * The CycloneDX 1.6 JSON schema shipped in release/schema, compiled by Ajv (draft-07). The four formats it uses
 * are checked here by small functions of their own (no format plug-in among the dependencies).
 */
import Ajv, { ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = join(__dirname, '..', '..', 'release', 'schema');

let compiled: ValidateFunction | undefined;

export function cyclonedxValidator(): ValidateFunction {
  if (compiled) return compiled;
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)));
  ajv.addFormat('iri-reference', (s: string) => !/[\s<>"{}|\\^`]/.test(s));
  ajv.addFormat('idn-email', (s: string) => /^[^\s@]+@[^\s@]+$/.test(s));
  ajv.addFormat('uri', (s: string) => {
    try {
      return Boolean(new URL(s).protocol);
    } catch {
      return false;
    }
  });
  for (const file of ['spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json']) {
    const schema = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as { $id: string };
    // bom-1.6 refers to them by file name, relative to its own $id.
    ajv.addSchema(schema, `http://cyclonedx.org/schema/${file}`);
  }
  compiled = ajv.compile(JSON.parse(readFileSync(join(DIR, 'bom-1.6.SNAPSHOT.schema.json'), 'utf8')));
  return compiled;
}

export function schemaErrors(document: unknown): string {
  const validate = cyclonedxValidator();
  return validate(document) ? '' : JSON.stringify(validate.errors?.slice(0, 5), null, 1);
}
