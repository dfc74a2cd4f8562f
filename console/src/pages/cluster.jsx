// One cluster: profile, promotion organization, members by role, certifications, supply links,
// the 15 key tasks' progress, pools used, and evaluation results once they exist.
import { get, listAll } from '../api.js';
import { ChartCanvas, COLORS } from '../charts.jsx';
import { formatNumber, formatTime, L, label, localName } from '../i18n.js';
import { departmentName, referenceData, regionName } from '../ref.js';
import { Empty, Loaded, Section, useLoad } from '../ui.jsx';

function List({ items }) {
  if (!items || items.length === 0) return <span class="muted">—</span>;
  return (
    <ul class="inline">
      {items.map((i) => (
        <li key={i}>{i}</li>
      ))}
    </ul>
  );
}

function Profile({ cluster: c, refdata }) {
  const rows = [
    [L('中文名称', 'Chinese name'), c.displayNameZh],
    [L('英文名称', 'English name'), c.displayNameEn],
    [L('产业', 'Industry'), c.industry],
    [L('当前层级', 'Current tier'), label('tier', c.tier || 'TIER_NONE')],
    [L('目标层级', 'Target tier'), `${label('tier', c.targetTier)} (${c.targetYear || ''})`],
    [L('核心区', 'Core regions'), <List items={(c.coreRegions || []).map((r) => regionName(refdata, r))} />],
    [L('支撑区', 'Supporting regions'), <List items={(c.supportingRegions || []).map((r) => regionName(refdata, r))} />],
    [L('牵头部门', 'Lead departments'), <List items={(c.leadDepartments || []).map((d) => departmentName(refdata, d))} />],
    [L('龙头企业', 'Lead enterprises'), <List items={(c.leadEnterprises || []).map(localName)} />],
    [L('创新平台', 'Innovation platforms'), <List items={c.innovationPlatforms} />],
    [L('重点产品', 'Focus products'), <List items={c.focusProducts} />],
    [L('区域品牌', 'Regional brands'), <List items={c.regionalBrands} />],
    [L('发展重点', 'Development focus'), c.developmentFocus || '—'],
  ];
  return (
    <>
      <dl class="profile">
        {rows.map(([k, v], i) => (
          <div key={k} class={i === rows.length - 1 ? 'wide' : undefined}>
            <dt>{k}</dt>
            <dd>{v || '—'}</dd>
          </div>
        ))}
      </dl>
      {(c.chainSegments || []).length > 0 && (
        <div class="chain" aria-label={L('产业链', 'Industrial chain')}>
          <h3>{L('产业链', 'Industrial chain')}</h3>
          <ol>
            {c.chainSegments.map((s) => (
              <li key={s}>{s}</li>
            ))}
          </ol>
        </div>
      )}
    </>
  );
}

function PromotionOrg({ cluster }) {
  const org = useLoad(
    () => (cluster.promotionOrganization ? get(cluster.promotionOrganization) : Promise.resolve(null)),
    [cluster.promotionOrganization],
  );
  return (
    <Loaded load={org} isEmpty={(o) => !o} empty={L('尚未认定促进机构', 'No promotion organization designated yet')}>
      {(o) => (
        <dl class="profile" data-promotion-org={o.name}>
          <div>
            <dt>{L('名称', 'Name')}</dt>
            <dd class="promotion-org-name">{localName(o)}</dd>
          </div>
          <div>
            <dt>{L('统一社会信用代码', 'Credit code')}</dt>
            <dd>{o.uscc || '—'}</dd>
          </div>
          <div>
            <dt>{L('专职人员', 'Full-time staff')}</dt>
            <dd>{o.fullTimeStaff || 0}</dd>
          </div>
          <div>
            <dt>{L('联系人', 'Contact')}</dt>
            <dd>{(o.contact && o.contact.person) || '—'}</dd>
          </div>
        </dl>
      )}
    </Loaded>
  );
}

async function loadMembers(cluster) {
  const memberships = await listAll(`${cluster}/members`, 'memberships');
  const enterprises = await Promise.all(
    memberships.slice(0, 60).map((m) =>
      Promise.all([
        get(m.enterprise).catch(() => ({ name: m.enterprise })),
        get(`${m.enterprise}/certifications`).then((r) => r.certifications || [], () => []),
      ]),
    ),
  );
  return memberships.slice(0, 60).map((m, i) => ({ membership: m, enterprise: enterprises[i][0], certifications: enterprises[i][1] }));
}

