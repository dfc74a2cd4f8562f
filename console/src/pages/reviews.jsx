// Government review queues: designation applications, support applications (with amounts and
// each pool's free quota), annual reports. Actions appear only where the caller's department may
// decide (a lead department of the cluster; for support also the department responsible for
// every resource kind); the services check it again.
import { get, listAll, post, requestId } from '../api.js';
import { formatNumber, formatTime, L, label, localName } from '../i18n.js';
import { clusterList, clusterName } from '../ref.js';
import { Decision, Loaded, Section, StateBadge, useLoad } from '../ui.jsx';

function leads(clusters, cluster, department) {
  const c = clusters.find((x) => x.name === cluster);
  return !!c && (c.leadDepartments || []).includes(department);
}

const transition = (item, verb) => (reason) =>
  post(`${item.name}:${verb}`, { reason, etag: item.etag, requestId: requestId() });

function Designations({ can }) {
  const load = useLoad(async () => {
    const [list, clusters] = await Promise.all([
      listAll('designations', 'designations', { filter: 'state = PENDING' }),
      clusterList(),
    ]);
    const orgs = await Promise.all(list.map((d) => get(d.promotionOrg).catch(() => ({ name: d.promotionOrg }))));
    return list.map((d, i) => ({ d, org: orgs[i], clusters }));
  }, []);
  return (
    <Loaded load={load} empty={L('没有待审批的促进机构认定申请', 'No designation applications wait')}>
      {(rows) => (
        <ul class="queue">
          {rows.map(({ d, org, clusters }) => (
            <li class="card item" key={d.name} data-name={d.name}>
              <h3>
                {localName(org) || d.promotionOrg} → {clusterName(clusters, d.cluster)}
              </h3>
              <p>
                <StateBadge state={d.state}>{label('designationState', d.state)}</StateBadge> · {L('申请时间', 'applied')}{' '}
                {formatTime(d.applyTime)}
              </p>
              <p>{d.applicationReason}</p>
              {leads(clusters, d.cluster, can.department) ? (
                <Decision
                  subject={d.name}
                  onDone={load.reload}
                  actions={[
                    { key: 'approve', label: L('批准', 'Approve'), run: transition(d, 'approve'), needsReason: true },
                    { key: 'reject', label: L('驳回', 'Reject'), run: transition(d, 'reject'), needsReason: true, kind: 'danger' },
                  ]}
                />
              ) : (
                <p class="muted">{L('由该集群的牵头部门审批', "Decided by the cluster's lead department")}</p>
              )}
            </li>
          ))}
        </ul>
      )}
    </Loaded>
  );
}

const OPEN_STATES = ['SUBMITTED', 'UNDER_REVIEW', 'APPROVED'];

function applicationActions(a) {
  if (a.state === 'SUBMITTED') return [{ key: 'startReview', label: L('开始审核', 'Start review'), run: transition(a, 'startReview') }];
  if (a.state === 'UNDER_REVIEW') {
    return [
      { key: 'approve', label: L('批准', 'Approve'), run: transition(a, 'approve') },
      { key: 'return', label: L('退回修改', 'Return'), run: transition(a, 'return'), needsReason: true, kind: 'secondary' },
      { key: 'reject', label: L('驳回', 'Reject'), run: transition(a, 'reject'), needsReason: true, kind: 'danger' },
    ];
  }
  if (a.state === 'APPROVED') {
    return [
      { key: 'allocate', label: L('配置', 'Allocate'), run: transition(a, 'allocate') },
      { key: 'reject', label: L('驳回', 'Reject'), run: transition(a, 'reject'), needsReason: true, kind: 'danger' },
    ];
  }
  return [];
}

