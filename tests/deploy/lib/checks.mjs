// Semantic checks over one render. Each check walks the objects of the render (`ctx.objects`)
// and looks others up in `ctx.index` (the same render; for a render without workloads, such as
// monitoring/, the app render it is checked against as well). A failure is `ctx.report(obj, why)`.

import {
  idOf,
  namespaceOf,
  isNamespaced,
  labelsOf,
  labelSelectorMatches,
  mapSelectorMatches,
  isEmptyLabelSelector,
  describeSelector,
  podOwnersOf,
  workloadsOf,
  containerLabel,
  isClustergovContainer,
  podPortsMatching,
  portRefMatches,
  parseQuantity,
  WORKLOAD_KINDS,
} from './k8s.mjs';
import {
  isDefaultDeny,
  policiesSelecting,
  policyPortAdmits,
  egressAllowed,
  ingressAllowed,
  ingressFromOutsideAllowed,
  dnsEgressAllowed,
  egressToOutsideAllowed,
} from './netpol.mjs';
import {
  ENV_PREFIX,
  envNameOfFlag,
  flagOfEnvName,
  parseFlagArgs,
  isKnownFlag,
  expandVars,
  isAddressFlag,
  addressesOf,
  isIpAddress,
} from './flags.mjs';

export const PART_OF = ['app.kubernetes.io/part-of', 'clustergov'];
const DEFAULT_GRACE_SECONDS = 30;

// ctx: {objects, index, externalSecrets: Set, binaries: BinaryCatalog, report(obj, message)}
export function runChecks(ctx) {
  ctx.workloads = workloadsOf(ctx.objects);
  ctx.podOwners = podOwnersOf(ctx.objects);
  ctx.allWorkloads = workloadsOf(ctx.index.objects);
  ctx.allPodOwners = podOwnersOf(ctx.index.objects);
  for (const check of CHECKS) check(ctx);
}

const CHECKS = [
  checkLabels,
  checkWorkloadSelectors,
  checkServices,
  checkStatefulSets,
  checkPods,
  checkReferences,
  checkDisruptionBudgets,
  checkReplicatedWorkloads,
  checkAutoscalers,
  checkNetworkPolicies,
  checkIngresses,
  checkServiceMonitors,
  checkClustergovFlags,
  checkConfigMapFlagNames,
];

// ------------------------------------------------------------------ helpers

function selectedBy(workloads, namespace, matches) {
  return workloads.filter((w) => w.namespace === namespace && matches(w.labels));
}

function servicePods(ctx, service) {
  return selectedBy(ctx.allWorkloads, namespaceOf(service), (labels) =>
    mapSelectorMatches(service.spec?.selector, labels),
  );
}

function ids(workloads) {
  return workloads.map((w) => w.id).join(', ');
}

function autoscalerOf(ctx, workload) {
  return ctx.index
    .ofKind('HorizontalPodAutoscaler', workload.namespace)
    .find(
      (h) =>
        h.spec?.scaleTargetRef?.kind === workload.obj.kind &&
        h.spec?.scaleTargetRef?.name === workload.obj.metadata.name,
    );
}

// Replicas a workload runs with at least: the HPA's minReplicas when one scales it.
function minimumReplicas(ctx, workload) {
  const hpa = autoscalerOf(ctx, workload);
  return hpa ? (hpa.spec.minReplicas ?? 1) : workload.replicas;
}

// The container ports of a Service port's targetPort on each selected workload.
function targetContainerPorts(ctx, service, servicePort) {
  const target = servicePort.targetPort ?? servicePort.port;
  return servicePods(ctx, service).map((w) => ({
    workload: w,
    ports: podPortsMatching(w, target, servicePort.protocol ?? 'TCP'),
  }));
}

function intOrPercent(value, total) {
  if (typeof value === 'number') return value;
  const match = /^(\d+)%$/.exec(String(value));
  return match ? Math.ceil((Number(match[1]) * total) / 100) : NaN;
}

// ------------------------------------------------------------------ labels

function checkLabels(ctx) {
  const [key, value] = PART_OF;
  for (const obj of ctx.objects) {
    if (labelsOf(obj)[key] !== value) ctx.report(obj, `metadata.labels lacks ${key}: ${value}`);
    if (isNamespaced(obj) && !obj.metadata?.namespace)
      ctx.report(obj, 'no metadata.namespace (it would land in whatever namespace kubectl uses)');
  }
}

// ------------------------------------------------------------------ workloads and Services

function checkWorkloadSelectors(ctx) {
  for (const w of ctx.workloads) {
    const selector = w.obj.spec?.selector;
    if (!selector) ctx.report(w.obj, 'spec.selector is missing');
    else if (!labelSelectorMatches(selector, w.labels)) {
      ctx.report(
        w.obj,
        `spec.selector ${describeSelector(selector)} does not match the pod template labels ${describeSelector(w.labels)}`,
      );
    }
    const services = ctx.index
      .ofKind('Service', w.namespace)
      .filter((s) => mapSelectorMatches(s.spec?.selector, w.labels));
    if (services.length === 0) ctx.report(w.obj, `no Service selects its pods (labels ${describeSelector(w.labels)})`);
  }
}

function checkServices(ctx) {
  for (const service of ctx.objects.filter((o) => o.kind === 'Service')) {
    if (service.spec?.type === 'ExternalName') continue;
    const pods = servicePods(ctx, service);
    if (pods.length === 0)
      ctx.report(service, `selector ${describeSelector(service.spec?.selector)} selects no workload's pods`);
    for (const [i, port] of (service.spec?.ports ?? []).entries()) {
      if (!port.name) ctx.report(service, `spec.ports[${i}] (port ${port.port}) has no name`);
      for (const { workload, ports } of targetContainerPorts(ctx, service, port)) {
        if (ports.length === 0) {
          ctx.report(
            service,
            `port ${port.name ?? port.port}: targetPort ${port.targetPort ?? port.port} is not a containerPort of ${workload.id}`,
          );
        }
      }
    }
  }
}

