// Mutations for --self-test: each breaks a copy of a good render in one known way and names the
// failure the validator must then report. `apply(objects)` edits the copy in place and returns
// what it changed, or null when the render has nothing it could break that way.

import { podOwnersOf, workloadsOf, isClustergovContainer, idOf, mapSelectorMatches } from './k8s.mjs';
import { isDefaultDeny, policiesSelecting } from './netpol.mjs';
import { Index } from './k8s.mjs';

function containers(objects, filter = () => true) {
  return podOwnersOf(objects).flatMap((owner) =>
    owner.containers
      .filter((entry) => filter(entry.c, entry))
      .map((entry) => ({ owner, c: entry.c, where: `${owner.id} container ${entry.c.name}` })),
  );
}

function firstClustergov(objects) {
  return containers(objects, (c) => isClustergovContainer(c) && c.command?.length)[0];
}

function probePort(probe) {
  return probe?.grpc ?? probe?.httpGet ?? probe?.tcpSocket;
}

// The first clustergov container whose --db comes from a Secret (CLUSTERGOV_DB, secretKeyRef).
function postgresService(objects) {
  for (const target of containers(objects, (c) => isClustergovContainer(c))) {
    const variable = (target.c.env ?? []).find((e) => e.name === 'CLUSTERGOV_DB' && e.valueFrom?.secretKeyRef);
    if (variable) return { ...target, variable };
  }
  return null;
}

// That service's --db written into the manifest instead.
function setDatabase(objects, value) {
  const target = postgresService(objects);
  if (!target) return null;
  delete target.variable.valueFrom;
  target.variable.value = value;
  return target.where;
}

// The Secret holding that connection string, when the render has it.
function databaseSecret(objects) {
  const target = postgresService(objects);
  const ref = target?.variable.valueFrom.secretKeyRef;
  const secret = ref && objects.find((o) => o.kind === 'Secret' && o.metadata?.name === ref.name);
  return secret?.data?.[ref.key] !== undefined ? { secret, key: ref.key } : null;
}

// The workload behind the connection string's host, when the render has it.
function databaseWorkload(objects) {
  const found = databaseSecret(objects);
  if (!found) return null;
  const url = Buffer.from(found.secret.data[found.key].replace(/\s/g, ''), 'base64').toString('utf8');
  const host = /@([^:/?]+)/.exec(url)?.[1]?.split('.')[0];
  const service = objects.find((o) => o.kind === 'Service' && o.metadata?.name === host);
  return service ? workloadsOf(objects).find((w) => mapSelectorMatches(service.spec?.selector, w.labels)) : null;
}

function firstReplicated(objects) {
  return workloadsOf(objects).find((w) => w.obj.kind === 'Deployment' && w.obj.spec?.replicas >= 2);
}