// Items with their amounts and the free quota of each pool drawn from.
export function ItemsTable({ items, pools }) {
  return (
    <table class="compact items">
      <thead>
        <tr>
          <th scope="col">{L('要素', 'Resource')}</th>
          <th scope="col">{L('申请数量', 'Amount')}</th>
          <th scope="col">{L('资源池', 'Pool')}</th>
          <th scope="col">{L('剩余可用', 'Free in pool')}</th>
        </tr>
      </thead>
      <tbody>
        {items.map((it, i) => {
          const pool = pools[it.pool];
          return (
            <tr key={i} data-pool={it.pool}>
              <td>{label('kind', it.kind)}</td>
              <td>
                {formatNumber(it.quantity)} {pool ? pool.unit : ''}
              </td>
              <td>{it.pool}</td>
              <td class="pool-free">{pool ? `${formatNumber(pool.free)} ${pool.unit}` : L('资源池不存在', 'no such pool')}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export async function loadPools(applications) {
  const names = [...new Set(applications.flatMap((a) => (a.items || []).map((i) => i.pool)).filter(Boolean))];
  const pools = await Promise.all(names.map((n) => get(n).catch(() => null)));
  return Object.fromEntries(names.map((n, i) => [n, pools[i]]));
}

function Applications({ can }) {
  const load = useLoad(async () => {
    const [all, clusters, support] = await Promise.all([
      listAll('applications', 'applications', { orderBy: 'priority' }),
      clusterList(),
      get('supportReferenceData'),
    ]);
    const list = all.filter((a) => OPEN_STATES.includes(a.state));
    const [pools, applicants] = await Promise.all([
      loadPools(list),
      Promise.all(list.map((a) => get(a.applicant).catch(() => ({ name: a.applicant })))),
    ]);
    return { list, clusters, support, pools, applicants };
  }, []);
  const mayReview = (a, clusters, support) =>
    leads(clusters, a.cluster, can.department) ||
    (a.items || []).every((it) => {
      const k = (support.kinds || []).find((x) => x.kind === it.kind);
      return k && (k.responsibleDepartments || []).includes(can.department);
    });
  return (
    <Loaded load={load} isEmpty={(d) => d.list.length === 0} empty={L('没有待审核的要素保障申请', 'No support applications wait')}>
      {({ list, clusters, support, pools, applicants }) => (
        <ul class="queue">
          {list.map((a, i) => (
            <li class="card item" key={a.name} data-name={a.name}>
              <h3>
                {a.projectName} {a.coreChainProject && <span class="badge">{L('核心链项目', 'core chain project')}</span>}
              </h3>
              <p>
                {localName(applicants[i]) || a.applicant} · {clusterName(clusters, a.cluster)} · {a.year} ·{' '}
                <StateBadge state={a.state}>{label('applicationState', a.state)}</StateBadge>
              </p>
              <ItemsTable items={a.items || []} pools={pools} />
              {mayReview(a, clusters, support) ? (
                <Decision subject={a.name} onDone={load.reload} actions={applicationActions(a)} />
              ) : (
                <p class="muted">{L('由牵头部门或要素主管部门审核', 'Reviewed by the lead or responsible department')}</p>
              )}
            </li>
          ))}
        </ul>
      )}
    </Loaded>
  );
}

function Reports({ can }) {
  const load = useLoad(async () => {
    const [list, clusters] = await Promise.all([
      listAll('annualReports', 'annualReports', { filter: 'state = SUBMITTED' }),
      clusterList(),
    ]);
    return { list, clusters };
  }, []);
  return (
    <Loaded load={load} isEmpty={(d) => d.list.length === 0} empty={L('没有待审阅的年度报告', 'No annual reports wait')}>
      {({ list, clusters }) => (
        <ul class="queue">
          {list.map((r) => (
            <li class="card item" key={r.name} data-name={r.name}>
              <h3>
                {clusterName(clusters, r.cluster)} · {r.year}
              </h3>
              <p>
                {r.promotionOrg} · {L('提交于', 'submitted')} {formatTime(r.submitTime)}
              </p>
              <p class="report-text">{r.workReport}</p>
              {r.monitoring && (
                <p class="muted">
                  {L('产值（元）', 'Output (yuan)')} {formatNumber((Number(r.monitoring.outputValueFen) || 0) / 100)} ·{' '}
                  {L('从业人员', 'employment')} {formatNumber(r.monitoring.employment)} · {L('专利', 'patents')}{' '}
                  {formatNumber(r.monitoring.patents)}
                </p>
              )}
              {leads(clusters, r.cluster, can.department) ? (
                <Decision
                  subject={r.name}
                  onDone={load.reload}
                  actions={[
                    { key: 'accept', label: L('接受', 'Accept'), run: transition(r, 'accept') },
                    { key: 'return', label: L('退回', 'Return'), run: transition(r, 'return'), needsReason: true, kind: 'secondary' },
                  ]}
                />
              ) : (
                <p class="muted">{L('由该集群的牵头部门审阅', "Reviewed by the cluster's lead department")}</p>
              )}
            </li>
          ))}
        </ul>
      )}
    </Loaded>
  );
}

export function Reviews({ session }) {
  const can = session.can;
  return (
    <div class="reviews">
      <h1>{L('审批', 'Reviews')}</h1>
      <Section id="designations" title={L('促进机构认定申请', 'Promotion organization designations')}>
        <Designations can={can} />
      </Section>
      <Section id="applications" title={L('要素保障申请', 'Support applications')}>
        <Applications can={can} />
      </Section>
      <Section id="reports" title={L('年度报告', 'Annual reports')}>
        <Reports can={can} />
      </Section>
    </div>
  );
}