function checkStatefulSets(ctx) {
  for (const w of ctx.workloads.filter((x) => x.obj.kind === 'StatefulSet')) {
    const name = w.obj.spec?.serviceName;
    const service = name && ctx.index.find('Service', w.namespace, name);
    if (!service) ctx.report(w.obj, `serviceName ${JSON.stringify(name)} is not a Service in the render`);
    else if (service.spec?.clusterIP !== 'None')
      ctx.report(w.obj, `serviceName ${name} is not headless (clusterIP: None): pods get no stable DNS names`);
    if (w.mountsPersistentVolume && minimumReplicas(ctx, w) > 1) {
      ctx.report(
        w.obj,
        `runs ${minimumReplicas(ctx, w)} replicas of a pod with its own volume (each replica would keep its own copy of the data)`,
      );
    }
  }
}

// ------------------------------------------------------------------ pods and containers

function checkPods(ctx) {
  for (const owner of ctx.podOwners) {
    checkPodSecurity(ctx, owner);
    for (const entry of owner.containers) {
      const report = (message) => ctx.report(owner.obj, `${containerLabel(entry)}: ${message}`);
      if (!entry.c.image) report('no image');
      checkResources(report, entry.c);
      checkContainerSecurity(report, entry.c, owner.podSpec.securityContext ?? {});
      if (entry.longRunning) checkProbes(report, entry.c);
      else if (entry.c.readinessProbe || entry.c.livenessProbe || entry.c.startupProbe)
        report('an init container cannot have probes');
      checkScratchVolume(report, owner, entry.c);
      checkPreStop(report, owner, entry.c);
    }
  }
}

function checkResources(report, c) {
  const amounts = {};
  for (const section of ['requests', 'limits']) {
    for (const resource of ['cpu', 'memory']) {
      const value = c.resources?.[section]?.[resource];
      const amount = parseQuantity(value);
      if (value === undefined) report(`resources.${section}.${resource} is missing`);
      else if (Number.isNaN(amount))
        report(`resources.${section}.${resource} ${JSON.stringify(value)} is not a quantity`);
      else amounts[`${section}.${resource}`] = amount;
    }
  }
  for (const resource of ['cpu', 'memory']) {
    const request = amounts[`requests.${resource}`];
    const limit = amounts[`limits.${resource}`];
    if (request !== undefined && limit !== undefined && request > limit) {
      report(
        `resources.requests.${resource} (${c.resources.requests[resource]}) exceeds resources.limits.${resource} (${c.resources.limits[resource]})`,
      );
    }
  }
}

function checkContainerSecurity(report, c, pod) {
  const sc = c.securityContext ?? {};
  if (sc.allowPrivilegeEscalation !== false) report('securityContext.allowPrivilegeEscalation must be false');
  if (sc.readOnlyRootFilesystem !== true) report('securityContext.readOnlyRootFilesystem must be true');
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) report('securityContext.capabilities.drop must contain ALL');
  const added = (sc.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
  if (added.length)
    report(`securityContext.capabilities.add ${added.join(', ')} is refused by the restricted pod security standard`);
  if (sc.privileged === true) report('securityContext.privileged must not be true');
  if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true)
    report('runAsNonRoot must be true (pod or container securityContext)');
  if ((sc.runAsUser ?? pod.runAsUser) === 0) report('runAsUser must not be 0');
  const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
  if (seccomp !== 'RuntimeDefault')
    report(`seccompProfile.type must be RuntimeDefault (pod or container), is ${seccomp ?? 'unset'}`);
  for (const port of c.ports ?? []) {
    if (port.hostPort) report(`port ${port.name ?? port.containerPort} uses hostPort ${port.hostPort}`);
  }
}

function checkPodSecurity(ctx, owner) {
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
    if (owner.podSpec[field] === true) ctx.report(owner.obj, `pod ${field} must not be true`);
  }
  for (const volume of owner.podSpec.volumes ?? []) {
    if (volume.hostPath)
      ctx.report(owner.obj, `volume ${volume.name} is a hostPath (refused by the restricted pod security standard)`);
  }
}

function checkProbes(report, c) {
  const required = ['readinessProbe', 'livenessProbe', ...(isClustergovContainer(c) ? ['startupProbe'] : [])];
  for (const kind of required) if (!c[kind]) report(`no ${kind}`);
  for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    const problem = c[kind] && probePortProblem(c, c[kind]);
    if (problem) report(`${kind}: ${problem}`);
  }
}

function probePortProblem(c, probe) {
  const declared = c.ports ?? [];
  if (probe.grpc) {
    const port = probe.grpc.port;
    if (!Number.isInteger(port)) return `grpc.port ${JSON.stringify(port)} must be an integer`;
    return declared.some((p) => portRefMatches(port, p))
      ? null
      : `grpc.port ${port} is not one of the container's ports`;
  }
  const handler = probe.httpGet ?? probe.tcpSocket;
  if (!handler) return null;
  const field = probe.httpGet ? 'httpGet.port' : 'tcpSocket.port';
  const port = handler.port;
  if (typeof port === 'string' && /^\d+$/.test(port))
    return `${field} "${port}" is a string: write the number unquoted`;
  if (!Number.isInteger(port) && typeof port !== 'string')
    return `${field} ${JSON.stringify(port)} is neither a number nor a port name`;
  return declared.some((p) => portRefMatches(port, p)) ? null : `${field} ${port} is not one of the container's ports`;
}

