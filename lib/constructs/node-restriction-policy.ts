import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { HOST_CHANGED_LABEL, NODE_STATE_LABEL, NODE_STATES, NODE_STATUS_ANNOTATION, NODE_STATUS_ANNOTATION_MAX_LENGTH } from '../catalog';
import { INSTALLER_SERVICE_ACCOUNT } from './installer-rbac';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

export interface NodeRestrictionPolicyProps {
  /** Settings the objects are named and scoped from. */
  readonly settings: DeployerSettings;
}

export const NODE_RESTRICTION_POLICY = 'knawd-installer-own-node';
/** The node name the API server puts into the user info of a ServiceAccount token bound to a pod on a node. */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/**
 * What RBAC cannot say: the installer's ServiceAccount may change only the Node its pod runs on, and on it only
 * the node contract's labels, with the contract's values (as the kubelet's NodeRestriction does for kubelets),
 * its status annotation (bounded in size), and the spec only by removing the configured startup taint (no
 * other taint, no other field; with no startup taint configured, the spec not at all).
 * A ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.30+) checks every node update by
 * that ServiceAccount against the node name in its token: a token bound to a pod carries the pod's node in
 * `authentication.kubernetes.io/node-name` (Kubernetes 1.30+, on by default). A token without one (not bound
 * to a scheduled pod) may change no node.
 * It matches a ServiceAccount named knawd-installer in any namespace: a CEL expression cannot take the
 * release namespace from a value, and a parameter object would have to be found before any match condition
 * runs (missing, it fails every node update in the cluster, or none). Matching more only restricts more.
 * It covers `nodes`, not `nodes/status` (the installer may not write status at all): a mistake here can never
 * stop kubelets from reporting node status.
 */
export class NodeRestrictionPolicy extends Construct {
  constructor(scope: Construct, id: string, props: NodeRestrictionPolicyProps) {
    super(scope, id);
    const s = props.settings;
    const labels = standardLabels('rbac', s.version);
    const ours = [NODE_STATE_LABEL, HOST_CHANGED_LABEL.key];
    const list = (values: readonly string[]): string => `[${values.map((v) => `'${v}'`).join(', ')}]`;
    const annotation = `'${NODE_STATUS_ANNOTATION}'`;
    // Each NodeSpec field but taints (Kubernetes 1.32), present on both sides with equal values or on neither.
    const otherSpec = ['podCIDR', 'podCIDRs', 'providerID', 'unschedulable', 'configSource', 'externalID']
      .map((f) => `has(object.spec.${f}) == has(oldObject.spec.${f}) && (!has(object.spec.${f}) || object.spec.${f} == oldObject.spec.${f})`)
      .join(' && ');

    new ApiObject(this, 'Policy', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: NODE_RESTRICTION_POLICY, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['nodes'] }],
        },
        matchConditions: [
          {
            name: 'installer',
            expression: `request.userInfo.username.matches('^system:serviceaccount:[^:]+:${INSTALLER_SERVICE_ACCOUNT}$')`,
          },
        ],
        variables: [
          { name: 'ours', expression: list(ours) },
          { name: 'before', expression: 'has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}' },
          { name: 'after', expression: 'has(object.metadata.labels) ? object.metadata.labels : {}' },
          { name: 'annotationsBefore', expression: 'has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}' },
          { name: 'annotationsAfter', expression: 'has(object.metadata.annotations) ? object.metadata.annotations : {}' },
          { name: 'startupTaintKey', expression: s.startupTaintKeyCel },
          { name: 'taintsBefore', expression: 'has(oldObject.spec.taints) ? oldObject.spec.taints : []' },
          { name: 'taintsAfter', expression: 'has(object.spec.taints) ? object.spec.taints : []' },
        ],
        validations: [
          {
            expression: `'${NODE_NAME_EXTRA}' in request.userInfo.extra && object.metadata.name in request.userInfo.extra['${NODE_NAME_EXTRA}']`,
            message: 'the knawd installer may change only the Node its pod runs on (the node name in its token)',
            reason: 'Forbidden',
          },
          {
            expression:
              'variables.after.all(k, k in variables.ours || (k in variables.before && variables.before[k] == variables.after[k])) && ' +
              'variables.before.all(k, k in variables.ours || k in variables.after)',
            message: `the knawd installer may change only the labels ${ours.join(' and ')} of a Node`,
            reason: 'Forbidden',
          },
          {
            expression:
              `(!('${NODE_STATE_LABEL}' in variables.after) || variables.after['${NODE_STATE_LABEL}'] in ${list(NODE_STATES)}) && ` +
              `(!('${HOST_CHANGED_LABEL.key}' in variables.after) || variables.after['${HOST_CHANGED_LABEL.key}'] == '${HOST_CHANGED_LABEL.value}')`,
            message: `the knawd installer may set ${NODE_STATE_LABEL} only to ${NODE_STATES.join(', ')} and ${HOST_CHANGED_LABEL.key} only to ${HOST_CHANGED_LABEL.value}`,
            reason: 'Invalid',
          },
          {
            expression:
              `variables.annotationsAfter.all(k, k == ${annotation} || (k in variables.annotationsBefore && variables.annotationsBefore[k] == variables.annotationsAfter[k])) && ` +
              `variables.annotationsBefore.all(k, k == ${annotation} || k in variables.annotationsAfter) && ` +
              `(!(${annotation} in variables.annotationsAfter) || size(variables.annotationsAfter[${annotation}]) <= ${NODE_STATUS_ANNOTATION_MAX_LENGTH})`,
            message: `the knawd installer may change only the annotation ${NODE_STATUS_ANNOTATION} of a Node (at most ${NODE_STATUS_ANNOTATION_MAX_LENGTH} characters)`,
            reason: 'Forbidden',
          },
          {
            expression:
              '(has(object.spec) ? object.spec : {}) == (has(oldObject.spec) ? oldObject.spec : {}) || ' +
              `(variables.startupTaintKey != '' && has(object.spec) && has(oldObject.spec) && ${otherSpec} && ` +
              'variables.taintsAfter.all(t, t in variables.taintsBefore) && variables.taintsBefore.all(t, t in variables.taintsAfter || t.key == variables.startupTaintKey))',
            message: "the knawd installer may change a Node's spec only by removing its configured startup taint",
            reason: 'Forbidden',
          },
        ],
      },
    });
    new ApiObject(this, 'Binding', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: NODE_RESTRICTION_POLICY, labels },
      spec: {
        policyName: NODE_RESTRICTION_POLICY,
        validationActions: ['Deny'],
      },
    });
  }
}
