/** app.kubernetes.io labels. The selector labels are fixed so every renderer selects the same pods. */
export const APP_NAME = 'knawd-deployer';

export type Component = 'installer' | 'remover' | 'uninstall-wait' | 'rbac' | 'runtime-class' | 'namespace';

export function selectorLabels(component: Component): Record<string, string> {
  return { 'app.kubernetes.io/name': APP_NAME, 'app.kubernetes.io/component': component };
}

export function standardLabels(component: Component, version: string): Record<string, string> {
  return { ...selectorLabels(component), 'app.kubernetes.io/part-of': APP_NAME, 'app.kubernetes.io/version': version };
}