// A clustergov binary with a read-only root filesystem still writes (SQLite journal, temp files):
// it needs an emptyDir or a persistent volume mounted somewhere.
function checkScratchVolume(report, owner, c) {
  if (!isClustergovContainer(c) || c.securityContext?.readOnlyRootFilesystem !== true) return;
  const volumes = new Map((owner.podSpec.volumes ?? []).map((v) => [v.name, v]));
  const writable = (c.volumeMounts ?? []).some((m) => {
    if (m.readOnly) return false;
    const v = volumes.get(m.name);
    return owner.claimTemplates.includes(m.name) || Boolean(v?.emptyDir || v?.persistentVolumeClaim || v?.ephemeral);
  });
  if (!writable) report('read-only root filesystem but no writable emptyDir or persistent volume is mounted');
}

// Seconds the preStop hook takes: lifecycle.preStop.sleep.seconds, or `sleep N` in an exec hook;
// null when it cannot be told (httpGet, or exec without sleep).
export function preStopSeconds(c) {
  const hook = c.lifecycle?.preStop;
  if (!hook) return 0;
  if (hook.sleep) return Number(hook.sleep.seconds);
  const command = (hook.exec?.command ?? []).join(' ');
  const match = /\bsleep\s+(\d+(?:\.\d+)?)\b/.exec(command);
  return match ? Number(match[1]) : null;
}

function gracePeriod(owner) {
  return owner.podSpec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
}

function checkPreStop(report, owner, c) {
  const seconds = preStopSeconds(c);
  if (seconds === null) return;
  if (seconds > 0 && seconds >= gracePeriod(owner)) {
    report(`preStop takes ${seconds}s, not less than terminationGracePeriodSeconds ${gracePeriod(owner)}`);
  }
}

// ------------------------------------------------------------------ ConfigMap / Secret / ServiceAccount references

function checkReferences(ctx) {
  for (const owner of ctx.podOwners) {
    const ns = owner.namespace;
    const where = (text) => (message) => ctx.report(owner.obj, `${text}: ${message}`);
    const account = owner.podSpec.serviceAccountName ?? owner.podSpec.serviceAccount;
    if (account && account !== 'default' && !ctx.index.find('ServiceAccount', ns, account)) {
      ctx.report(owner.obj, `serviceAccountName ${account} is not a ServiceAccount in the render`);
    }
    for (const { name } of owner.podSpec.imagePullSecrets ?? [])
      requireSecret(ctx, ns, name, undefined, where('imagePullSecrets'));
    for (const entry of owner.containers) checkContainerReferences(ctx, ns, entry, where(containerLabel(entry)));
    for (const volume of owner.podSpec.volumes ?? [])
      checkVolumeReferences(ctx, ns, volume, where(`volume ${volume.name}`));
  }
}

function checkContainerReferences(ctx, ns, { c }, report) {
  for (const source of c.envFrom ?? []) {
    if (source.configMapRef && !source.configMapRef.optional)
      requireConfigMap(ctx, ns, source.configMapRef.name, undefined, report);
    if (source.secretRef && !source.secretRef.optional)
      requireSecret(ctx, ns, source.secretRef.name, undefined, report);
  }
  for (const variable of c.env ?? []) {
    const from = variable.valueFrom ?? {};
    const sub = (message) => report(`env ${variable.name}: ${message}`);
    if (from.configMapKeyRef && !from.configMapKeyRef.optional)
      requireConfigMap(ctx, ns, from.configMapKeyRef.name, from.configMapKeyRef.key, sub);
    if (from.secretKeyRef && !from.secretKeyRef.optional)
      requireSecret(ctx, ns, from.secretKeyRef.name, from.secretKeyRef.key, sub);
  }
}

function checkVolumeReferences(ctx, ns, volume, report) {
  const keys = (items) => (items ?? []).map((i) => i.key);
  if (volume.configMap && !volume.configMap.optional)
    requireConfigMap(ctx, ns, volume.configMap.name, keys(volume.configMap.items), report);
  if (volume.secret && !volume.secret.optional)
    requireSecret(ctx, ns, volume.secret.secretName, keys(volume.secret.items), report);
  for (const source of volume.projected?.sources ?? []) {
    if (source.configMap && !source.configMap.optional)
      requireConfigMap(ctx, ns, source.configMap.name, keys(source.configMap.items), report);
    if (source.secret && !source.secret.optional)
      requireSecret(ctx, ns, source.secret.name, keys(source.secret.items), report);
  }
}

function requireKeys(kind, obj, keys, report) {
  const present = new Set([
    ...Object.keys(obj.data ?? {}),
    ...Object.keys(obj.binaryData ?? {}),
    ...Object.keys(obj.stringData ?? {}),
  ]);
  for (const key of [keys ?? []].flat()) {
    if (!present.has(key))
      report(`${kind} ${obj.metadata.name} has no key ${key} (keys: ${[...present].join(', ') || 'none'})`);
  }
}

function requireConfigMap(ctx, ns, name, keys, report) {
  const cm = ctx.index.find('ConfigMap', ns, name);
  if (!cm) report(`ConfigMap ${name} is not in the render`);
  else requireKeys('ConfigMap', cm, keys, report);
}

function requireSecret(ctx, ns, name, keys, report) {
  const secret = ctx.index.find('Secret', ns, name);
  if (secret) requireKeys('Secret', secret, keys, report);
  else if (!ctx.externalSecrets.has(name))
    report(`Secret ${name} is neither in the render nor listed in ${ctx.externalSecretsFile}`);
}

// ------------------------------------------------------------------ PodDisruptionBudgets and autoscalers

function checkDisruptionBudgets(ctx) {
  for (const pdb of ctx.objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
    const selector = pdb.spec?.selector;
    const pods = selectedBy(ctx.allWorkloads, namespaceOf(pdb), (labels) => labelSelectorMatches(selector, labels));
    if (pods.length === 0) {
      ctx.report(pdb, `selector ${describeSelector(selector)} selects no workload's pods`);
      continue;
    }
    const replicas = pods.reduce((sum, w) => sum + minimumReplicas(ctx, w), 0);
    const { minAvailable, maxUnavailable } = pdb.spec;
    const blocks =
      minAvailable !== undefined
        ? intOrPercent(minAvailable, replicas) >= replicas
        : maxUnavailable !== undefined && intOrPercent(maxUnavailable, replicas) === 0;
    if (blocks) {
      const rule = minAvailable !== undefined ? `minAvailable ${minAvailable}` : `maxUnavailable ${maxUnavailable}`;
      ctx.report(pdb, `${rule} with ${replicas} replica(s) of ${ids(pods)} allows no eviction: node drains would hang`);
    }
  }
}

