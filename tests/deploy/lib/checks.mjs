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
} from './k8s.mjs';
import {
  isDefaultDeny,
  policiesSelecting,
  policyPortAdmits,
  egressAllowed,
  ingressAllowed,
  ingressFromOutsideAllowed,
  dnsEgressAllowed,
} from './netpol.mjs';
import {
  ENV_PREFIX,
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

// Replicas a workload runs with at least: the HPA's minReplicas when one scales it.
function minimumReplicas(ctx, workload) {
  const hpa = ctx.index
    .ofKind('HorizontalPodAutoscaler', workload.namespace)
    .find(
      (h) =>
        h.spec?.scaleTargetRef?.kind === workload.obj.kind &&
        h.spec?.scaleTargetRef?.name === workload.obj.metadata.name,
    );
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
        `runs ${minimumReplicas(ctx, w)} replicas of a pod with its own volume (SQLite: one writer; replicas would not share data)`,
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
        `scales ${idOf(target)}, whose pods keep a SQLite file on their own volume (a single writer must not scale)`,
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

// The environment a container gets: {values: name -> value (when known offline), sources: name ->
// where it comes from}. envFrom first, then env (which wins).
function containerEnvironment(ctx, ns, c) {
  const values = new Map();
  const sources = new Map();
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
      }
    }
  }
  for (const variable of c.env ?? []) {
    values.delete(variable.name);
    sources.set(variable.name, 'env');
    const keyRef = variable.valueFrom?.configMapKeyRef;
    if (variable.value !== undefined) values.set(variable.name, expandVars(variable.value, values));
    else if (keyRef) {
      const value = ctx.index.find('ConfigMap', ns, keyRef.name)?.data?.[keyRef.key];
      if (value !== undefined) values.set(variable.name, String(value));
    }
  }
  return { values, sources };
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
// except the descriptor set it ships); --db needs a writable one: SQLite writes the file and its
// journal next to it, and the root filesystem is read-only.
function checkPathFlags(owner, c, report, flags) {
  const volumes = new Map((owner.podSpec.volumes ?? []).map((v) => [v.name, v]));
  const mountFor = (path) =>
    (c.volumeMounts ?? [])
      .filter((m) => path === m.mountPath || path.startsWith(m.mountPath.replace(/\/?$/, '/')))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  for (const [flag, { value, source }] of flags) {
    if (source === 'default' || !value || !(flag === 'db' || flag.endsWith('_file'))) continue;
    const mount = mountFor(value);
    if (!mount) report(`--${flag} (${source}) ${value} is on no mounted volume`);
    else if (flag === 'db') {
      const v = volumes.get(mount.name);
      const writable =
        !mount.readOnly &&
        (owner.claimTemplates.includes(mount.name) || v?.persistentVolumeClaim || v?.emptyDir || v?.ephemeral);
      if (!writable)
        report(
          `--db (${source}) ${value} is on volume ${mount.name}, which is not a writable persistent volume or emptyDir`,
        );
    }
  }
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
