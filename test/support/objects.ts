/** Small lookups over lists of rendered Kubernetes objects. */
export function byKind(objects: any[], kind: string): any[] {
  return objects.filter((o) => o.kind === kind);
}

export function one(objects: any[], kind: string, name?: string): any {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected exactly one ${kind}${name ? ` named ${name}` : ''}, found ${found.length}`);
  return found[0];
}

export function podSpecs(objects: any[]): { owner: any; spec: any }[] {
  return objects.filter((o) => o.spec?.template?.spec).map((o) => ({ owner: o, spec: o.spec.template.spec }));
}