// A workload running several replicas survives a node drain, a node loss and a rollout only if a
// PodDisruptionBudget limits evictions, its pods are spread over nodes, and (a Deployment) a rollout
// starts each replacement before it stops a replica.
function checkReplicatedWorkloads(ctx) {
  for (const w of ctx.workloads) {
    const replicas = minimumReplicas(ctx, w);
    if (replicas < 2) continue;
    const budgets = ctx.index
      .ofKind('PodDisruptionBudget', w.namespace)
      .filter((pdb) => labelSelectorMatches(pdb.spec?.selector, w.labels));
    if (budgets.length === 0)
      ctx.report(w.obj, `runs ${replicas} replicas but no PodDisruptionBudget selects its pods (drains may evict all)`);
    if (!spreadOverNodes(w))
      ctx.report(
        w.obj,
        `runs ${replicas} replicas with no topologySpreadConstraints or podAntiAffinity over ${HOSTNAME} selecting its pods (they may share one node)`,
      );
    if (w.obj.kind === 'Deployment') checkRollout(ctx, w);
  }
}

const HOSTNAME = 'kubernetes.io/hostname';

function spreadOverNodes(w) {
  const selects = (term) => term.topologyKey === HOSTNAME && labelSelectorMatches(term.labelSelector, w.labels);
  const antiAffinity = w.podSpec.affinity?.podAntiAffinity ?? {};
  return (
    (w.podSpec.topologySpreadConstraints ?? []).some(selects) ||
    (antiAffinity.requiredDuringSchedulingIgnoredDuringExecution ?? []).some(selects) ||
    (antiAffinity.preferredDuringSchedulingIgnoredDuringExecution ?? []).some((p) => selects(p.podAffinityTerm ?? {}))
  );
}

// maxUnavailable (default 25%, rounded down) at the most replicas the workload runs must be 0.
function checkRollout(ctx, w) {
  const strategy = w.obj.spec?.strategy ?? {};
  if (strategy.type === 'Recreate')
    return ctx.report(w.obj, 'strategy Recreate stops every replica before starting the new ones');
  const most = autoscalerOf(ctx, w)?.spec?.maxReplicas ?? w.replicas;
  const value = strategy.rollingUpdate?.maxUnavailable ?? '25%';
  const percent = /^(\d+)%$/.exec(String(value));
  const unavailable = percent ? Math.floor((Number(percent[1]) * most) / 100) : Number(value);
  if (unavailable !== 0)
    ctx.report(
      w.obj,
      `rollingUpdate.maxUnavailable ${value} lets a rollout stop up to ${unavailable} of ${most} replicas before their replacements are ready (set 0)`,
    );
}

function apiGroup(apiVersion = '') {
  return apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
}

function checkAutoscalers(ctx) {
  for (const hpa of ctx.objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
    const ref = hpa.spec?.scaleTargetRef ?? {};
    const target = ctx.index.find(ref.kind, namespaceOf(hpa), ref.name);
    const min = hpa.spec?.minReplicas ?? 1;
    if (min > hpa.spec?.maxReplicas) ctx.report(hpa, `minReplicas ${min} exceeds maxReplicas ${hpa.spec.maxReplicas}`);
    if (!target) {
      ctx.report(hpa, `scaleTargetRef ${ref.kind}/${ref.name} is not in the render`);
      continue;
    }
    if (apiGroup(ref.apiVersion) !== apiGroup(target.apiVersion)) {
      ctx.report(
        hpa,
        `scaleTargetRef apiVersion ${ref.apiVersion} does not match ${idOf(target)} (${target.apiVersion})`,
      );
    }
    const [workload] = workloadsOf([target]);
    if (target.kind === 'StatefulSet' && workload?.mountsPersistentVolume) {
      ctx.report(
        hpa,
        `scales ${idOf(target)}, whose pods keep their data on their own volumes (replicas would not share it)`,
      );
    }
    if (target.spec?.replicas !== undefined) {
      ctx.report(
        hpa,
        `${idOf(target)} sets spec.replicas (${target.spec.replicas}) although this HPA owns it: every apply resets the scale`,
      );
    }
  }
}

// ------------------------------------------------------------------ NetworkPolicies

function checkNetworkPolicies(ctx) {
  checkDefaultDeny(ctx);
  for (const policy of ctx.objects.filter((o) => o.kind === 'NetworkPolicy')) checkPolicy(ctx, policy);
  checkDnsEgress(ctx);
}

function checkDefaultDeny(ctx) {
  for (const ns of new Set(ctx.workloads.map((w) => w.namespace))) {
    if (!ctx.index.ofKind('NetworkPolicy', ns).some(isDefaultDeny)) {
      const namespace = ctx.index.find('Namespace', '', ns) ?? { kind: 'Namespace', metadata: { name: ns } };
      ctx.report(namespace, 'no default-deny NetworkPolicy (podSelector {}, policyTypes [Ingress, Egress], no rules)');
    }
  }
}

function portsOn(workloads, entry) {
  return workloads.some((w) =>
    w.containers.filter((x) => x.longRunning).some(({ c }) => (c.ports ?? []).some((p) => policyPortAdmits(entry, p))),
  );
}

function describePolicyPort(entry) {
  return `${entry.port}${entry.endPort ? `-${entry.endPort}` : ''}/${entry.protocol ?? 'TCP'}`;
}

