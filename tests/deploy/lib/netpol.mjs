// NetworkPolicy semantics as the API documents them: a pod selected by no policy of a type
// (Ingress or Egress) is unrestricted in that direction; once selected, only what some rule of
// some selecting policy allows gets through.

import { labelSelectorMatches, namespaceOf, isEmptyLabelSelector, portRefMatches } from './k8s.mjs';

export function policyTypesOf(policy) {
  const declared = policy.spec?.policyTypes;
  if (declared?.length) return declared;
  return policy.spec?.egress ? ['Ingress', 'Egress'] : ['Ingress'];
}

export function isDefaultDeny(policy) {
  const types = policyTypesOf(policy);
  return (
    isEmptyLabelSelector(policy.spec?.podSelector) &&
    types.includes('Ingress') &&
    types.includes('Egress') &&
    !policy.spec?.ingress?.length &&
    !policy.spec?.egress?.length
  );
}

// Policies of `type` that select pods with `labels` in `namespace`.
export function policiesSelecting(index, namespace, labels, type) {
  return index
    .ofKind('NetworkPolicy', namespace)
    .filter((p) => policyTypesOf(p).includes(type) && labelSelectorMatches(p.spec?.podSelector ?? {}, labels));
}

// A peer of a rule of a policy in `policyNamespace`: does it match a pod (namespace, labels)?
// ipBlock peers never match pods here (pod addresses are not known offline).
export function peerMatchesPod(index, peer, policyNamespace, pod) {
  if (peer.ipBlock) return false;
  const namespaceOk = peer.namespaceSelector
    ? labelSelectorMatches(peer.namespaceSelector, index.namespaceLabels(pod.namespace))
    : pod.namespace === policyNamespace;
  const podOk = peer.podSelector ? labelSelectorMatches(peer.podSelector, pod.labels) : true;
  return namespaceOk && podOk;
}

// Does a policy port entry admit this container port ({containerPort, name, protocol})?
export function policyPortAdmits(entry, containerPort) {
  const protocol = entry.protocol ?? 'TCP';
  if ((containerPort.protocol ?? 'TCP') !== protocol) return false;
  if (entry.port === undefined) return true;
  if (typeof entry.port === 'number' && entry.endPort !== undefined) {
    return containerPort.containerPort >= entry.port && containerPort.containerPort <= entry.endPort;
  }
  return portRefMatches(entry.port, containerPort, protocol);
}

function ruleAdmitsPort(rule, containerPort) {
  return !rule.ports?.length || rule.ports.some((entry) => policyPortAdmits(entry, containerPort));
}

// Egress from pod `from` to pod `to` on `containerPort` of `to`.
export function egressAllowed(index, from, to, containerPort) {
  const policies = policiesSelecting(index, from.namespace, from.labels, 'Egress');
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (p.spec.egress ?? []).some(
      (rule) =>
        ruleAdmitsPort(rule, containerPort) &&
        (!rule.to?.length || rule.to.some((peer) => peerMatchesPod(index, peer, namespaceOf(p), to))),
    ),
  );
}

// Ingress to pod `to` on `containerPort` from pod `from`.
export function ingressAllowed(index, from, to, containerPort) {
  const policies = policiesSelecting(index, to.namespace, to.labels, 'Ingress');
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (p.spec.ingress ?? []).some(
      (rule) =>
        ruleAdmitsPort(rule, containerPort) &&
        (!rule.from?.length || rule.from.some((peer) => peerMatchesPod(index, peer, namespaceOf(p), from))),
    ),
  );
}

// Ingress to pod `to` on `containerPort` from somewhere outside its namespace (an ingress
// controller, Prometheus): a rule with no peers, a namespaceSelector peer, or an ipBlock.
export function ingressFromOutsideAllowed(index, to, containerPort) {
  const policies = policiesSelecting(index, to.namespace, to.labels, 'Ingress');
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (p.spec.ingress ?? []).some(
      (rule) =>
        ruleAdmitsPort(rule, containerPort) &&
        (!rule.from?.length || rule.from.some((peer) => peer.namespaceSelector || peer.ipBlock)),
    ),
  );
}

// Egress from pod `from` on TCP `port` to somewhere outside its namespace (a database in another
// namespace or outside the cluster): a rule with no peers, a namespaceSelector peer, or an ipBlock.
export function egressToOutsideAllowed(index, from, port) {
  const policies = policiesSelecting(index, from.namespace, from.labels, 'Egress');
  if (policies.length === 0) return true;
  const target = { containerPort: port, protocol: 'TCP' };
  return policies.some((p) =>
    (p.spec.egress ?? []).some(
      (rule) =>
        ruleAdmitsPort(rule, target) &&
        (!rule.to?.length || rule.to.some((peer) => peer.namespaceSelector || peer.ipBlock)),
    ),
  );
}

// Egress on port 53 over `protocol` to anywhere (the cluster DNS lives in another namespace).
export function dnsEgressAllowed(index, pod, protocol) {
  const policies = policiesSelecting(index, pod.namespace, pod.labels, 'Egress');
  if (policies.length === 0) return true;
  const dns = { containerPort: 53, name: protocol === 'UDP' ? 'dns' : 'dns-tcp', protocol };
  return policies.some((p) => (p.spec.egress ?? []).some((rule) => ruleAdmitsPort(rule, dns)));
}