export const MUTATIONS = [
  {
    name: "remove a container's resources.limits",
    required: true,
    expect: /resources\.limits\.(cpu|memory) is missing/,
    apply(objects) {
      const target = containers(objects, (c) => c.resources?.limits)[0];
      if (!target) return null;
      delete target.c.resources.limits;
      return target.where;
    },
  },
  {
    name: "point a Service port's targetPort at a port no pod has",
    required: true,
    expect: /targetPort no-such-port is not a containerPort/,
    apply(objects) {
      const workloads = workloadsOf(objects);
      const service = objects.find(
        (o) =>
          o.kind === 'Service' &&
          o.spec?.ports?.length &&
          workloads.some((w) => mapSelectorMatches(o.spec.selector, w.labels)),
      );
      if (!service) return null;
      service.spec.ports[0].targetPort = 'no-such-port';
      return `${idOf(service)} port ${service.spec.ports[0].name}`;
    },
  },
  {
    name: 'break a Service selector',
    required: true,
    expect: /selects no workload's pods/,
    apply(objects) {
      const service = objects.find((o) => o.kind === 'Service' && Object.keys(o.spec?.selector ?? {}).length);
      if (!service) return null;
      service.spec.selector = { ...service.spec.selector, 'selftest.invalid/broken': 'true' };
      return idOf(service);
    },
  },
  {
    name: 'add an unknown flag to a clustergov container',
    required: true,
    expect: /unknown flag --no_such_flag_for_selftest/,
    apply(objects) {
      const target = firstClustergov(objects);
      if (!target) return null;
      target.c.args = [...(target.c.args ?? []), '--no_such_flag_for_selftest=1'];
      return target.where;
    },
  },
  {
    name: 'give a flag an invalid value through the environment',
    required: true,
    expect: /--only_check_args refuses.*CLUSTERGOV_WORKER_THREADS/,
    apply(objects) {
      const target = firstClustergov(objects);
      if (!target) return null;
      target.c.env = [
        ...(target.c.env ?? []).filter((e) => e.name !== 'CLUSTERGOV_WORKER_THREADS'),
        { name: 'CLUSTERGOV_WORKER_THREADS', value: 'many' },
      ];
      return target.where;
    },
  },
  {
    name: 'misspell a CLUSTERGOV_ key in a ConfigMap',
    expect: /key CLUSTERGOV_NO_SUCH_FLAG_FOR_SELFTEST sets no flag/,
    apply(objects) {
      const cm = objects.find(
        (o) => o.kind === 'ConfigMap' && Object.keys(o.data ?? {}).some((k) => k.startsWith('CLUSTERGOV_')),
      );
      if (!cm) return null;
      cm.data.CLUSTERGOV_NO_SUCH_FLAG_FOR_SELFTEST = 'x';
      return idOf(cm);
    },
  },
  {
    name: 'probe a port the container does not declare',
    expect: /readinessProbe: .*65000 is not one of the container's ports/,
    apply(objects) {
      const target = containers(objects, (c) => probePort(c.readinessProbe))[0];
      if (!target) return null;
      probePort(target.c.readinessProbe).port = 65000;
      return target.where;
    },
  },
  {
    name: 'reference a Secret that is nowhere',
    expect: /Secret no-such-secret-for-selftest is neither in the render nor listed/,
    apply(objects) {
      const [target] = containers(objects);
      if (!target) return null;
      target.c.env = [
        ...(target.c.env ?? []),
        { name: 'SELFTEST', valueFrom: { secretKeyRef: { name: 'no-such-secret-for-selftest', key: 'k' } } },
      ];
      return target.where;
    },
  },
  {
    name: 'allow privilege escalation',
    expect: /allowPrivilegeEscalation must be false/,
    apply(objects) {
      const [target] = containers(objects, (c) => c.securityContext?.allowPrivilegeEscalation === false);
      if (!target) return null;
      target.c.securityContext.allowPrivilegeEscalation = true;
      return target.where;
    },
  },
  {
    name: 'schema: replicas as a string',
    expect: /schema: \/spec\/replicas: must be integer/,
    apply(objects) {
      const [workload] = workloadsOf(objects);
      if (!workload) return null;
      workload.obj.spec.replicas = 'two';
      return workload.id;
    },
  },
  {
    name: 'remove the default-deny NetworkPolicy',
    expect: /no default-deny NetworkPolicy/,
    apply(objects) {
      const index = objects.findIndex((o) => o.kind === 'NetworkPolicy' && isDefaultDeny(o));
      if (index < 0) return null;
      return idOf(objects.splice(index, 1)[0]);
    },
  },
  {
    name: 'break a PodDisruptionBudget selector',
    expect: /PodDisruptionBudget\/.*selects no workload's pods/,
    apply(objects) {
      const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget');
      if (!pdb) return null;
      pdb.spec.selector = { matchLabels: { 'selftest.invalid/broken': 'true' } };
      return idOf(pdb);
    },
  },
  {
    name: 'make a PodDisruptionBudget forbid every eviction',
    expect: /minAvailable 100% .* allows no eviction/,
    apply(objects) {
      const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget');
      if (!pdb) return null;
      delete pdb.spec.maxUnavailable;
      pdb.spec.minAvailable = '100%';
      return idOf(pdb);
    },
  },
  {
    name: 'autoscale a StatefulSet whose pods keep data on their own volumes',
    expect: /keep their data on their own volumes \(replicas would not share it\)/,
    apply(objects) {
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
      const stateful = workloadsOf(objects).find((w) => w.obj.kind === 'StatefulSet' && w.mountsPersistentVolume);
      if (!hpa || !stateful) return null;
      hpa.spec.scaleTargetRef = { apiVersion: 'apps/v1', kind: 'StatefulSet', name: stateful.obj.metadata.name };
      return `${idOf(hpa)} -> ${stateful.id}`;
    },
  },
  {
    name: "write a service's PostgreSQL connection string into the manifest",
    required: true,
    expect: /is a PostgreSQL connection string written in the manifest/,
    apply: (objects) => setDatabase(objects, 'postgres://selftest:secret@selftest-db.example:5432/selftest'),
  },
  {
    name: 'put a service on a SQLite file',
    required: true,
    expect: /is a SQLite file: this environment's services must use PostgreSQL/,
    apply: (objects) => setDatabase(objects, '/tmp/selftest.db'),
  },
  {
    name: 'run a PostgreSQL service on one replica',
    required: true,
    expect: /runs 1 replica\(s\) on PostgreSQL: at least 2/,
    apply(objects) {
      const target = postgresService(objects);
      if (!target) return null;
      target.owner.obj.spec.replicas = 1;
      return target.owner.id;
    },
  },
  {
    name: 'run a PostgreSQL service as a StatefulSet',
    expect: /is a StatefulSet on PostgreSQL: its pods keep nothing/,
    apply(objects) {
      const target = postgresService(objects);
      if (!target) return null;
      const { obj } = target.owner;
      obj.kind = 'StatefulSet';
      obj.spec.serviceName = obj.metadata.name;
      delete obj.spec.strategy;
      return target.owner.id;
    },
  },
  {
    name: 'give a PostgreSQL service a persistent volume',
    expect: /mounts a persistent volume although its store is PostgreSQL/,
    apply(objects) {
      const target = postgresService(objects);
      if (!target) return null;
      const pod = target.owner.podSpec;
      pod.volumes = [...(pod.volumes ?? []), { name: 'selftest', persistentVolumeClaim: { claimName: 'selftest' } }];
      return target.owner.id;
    },
  },
  {
    name: "point a service's database at a Service the render lacks",
    expect: /no Service selftest-nowhere in namespace/,
    apply(objects) {
      const found = databaseSecret(objects);
      if (!found) return null;
      found.secret.data[found.key] = Buffer.from('postgres://u:p@selftest-nowhere:5432/db').toString('base64');
      return idOf(found.secret);
    },
  },
  {
    name: "keep the services' database on no volume",
    expect: /keeps its data on no persistent volume/,
    apply(objects) {
      const w = databaseWorkload(objects);
      if (!w || !w.obj.spec.volumeClaimTemplates) return null;
      const claims = w.obj.spec.volumeClaimTemplates.map((t) => t.metadata.name);
      delete w.obj.spec.volumeClaimTemplates;
      w.podSpec.volumes = [...(w.podSpec.volumes ?? []), ...claims.map((name) => ({ name, emptyDir: {} }))];
      return w.id;
    },
  },
  {
    name: "drop the egress rules that let a service reach a database outside the render",
    expect: /NetworkPolicies allow no egress to its database \(TCP 5432/,
    apply(objects) {
      const target = postgresService(objects);
      if (!target || databaseSecret(objects)) return null;
      const policies = policiesSelecting(new Index(objects), target.owner.namespace, target.owner.labels, 'Egress');
      const outside = (rule) => rule.to?.some((peer) => peer.namespaceSelector || peer.ipBlock) && !isDnsRule(rule);
      const changed = policies.filter((p) => p.spec.egress?.some(outside));
      if (!changed.length) return null;
      for (const policy of changed) policy.spec.egress = policy.spec.egress.filter((r) => !outside(r));
      return changed.map(idOf).join(', ');
    },
  },
  {
    name: 'take the PodDisruptionBudget from a replicated workload',
    expect: /replicas but no PodDisruptionBudget selects its pods/,
    apply(objects) {
      const w = firstReplicated(objects);
      if (!w) return null;
      const kept = objects.filter(
        (o) => o.kind !== 'PodDisruptionBudget' || !mapSelectorMatches(o.spec?.selector?.matchLabels, w.labels),
      );
      if (kept.length === objects.length) return null;
      objects.splice(0, objects.length, ...kept);
      return w.id;
    },
  },
  {
    name: 'let a replicated workload gather on one node',
    expect: /no topologySpreadConstraints or podAntiAffinity over kubernetes.io\/hostname/,
    apply(objects) {
      const w = firstReplicated(objects);
      if (!w) return null;
      delete w.podSpec.topologySpreadConstraints;
      delete w.podSpec.affinity;
      return w.id;
    },
  },
  {
    name: 'let a rollout stop a replica before its replacement is ready',
    expect: /rollingUpdate\.maxUnavailable 1 lets a rollout stop up to 1/,
    apply(objects) {
      const w = firstReplicated(objects);
      if (!w) return null;
      w.obj.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } };
      return w.id;
    },
  },
  {
    name: 'shutdown longer than the grace period',
    expect: /shutdown takes \d+s .* not less than terminationGracePeriodSeconds/,
    apply(objects) {
      const target = firstClustergov(objects);
      if (!target) return null;
      target.c.args = [
        ...(target.c.args ?? []),
        `--drain_seconds=${(target.owner.podSpec.terminationGracePeriodSeconds ?? 30) + 1}`,
      ];
      return target.where;
    },
  },
  {
    name: 'drop the egress rules a clustergov service needs to call Redis or another service',
    expect: /NetworkPolicies allow no egress from/,
    apply(objects) {
      const index = new Index(objects);
      const w = workloadsOf(objects).find(
        (x) =>
          x.containers.some(({ c }) => isClustergovContainer(c)) &&
          policiesSelecting(index, x.namespace, x.labels, 'Egress').some((p) =>
            p.spec.egress?.some((r) => !isDnsRule(r)),
          ),
      );
      if (!w) return null;
      for (const policy of policiesSelecting(index, w.namespace, w.labels, 'Egress')) {
        policy.spec.egress = (policy.spec.egress ?? []).filter(isDnsRule);
      }
      return w.id;
    },
  },
  {
    name: 'remove DNS from the egress rules',
    expect: /NetworkPolicies allow no DNS egress/,
    apply(objects) {
      const policies = objects.filter((o) => o.kind === 'NetworkPolicy' && o.spec?.egress?.some(isDnsRule));
      if (!policies.length) return null;
      for (const policy of policies) policy.spec.egress = policy.spec.egress.filter((r) => !isDnsRule(r));
      return policies.map(idOf).join(', ');
    },
  },
  {
    name: 'point an Ingress at a Service port that does not exist',
    expect: /backend port no-such-port is not a port of Service/,
    apply(objects) {
      const ingress = objects.find(
        (o) => o.kind === 'Ingress' && o.spec?.rules?.[0]?.http?.paths?.[0]?.backend?.service,
      );
      if (!ingress) return null;
      ingress.spec.rules[0].http.paths[0].backend.service.port = { name: 'no-such-port' };
      return idOf(ingress);
    },
  },
  {
    name: 'scrape a Service port that does not exist',
    expect: /endpoint port no-such-port is not a port of Service/,
    apply(objects) {
      const monitor = objects.find((o) => o.kind === 'ServiceMonitor' && o.spec?.endpoints?.[0]?.port);
      if (!monitor) return null;
      monitor.spec.endpoints[0].port = 'no-such-port';
      return idOf(monitor);
    },
  },
];

// An egress rule that allows nothing but DNS (port 53).
function isDnsRule(rule) {
  return Boolean(rule.ports?.length) && rule.ports.every((p) => p.port === 53);
}