function inNamespacePeer(peer) {
  return peer.podSelector && !peer.namespaceSelector && !peer.ipBlock;
}

function checkPolicy(ctx, policy) {
  const ns = namespaceOf(policy);
  const podSelector = policy.spec?.podSelector;
  const selected = selectedBy(ctx.allWorkloads, ns, (labels) => labelSelectorMatches(podSelector ?? {}, labels));
  if (!isEmptyLabelSelector(podSelector) && selected.length === 0) {
    ctx.report(policy, `podSelector ${describeSelector(podSelector)} selects no workload's pods`);
  }
  for (const [i, rule] of (policy.spec?.ingress ?? []).entries()) {
    for (const entry of (rule.ports ?? []).filter((e) => e.port !== undefined)) {
      if (selected.length && !portsOn(selected, entry)) {
        ctx.report(
          policy,
          `ingress[${i}] port ${describePolicyPort(entry)} is not a containerPort of the selected pods (${ids(selected)})`,
        );
      }
    }
    checkPeers(ctx, policy, `ingress[${i}].from`, rule.from, null);
  }
  for (const [i, rule] of (policy.spec?.egress ?? []).entries())
    checkPeers(ctx, policy, `egress[${i}].to`, rule.to, rule.ports);
}

// In-namespace podSelector peers must select pods; for egress rules whose peers are all such
// pods, each port must exist on them.
function checkPeers(ctx, policy, where, peers = [], ports) {
  const ns = namespaceOf(policy);
  const targets = [];
  for (const peer of peers.filter(inNamespacePeer)) {
    const pods = selectedBy(ctx.allWorkloads, ns, (labels) => labelSelectorMatches(peer.podSelector, labels));
    if (pods.length === 0)
      ctx.report(policy, `${where} podSelector ${describeSelector(peer.podSelector)} selects no workload's pods`);
    targets.push(...pods);
  }
  if (!ports || !peers.length || !peers.every(inNamespacePeer) || targets.length === 0) return;
  for (const entry of ports.filter((e) => e.port !== undefined)) {
    if (!portsOn(targets, entry))
      ctx.report(policy, `${where}: port ${describePolicyPort(entry)} is not a containerPort of ${ids(targets)}`);
  }
}

// Pods resolve names (Service DNS) when they are clustergov services (they call Redis and each
// other by name) or when any of their egress rules allows something besides DNS.
function needsDns(ctx, w) {
  if (w.containers.some(({ c }) => isClustergovContainer(c))) return true;
  return policiesSelecting(ctx.index, w.namespace, w.labels, 'Egress').some((p) =>
    (p.spec.egress ?? []).some(
      (rule) => !rule.ports?.length || rule.ports.some((e) => e.port !== 53 && !String(e.port ?? '').startsWith('dns')),
    ),
  );
}

function checkDnsEgress(ctx) {
  for (const w of ctx.workloads.filter((x) => needsDns(ctx, x))) {
    for (const protocol of ['UDP', 'TCP']) {
      if (!dnsEgressAllowed(ctx.index, w, protocol))
        ctx.report(w.obj, `NetworkPolicies allow no DNS egress (port 53/${protocol})`);
    }
  }
}

// ------------------------------------------------------------------ Ingress and ServiceMonitor