function Members({ members }) {
  const roles = ['LEAD_ENTERPRISE', 'CHAIN_LEADER', 'MEMBER'];
  return roles.map((role) => {
    const list = members.filter((m) => m.membership.role === role);
    if (list.length === 0) return null;
    return (
      <div key={role} data-role={role}>
        <h3>
          {label('memberRole', role)} ({list.length})
        </h3>
        <ul class="members">
          {list.map((m) => (
            <li key={m.membership.name}>
              {localName(m.enterprise) || m.enterprise.name}
              {m.membership.chainSegment && <span class="muted"> · {m.membership.chainSegment}</span>}
            </li>
          ))}
        </ul>
      </div>
    );
  });
}

function Certifications({ members }) {
  const rows = members.flatMap((m) => m.certifications.map((c) => ({ c, e: m.enterprise })));
  if (rows.length === 0) return <Empty>{L('成员企业暂无认定', 'No certifications among the members yet')}</Empty>;
  return (
    <table class="compact">
      <thead>
        <tr>
          <th scope="col">{L('企业', 'Enterprise')}</th>
          <th scope="col">{L('认定', 'Certification')}</th>
          <th scope="col">{L('状态', 'State')}</th>
          <th scope="col">{L('有效期至', 'Valid until')}</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ c, e }) => (
          <tr key={c.name}>
            <td>{localName(e)}</td>
            <td>{label('certification', c.kind)}</td>
            <td>{label('certificationState', c.state)}</td>
            <td>{c.expiryDate ? `${c.expiryDate.year}-${c.expiryDate.month}-${c.expiryDate.day}` : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SupplyLinks({ cluster }) {
  const links = useLoad(() => listAll('supplyLinks', 'supplyLinks', { filter: `cluster = "${cluster}"` }), [cluster]);
  return (
    <Loaded load={links} empty={L('暂无大中小企业配套关系', 'No supply links recorded yet')}>
      {(list) => (
        <table class="compact">
          <thead>
            <tr>
              <th scope="col">{L('供应方', 'Supplier')}</th>
              <th scope="col">{L('采购方', 'Buyer')}</th>
              <th scope="col">{L('产品', 'Product')}</th>
            </tr>
          </thead>
          <tbody>
            {list.map((l) => (
              <tr key={l.name}>
                <td>{l.supplier}</td>
                <td>{l.buyer}</td>
                <td>{l.product || '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Loaded>
  );
}

function KeyTasks({ cluster }) {
  const tasks = useLoad(async () => {
    const [defs, progress] = await Promise.all([get('keyTasks'), listAll(`${cluster}/taskProgress`, 'taskProgress')]);
    return (defs.tasks || []).map((t) => ({ task: t, progress: progress.find((p) => p.taskNumber === t.number) }));
  }, [cluster]);
  return (
    <Loaded load={tasks}>
      {(rows) => (
        <table class="tasks">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">{L('重点任务', 'Key task')}</th>
              <th scope="col">{L('状态', 'Status')}</th>
              <th scope="col">{L('进度', 'Progress')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ task, progress: p }) => (
              <tr key={task.number}>
                <td>{task.number}</td>
                <td>
                  {L(task.titleZh, task.titleEn)}
                  <span class="muted"> · {L(task.groupTitleZh, task.groupTitleEn)}</span>
                </td>
                <td>{label('taskStatus', (p && p.status) || 'STATUS_UNSPECIFIED')}</td>
                <td>
                  <progress max="100" value={(p && p.percent) || 0} aria-label={`${task.number}`} /> {(p && p.percent) || 0}%
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Loaded>
  );
}

function PoolsUsed({ cluster }) {
  const use = useLoad(() => get('utilization').then((u) => (u.clusters || []).filter((c) => c.cluster === cluster)), [cluster]);
  return (
    <Loaded load={use} empty={L('尚未使用要素资源池', 'No resource pools used yet')}>
      {(rows) => (
        <table class="compact">
          <thead>
            <tr>
              <th scope="col">{L('要素', 'Resource')}</th>
              <th scope="col">{L('已预留', 'Reserved')}</th>
              <th scope="col">{L('已配置', 'Allocated')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.kind}>
                <td>{label('kind', r.kind)}</td>
                <td>{formatNumber(r.reserved)}</td>
                <td>{formatNumber(r.allocated)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Loaded>
  );
}

const DIMENSIONS = ['DIMENSION_SCALE', 'DIMENSION_INNOVATION', 'DIMENSION_MANUFACTURING', 'DIMENSION_ECOSYSTEM'];

function EvaluationResults({ cluster }) {
  const ev = useLoad(async () => {
    const list = await listAll(`${cluster}/evaluations`, 'evaluations');
    const withResult = list.filter((e) => e.result && e.result.dimensions).sort((a, b) => b.year - a.year);
    if (withResult.length === 0) return null;
    const e = withResult.find((x) => x.state === 'DECIDED') || withResult[0];
    const rules = e.result.ruleSet ? await get(e.result.ruleSet).catch(() => null) : null;
    return { e, rules };
  }, [cluster]);
  return (
    <Loaded load={ev} isEmpty={(d) => !d} empty={L('尚无评价结果', 'No evaluation results yet')}>
      {({ e, rules }) => {
        const r = e.result;
        const describe = (key) => {
          const rule = rules && (rules.indicators || []).find((i) => i.key === key);
          return rule ? rule.description : '';
        };
        return (
          <>
            <p>
              {e.year} · {L('总分', 'total')} {(r.totalScoreBp || 0) / 100} · {L('建议', 'recommendation')} {label('recommendation', r.recommendation)} ·{' '}
              {L('状态', 'state')} {label('evaluationState', e.state)}
            </p>
            <ChartCanvas
              type="radar"
              label={L('四个维度得分雷达图', 'Radar chart of the four dimension scores')}
              data={{
                labels: DIMENSIONS.map((d) => label('dimension', d)),
                datasets: [
                  {
                    label: L('得分', 'score'),
                    data: DIMENSIONS.map((d) => ((r.dimensions.find((x) => x.dimension === d) || {}).scoreBp || 0) / 100),
                    backgroundColor: 'rgba(29, 78, 137, 0.2)',
                    borderColor: COLORS[0],
                  },
                  {
                    label: L('维度最低分', 'minimum'),
                    data: DIMENSIONS.map((d) => ((r.dimensions.find((x) => x.dimension === d) || {}).minScoreBp || 0) / 100),
                    borderColor: COLORS[1],
                    backgroundColor: 'rgba(0,0,0,0)',
                  },
                ],
              }}
              options={{ scales: { r: { min: 0, max: 100 } } }}
              height={300}
            />
            <table class="compact indicators">
              <thead>
                <tr>
                  <th scope="col">{L('指标', 'Indicator')}</th>
                  <th scope="col">{L('维度', 'Dimension')}</th>
                  <th scope="col">{L('数值', 'Value')}</th>
                  <th scope="col">{L('得分', 'Score')}</th>
                  <th scope="col">{L('距下一层级', 'Gap to next tier')}</th>
                  <th scope="col">{L('说明', 'Explanation')}</th>
                </tr>
              </thead>
              <tbody>
                {(r.indicators || []).map((i) => (
                  <tr key={i.key}>
                    <td>{i.key}</td>
                    <td>{label('dimension', i.dimension)}</td>
                    <td>
                      {i.missing ? L('缺失', 'missing') : formatNumber(i.raw)} {i.unit}
                    </td>
                    <td>{(i.adjustedBp || 0) / 100}</td>
                    <td>{i.gapToNextTier ? formatNumber(i.gapToNextTier) : '—'}</td>
                    <td>{describe(i.key) || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        );
      }}
    </Loaded>
  );
}

export function ClusterPage({ id }) {
  const name = `clusters/${id}`;
  const data = useLoad(async () => {
    const [cluster, refdata] = await Promise.all([get(name), referenceData()]);
    return { cluster, refdata };
  }, [name]);
  const members = useLoad(() => loadMembers(name), [name]);
  return (
    <Loaded load={data} isEmpty={() => false}>
      {({ cluster, refdata }) => (
        <div class="cluster-page">
          <h1>{localName(cluster)}</h1>
          <p class="muted">
            {cluster.name} · {L('更新于', 'updated')} {formatTime(cluster.updateTime)}
          </p>
          <Section id="profile" title={L('集群概况', 'Profile')}>
            <Profile cluster={cluster} refdata={refdata} />
          </Section>
          <Section id="promotion" title={L('集群促进机构', 'Promotion organization')}>
            <PromotionOrg cluster={cluster} />
          </Section>
          <div class="grid">
            <Section id="members" title={L('成员企业', 'Members by role')}>
              <Loaded load={members} empty={L('暂无成员企业', 'No members yet')}>
                {(m) => <Members members={m} />}
              </Loaded>
            </Section>
            <Section id="certifications" title={L('企业认定', 'Certifications')}>
              <Loaded load={members} empty={L('暂无成员企业', 'No members yet')}>
                {(m) => <Certifications members={m} />}
              </Loaded>
            </Section>
          </div>
          <Section id="supply" title={L('大中小企业配套', 'Supply links')}>
            <SupplyLinks cluster={name} />
          </Section>
          <Section id="tasks" title={L('15 项重点任务进展', 'The 15 key tasks')}>
            <KeyTasks cluster={name} />
          </Section>
          <Section id="pools" title={L('要素资源使用', 'Pools used')}>
            <PoolsUsed cluster={name} />
          </Section>
          <Section id="evaluation" title={L('评价结果', 'Evaluation results')}>
            <EvaluationResults cluster={name} />
          </Section>
        </div>
      )}
    </Loaded>
  );
}
