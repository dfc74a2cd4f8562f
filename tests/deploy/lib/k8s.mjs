// Plain helpers over rendered Kubernetes objects: identities, lookups, label selectors, pod
// templates, ports and resource quantities. No npm packages are needed here.

// Kinds whose objects live outside any namespace (the ones a kustomize render can hold).
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PriorityClass',
  'StorageClass',
  'PersistentVolume',
  'IngressClass',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'RuntimeClass',
]);

// Kinds that run long-lived pods and are expected to sit behind a Service.
export const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

export function idOf(obj) {
  return `${obj?.kind ?? '?'}/${obj?.metadata?.name ?? '?'}`;
}

export function isNamespaced(obj) {
  return !CLUSTER_SCOPED.has(obj.kind);
}

export function namespaceOf(obj) {
  return isNamespaced(obj) ? (obj.metadata?.namespace ?? 'default') : '';
}

export function labelsOf(obj) {
  return obj?.metadata?.labels ?? {};
}

// All objects of one render (or of several renders taken together), looked up by kind/ns/name.
export class Index {
  constructor(objects) {
    this.objects = objects;
  }

  ofKind(kind, namespace) {
    return this.objects.filter((o) => o.kind === kind && (namespace === undefined || namespaceOf(o) === namespace));
  }

  find(kind, namespace, name) {
    return this.objects.find((o) => o.kind === kind && namespaceOf(o) === namespace && o.metadata?.name === name);
  }

  // Labels of a namespace as a namespaceSelector sees them (the API server adds the name label).
  namespaceLabels(namespace) {
    const ns = this.find('Namespace', '', namespace);
    return { ...labelsOf(ns), 'kubernetes.io/metadata.name': namespace };
  }
}

// ------------------------------------------------------------------ label selectors

// A metav1.LabelSelector: undefined selects nothing, {} selects everything.
export function labelSelectorMatches(selector, labels) {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((e) => expressionMatches(e, labels));
}

function expressionMatches({ key, operator, values = [] }, labels) {
  const has = Object.hasOwn(labels, key);
  switch (operator) {
    case 'In':
      return has && values.includes(labels[key]);
    case 'NotIn':
      return !has || !values.includes(labels[key]);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      return false;
  }
}

export function isEmptyLabelSelector(selector) {
  return (
    Boolean(selector) &&
    Object.keys(selector.matchLabels ?? {}).length === 0 &&
    (selector.matchExpressions ?? []).length === 0
  );
}

// A Service's (or ReplicationController's) plain map selector: empty or missing selects nothing.
export function mapSelectorMatches(selector, labels) {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}

export function describeSelector(selector) {
  return JSON.stringify(selector ?? null);
}

// ------------------------------------------------------------------ workloads and containers

export function podTemplateOf(obj) {
  if (obj.kind === 'CronJob') return obj.spec?.jobTemplate?.spec?.template;
  if (obj.kind === 'Pod') return { metadata: obj.metadata, spec: obj.spec };
  return obj.spec?.template;
}

// Every object that carries a pod template, with what the checks need to know about its pods.
export function podOwnersOf(objects) {
  return objects.filter((o) => podTemplateOf(o)?.spec).map(describePodOwner);
}

export function workloadsOf(objects) {
  return podOwnersOf(objects).filter((w) => WORKLOAD_KINDS.has(w.obj.kind));
}

function describePodOwner(obj) {
  const template = podTemplateOf(obj);
  const podSpec = template.spec;
  const claimTemplates = (obj.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name);
  return {
    obj,
    id: idOf(obj),
    namespace: namespaceOf(obj),
    podSpec,
    labels: template.metadata?.labels ?? {},
    replicas: obj.spec?.replicas ?? 1,
    containers: containersOf(podSpec),
    claimTemplates,
    mountsPersistentVolume: claimTemplates.length > 0 || (podSpec.volumes ?? []).some((v) => v.persistentVolumeClaim),
  };
}

// Regular containers, then init containers; an init container with restartPolicy Always is a
// sidecar that keeps running next to the others (and may have probes).
export function containersOf(podSpec) {
  const regular = (podSpec.containers ?? []).map((c) => ({ c, init: false, longRunning: true }));
  const init = (podSpec.initContainers ?? []).map((c) => ({
    c,
    init: true,
    longRunning: c.restartPolicy === 'Always',
  }));
  return [...regular, ...init];
}

export function containerLabel({ c, init }) {
  return `${init ? 'initContainer' : 'container'} ${c.name ?? '?'}`;
}

// The repository part of an image reference (registry/path, without tag or digest).
export function imageRepository(image = '') {
  const withoutDigest = image.split('@')[0];
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  return colon > lastSlash ? withoutDigest.slice(0, colon) : withoutDigest;
}

export function isClustergovContainer(c) {
  return imageRepository(c.image).includes('clustergov');
}

// ------------------------------------------------------------------ ports

// A port reference (number or IANA name) as Services, probes and NetworkPolicies write it.
export function portRefMatches(ref, containerPort, protocol = 'TCP') {
  if ((containerPort.protocol ?? 'TCP') !== protocol) return false;
  return typeof ref === 'number' ? containerPort.containerPort === ref : containerPort.name === ref;
}

// The container ports of a pod that a reference resolves to (long-running containers only).
export function podPortsMatching(workload, ref, protocol = 'TCP') {
  return workload.containers
    .filter((x) => x.longRunning)
    .flatMap(({ c }) => c.ports ?? [])
    .filter((p) => portRefMatches(ref, p, protocol));
}

// A numeric string ("8080") is still a name to Kubernetes only when it is a string; YAML gives
// numbers for unquoted digits, so this only normalises values that are already numbers.
export function isPortNumber(ref) {
  return Number.isInteger(ref);
}

// ------------------------------------------------------------------ quantities

const QUANTITY_SUFFIXES = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

// A Kubernetes resource.Quantity as a number of base units (cores, bytes); NaN when malformed.
export function parseQuantity(value) {
  if (typeof value === 'number') return value;
  const match = QUANTITY.exec(String(value ?? '').trim());
  if (!match) return NaN;
  const [, number, exponent, suffix = ''] = match;
  return Number(number) * (exponent !== undefined ? 10 ** Number(exponent) : QUANTITY_SUFFIXES[suffix]);
}

// ------------------------------------------------------------------ misc

export function deepCopy(value) {
  return structuredClone(value);
}