function checkIngresses(ctx) {
  for (const ingress of ctx.objects.filter((o) => o.kind === 'Ingress')) {
    const ns = namespaceOf(ingress);
    const backends = [
      ingress.spec?.defaultBackend,
      ...(ingress.spec?.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
    ];
    for (const backend of backends.filter((b) => b?.service)) checkIngressBackend(ctx, ingress, ns, backend.service);
    for (const tls of ingress.spec?.tls ?? []) {
      if (tls.secretName) requireSecret(ctx, ns, tls.secretName, undefined, (m) => ctx.report(ingress, `tls: ${m}`));
    }
  }
}

function servicePortByRef(service, ref) {
  return (service.spec?.ports ?? []).find((p) =>
    ref.name !== undefined ? p.name === ref.name : p.port === ref.number,
  );
}

function checkIngressBackend(ctx, ingress, ns, backend) {
  const service = ctx.index.find('Service', ns, backend.name);
  if (!service) return ctx.report(ingress, `backend Service ${backend.name} is not in the render`);
  const ref = backend.port ?? {};
  const port = servicePortByRef(service, ref);
  if (!port)
    return ctx.report(ingress, `backend port ${ref.name ?? ref.number} is not a port of Service ${backend.name}`);
  requireReachableFromOutside(ctx, ingress, service, port, 'the ingress controller');
}

// Traffic from another namespace (ingress controller, Prometheus) to the pods behind a Service port.
function requireReachableFromOutside(ctx, obj, service, port, who) {
  for (const { workload, ports } of targetContainerPorts(ctx, service, port)) {
    for (const containerPort of ports) {
      if (!ingressFromOutsideAllowed(ctx.index, workload, containerPort)) {
        ctx.report(
          obj,
          `NetworkPolicies let nothing outside namespace ${workload.namespace} reach ${workload.id} port ${containerPort.name ?? containerPort.containerPort} (${who} could not connect)`,
        );
      }
    }
  }
}

function monitoredNamespaces(monitor) {
  const selector = monitor.spec?.namespaceSelector;
  if (selector?.any) return null;
  return selector?.matchNames?.length ? selector.matchNames : [namespaceOf(monitor)];
}

function checkServiceMonitors(ctx) {
  for (const monitor of ctx.objects.filter((o) => o.kind === 'ServiceMonitor')) {
    const namespaces = monitoredNamespaces(monitor);
    const services = ctx.index
      .ofKind('Service')
      .filter(
        (s) =>
          (!namespaces || namespaces.includes(namespaceOf(s))) &&
          labelSelectorMatches(monitor.spec?.selector, labelsOf(s)),
      );
    if (services.length === 0) {
      ctx.report(
        monitor,
        `selector ${describeSelector(monitor.spec?.selector)} selects no Service in namespace(s) ${namespaces?.join(', ') ?? 'any'}`,
      );
      continue;
    }
    for (const endpoint of monitor.spec?.endpoints ?? []) {
      if (endpoint.port === undefined) continue;
      for (const service of services) {
        const port = servicePortByRef(service, { name: endpoint.port });
        if (!port)
          ctx.report(monitor, `endpoint port ${endpoint.port} is not a port of Service ${service.metadata.name}`);
        else requireReachableFromOutside(ctx, monitor, service, port, 'Prometheus');
      }
    }
  }
}

// ------------------------------------------------------------------ clustergov flags

// The environment a container gets: {values: name -> value (when known offline: ConfigMaps, literal
// values, secretKeyRefs to Secrets the render holds), sources: name -> where it comes from,
// secrets: name -> the Secret it comes from}. envFrom first, then env (which wins).
function containerEnvironment(ctx, ns, c) {
  const values = new Map();
  const sources = new Map();
  const secrets = new Map();
  for (const from of c.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    if (from.configMapRef) {
      const cm = ctx.index.find('ConfigMap', ns, from.configMapRef.name);
      for (const [key, value] of Object.entries(cm?.data ?? {})) {
        values.set(prefix + key, String(value));
        sources.set(prefix + key, `ConfigMap ${from.configMapRef.name}`);
      }
    }
    if (from.secretRef) {
      const secret = ctx.index.find('Secret', ns, from.secretRef.name);
      for (const key of [...Object.keys(secret?.data ?? {}), ...Object.keys(secret?.stringData ?? {})]) {
        values.delete(prefix + key);
        sources.set(prefix + key, `Secret ${from.secretRef.name}`);
        secrets.set(prefix + key, `Secret ${from.secretRef.name}`);
      }
    }
  }
  for (const variable of c.env ?? []) {
    values.delete(variable.name);
    secrets.delete(variable.name);
    sources.set(variable.name, 'env');
    const keyRef = variable.valueFrom?.configMapKeyRef;
    const secretRef = variable.valueFrom?.secretKeyRef;
    if (variable.value !== undefined) values.set(variable.name, expandVars(variable.value, values));
    else if (keyRef) {
      const value = ctx.index.find('ConfigMap', ns, keyRef.name)?.data?.[keyRef.key];
      if (value !== undefined) values.set(variable.name, String(value));
    } else if (secretRef) {
      secrets.set(variable.name, `Secret ${secretRef.name} key ${secretRef.key}`);
      const value = secretValue(ctx.index.find('Secret', ns, secretRef.name), secretRef.key);
      if (value !== undefined) values.set(variable.name, value);
    }
  }
  return { values, sources, secrets };
}

// A key of a Secret as the pod sees it (data is base64, which kustomize may wrap); undefined when
// the Secret or the key is not there.
function secretValue(secret, key) {
  if (secret?.stringData?.[key] !== undefined) return String(secret.stringData[key]);
  const data = secret?.data?.[key];
  return data === undefined ? undefined : Buffer.from(String(data).replace(/\s/g, ''), 'base64').toString('utf8');
}

// Flag -> {value, source} for the flags the binary reads: its default, then the environment,
// then the command line. (A flag it registers but never reads is inert: left out.)
function effectiveFlags(binary, args, env) {
  const result = new Map(
    [...binary.flags]
      .filter(([name]) => binary.reads(name))
      .map(([name, f]) => [name, { value: f.default, source: 'default' }]),
  );
  for (const [name, value] of env.values) {
    const flag = flagOfEnvName(name);
    if (flag && result.has(flag)) result.set(flag, { value, source: `env ${name}` });
  }
  for (const { name, value } of parseFlagArgs(args, binary.flags)) {
    if (result.has(name) && value !== undefined) result.set(name, { value, source: 'args' });
  }
  return result;
}

function checkClustergovFlags(ctx) {
  for (const owner of ctx.podOwners) {
    for (const entry of owner.containers.filter(({ c }) => isClustergovContainer(c))) {
      const report = (message) => ctx.report(owner.obj, `${containerLabel(entry)}: ${message}`);
      checkContainerFlags(ctx, owner, entry.c, report);
    }
  }
}

function checkContainerFlags(ctx, owner, c, report) {
  if (!c.command?.length)
    return report(
      'no command: the clustergov image has no entrypoint, name the binary (/usr/local/bin/clustergov-<service>)',
    );
  const binary = ctx.binaries.binary(c.command[0]);
  if (binary.error) return report(binary.error);
  const env = containerEnvironment(ctx, owner.namespace, c);
  const args = [...c.command.slice(1), ...(c.args ?? [])].map((a) => expandVars(a, env.values));
  let clean = true;
  for (const { name, raw } of parseFlagArgs(args, binary.flags)) {
    if (!isKnownFlag(binary.flags, name)) {
      report(
        `unknown flag --${name} in ${JSON.stringify(raw)}: ${binary.name} has no such flag (the pod would crash-loop)`,
      );
      clean = false;
    }
  }
  for (const [name, source] of env.sources) {
    const flag = flagOfEnvName(name);
    if (source !== 'env' || !flag) continue;
    if (!binary.flags.has(flag))
      report(`env ${name} sets no flag of ${binary.name} (no --${flag}; it would be silently ignored)`);
    else if (!binary.reads(flag)) report(`env ${name} sets --${flag}, which ${binary.name} registers but never reads`);
  }
  for (const { name } of parseFlagArgs(args, binary.flags)) {
    if (binary.flags.has(name) && !binary.reads(name))
      report(`--${name}: ${binary.name} registers this flag but never reads it`);
  }
  if (clean) {
    const problem = ctx.binaries.checkCommandLine(binary, args, env.values);
    if (problem)
      report(`${binary.name} ${args.join(' ')} --only_check_args refuses its flags or environment: ${problem}`);
  }
  const flags = effectiveFlags(binary, args, env);
  checkShutdownBudget(report, owner, c, flags);
  checkAddresses(ctx, owner, report, flags);
  checkPathFlags(owner, c, report, flags);
  if (binary.reads('db')) checkStore(ctx, owner, c, report, storeOf(c, binary, env, flags));
}

// On SIGTERM a service reports NOT_SERVING for --pre_stop_seconds, then drains for
// --drain_seconds; after a preStop hook, all of it must fit in the grace period or the kubelet
// kills it mid-drain.
function checkShutdownBudget(report, owner, c, flags) {
  const hook = preStopSeconds(c) ?? 0;
  const preStop = Number(flags.get('pre_stop_seconds')?.value ?? 0);
  const drain = Number(flags.get('drain_seconds')?.value ?? 0);
  if (!Number.isFinite(preStop) || !Number.isFinite(drain)) return;
  const total = hook + preStop + drain;
  if (total >= gracePeriod(owner)) {
    report(
      `shutdown takes ${total}s (preStop hook ${hook}s + --pre_stop_seconds ${preStop} + --drain_seconds ${drain}), not less than terminationGracePeriodSeconds ${gracePeriod(owner)}`,
    );
  }
}

// File flags set in the manifest must point into a mounted volume (the image has no such files,
// except the descriptor set it ships). --db is checkStore's.
function checkPathFlags(owner, c, report, flags) {
  for (const [flag, { value, source }] of flags) {
    if (source === 'default' || !value || !flag.endsWith('_file')) continue;
    if (!mountFor(c, value)) report(`--${flag} (${source}) ${value} is on no mounted volume`);
  }
}

// The volume mount holding a path (the deepest one), if any.
function mountFor(c, path) {
  return (c.volumeMounts ?? [])
    .filter((m) => path === m.mountPath || path.startsWith(m.mountPath.replace(/\/?$/, '/')))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

// ------------------------------------------------------------------ stores (--db)

const POSTGRES_URL = /^postgres(?:ql)?:\/\/(?:[^@/]*@)?([^:/?]+)(?::(\d+))?/;

// A service's store as the render tells it: {value: the --db value when known offline, source,
// secret: the Secret it comes from (or null), postgres}. A value from a Secret the render does not
// hold counts as a PostgreSQL connection string: a SQLite file path is no secret.
function storeOf(c, binary, env, flags) {
  const raw = parseFlagArgs([...c.command.slice(1), ...(c.args ?? [])], binary.flags)
    .filter((f) => f.name === 'db' && f.value !== undefined)
    .pop();
  let secret = null;
  if (raw) {
    const variables = [...raw.value.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)].map((m) => m[1]);
    secret = variables.map((v) => env.secrets.get(v)).find(Boolean) ?? null;
  } else {
    secret = env.secrets.get(envNameOfFlag('db')) ?? null;
  }
  const { value, source } = flags.get('db') ?? { source: 'default' };
  const known = source !== 'default' && !/\$\(/.test(value ?? '');
  return {
    value: known ? value : undefined,
    source: raw ? 'args' : (env.sources.get(envNameOfFlag('db')) ?? 'default'),
    secret,
    postgres: known ? POSTGRES_URL.test(value) : secret !== null,
  };
}

// What a service's store asks of its workload. SQLite (a file): one writer, so one replica, and
// the file on a writable volume (the root filesystem is read-only). PostgreSQL: the database holds
// the data and every invariant, so the pods keep nothing (a Deployment, no persistent volume) and
// run at least two replicas; the connection string (with its password) comes from a Secret; when
// the render holds the database, the service can reach it and it keeps its data on a volume.
// ctx.store says what this render's services must use: {postgres: true, database: 'here' (a
// PostgreSQL workload of the render) or 'outside' (NetworkPolicies let the services out to it)}.
function checkStore(ctx, owner, c, report, store) {
  const where = `--db (${store.source}${store.secret ? `: ${store.secret}` : ''})`;
  const longRunning = WORKLOAD_KINDS.has(owner.obj.kind);
  const replicas = longRunning ? minimumReplicas(ctx, owner) : 1;
  if (!store.postgres) {
    const path = store.value ?? '(the default ./data/<service>.db)';
    if (ctx.store?.postgres)
      report(`${where} ${path} is a SQLite file: this environment's services must use PostgreSQL`);
    if (replicas > 1)
      report(`runs ${replicas} replicas on the SQLite file ${path}: one writer only, each replica would have its own`);
    const mount = path.startsWith('/') ? mountFor(c, path) : undefined;
    if (!mount || !isWritableVolume(owner, mount))
      report(`${where} ${path} is not on a writable persistent volume or emptyDir`);
    return;
  }
  if (!store.secret)
    report(`${where} is a PostgreSQL connection string written in the manifest: take it from a Secret (secretKeyRef)`);
  if (longRunning && owner.obj.kind !== 'Deployment')
    report(`is a ${owner.obj.kind} on PostgreSQL: its pods keep nothing, run them as a Deployment`);
  if (owner.mountsPersistentVolume)
    report('mounts a persistent volume although its store is PostgreSQL (its pods keep nothing)');
  if (longRunning && replicas < 2)
    report(`runs ${replicas} replica(s) on PostgreSQL: at least 2, so that a node loss or a rollout does not stop it`);
  const address = store.value && databaseAddress(ctx, owner, store.value);
  if (address) {
    const problem = checkAddress(ctx, owner, address) ?? databaseWorkloadProblem(ctx, address);
    if (problem) report(`${where} ${address.text}: ${problem}`);
  } else if (ctx.store?.database === 'here') {
    report(`${where} does not name a PostgreSQL Service of this render (the environment brings its own database)`);
  } else if (ctx.store?.database === 'outside') {
    const port = Number(POSTGRES_URL.exec(store.value ?? '')?.[2] ?? 5432);
    if (!egressToOutsideAllowed(ctx.index, owner, port))
      report(`NetworkPolicies allow no egress to its database (TCP ${port}, another namespace or an ipBlock)`);
  }
}

function isWritableVolume(owner, mount) {
  const volume = (owner.podSpec.volumes ?? []).find((v) => v.name === mount.name);
  return (
    !mount.readOnly &&
    Boolean(
      owner.claimTemplates.includes(mount.name) ||
        volume?.persistentVolumeClaim ||
        volume?.emptyDir ||
        volume?.ephemeral,
    )
  );
}

// The host and port of a PostgreSQL URL when they name a Service the render could hold (a bare
// name, or <name>.<namespace>[.svc[.cluster.local]] of a namespace in the render); null for
// hosts elsewhere.
function databaseAddress(ctx, owner, url) {
  const [, host, port = '5432'] = POSTGRES_URL.exec(url) ?? [];
  if (!host || isIpAddress(host)) return null;
  const [name, namespace = owner.namespace, ...rest] = host.split('.');
  const inCluster = rest.length === 0 || ['svc', 'svc.cluster.local'].includes(rest.join('.'));
  if (!inCluster || !ctx.index.objects.some((o) => namespaceOf(o) === namespace)) return null;
  return { host: `${name}.${namespace}`, port: Number(port), text: `${host}:${port}` };
}

// A database in the render keeps its data on a persistent volume (a StatefulSet's claim).
function databaseWorkloadProblem(ctx, { host }) {
  const [name, namespace] = host.split('.');
  const service = ctx.index.find('Service', namespace, name);
  const pods = servicePods(ctx, service);
  const volatile = pods.filter((w) => !w.mountsPersistentVolume);
  return volatile.length
    ? `${ids(volatile)} keeps its data on no persistent volume (it would not survive a restart)`
    : null;
}

// Addresses of other services set in the manifest (--redis, --*_addr, --backend): the Service
// exists, the port is one of its ports (headless: a port the pods listen on), and NetworkPolicies
// let this pod reach those pods on it.
function checkAddresses(ctx, owner, report, flags) {
  for (const [flag, { value, source }] of flags) {
    if (!isAddressFlag(flag) || source === 'default' || !value) continue;
    for (const address of addressesOf(flag, value)) {
      if (isIpAddress(address.host)) continue;
      const problem = checkAddress(ctx, owner, address);
      if (problem) report(`--${flag} (${source}) ${address.text}: ${problem}`);
    }
  }
}

function checkAddress(ctx, owner, { host, port }) {
  const [name, namespace = owner.namespace] = host.split('.');
  const service = ctx.index.find('Service', namespace, name);
  if (!service) return `no Service ${name} in namespace ${namespace}`;
  if (!Number.isInteger(port)) return 'no port';
  const headless = service.spec?.clusterIP === 'None';
  const servicePort = (service.spec?.ports ?? []).find((p) => p.port === port);
  if (!headless && !servicePort) return `Service ${name} has no port ${port}`;
  for (const workload of servicePods(ctx, service)) {
    const target = headless ? port : (servicePort.targetPort ?? servicePort.port);
    const [containerPort] = podPortsMatching(workload, target);
    if (!containerPort)
      return `${workload.id} has no containerPort ${target}${headless ? ' (headless Service: clients connect to the pods directly)' : ''}`;
    if (!egressAllowed(ctx.index, owner, workload, containerPort))
      return `NetworkPolicies allow no egress from ${owner.id} to ${workload.id} port ${containerPort.containerPort}`;
    if (!ingressAllowed(ctx.index, owner, workload, containerPort))
      return `NetworkPolicies allow no ingress to ${workload.id} port ${containerPort.containerPort} from ${owner.id}`;
  }
  return null;
}

// A CLUSTERGOV_* key of a ConfigMap must set a flag of some clustergov container that reads the
// ConfigMap through envFrom (of any clustergov binary in the render if none reads it).
function checkConfigMapFlagNames(ctx) {
  for (const cm of ctx.objects.filter((o) => o.kind === 'ConfigMap')) {
    const consumers = configMapConsumers(ctx, cm);
    const candidates = consumers.length ? consumers : allBinaries(ctx).map((binary) => ({ binary, prefix: '' }));
    if (candidates.length === 0) continue;
    for (const key of Object.keys(cm.data ?? {})) {
      const relevant = candidates.filter(({ prefix }) => (prefix + key).startsWith(ENV_PREFIX));
      if (relevant.length && !relevant.some(({ binary, prefix }) => binary.flags.has(flagOfEnvName(prefix + key)))) {
        const names = [...new Set(relevant.map(({ binary }) => binary.name))].join(', ');
        ctx.report(
          cm,
          `key ${key} sets no flag of ${consumers.length ? 'the binaries reading it' : 'any clustergov binary'} (${names}); it would be silently ignored`,
        );
      }
    }
  }
}

function clustergovBinaries(ctx, owner) {
  return owner.containers
    .filter(({ c }) => isClustergovContainer(c) && c.command?.length)
    .map(({ c }) => ({ c, binary: ctx.binaries.binary(c.command[0]) }))
    .filter(({ binary }) => !binary.error);
}

function configMapConsumers(ctx, cm) {
  return ctx.allPodOwners
    .filter((o) => o.namespace === namespaceOf(cm))
    .flatMap((owner) =>
      clustergovBinaries(ctx, owner).flatMap(({ c, binary }) =>
        (c.envFrom ?? [])
          .filter((f) => f.configMapRef?.name === cm.metadata.name)
          .map((f) => ({ binary, prefix: f.prefix ?? '' })),
      ),
    );
}

function allBinaries(ctx) {
  const byName = new Map();
  for (const owner of ctx.allPodOwners)
    for (const { binary } of clustergovBinaries(ctx, owner)) byName.set(binary.name, binary);
  return [...byName.values()];
}
