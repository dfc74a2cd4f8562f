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
    name: 'autoscale a StatefulSet that keeps SQLite on its volume',
    expect: /a single writer must not scale/,
    apply(objects) {
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
      const sqlite = workloadsOf(objects).find((w) => w.obj.kind === 'StatefulSet' && w.mountsPersistentVolume);
      if (!hpa || !sqlite) return null;
      hpa.spec.scaleTargetRef = { apiVersion: 'apps/v1', kind: 'StatefulSet', name: sqlite.obj.metadata.name };
      return `${idOf(hpa)} -> ${sqlite.id}`;
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
