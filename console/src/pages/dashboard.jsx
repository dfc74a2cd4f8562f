// The dashboard: progress toward 1 world-class, 3 national and 9 region-level clusters by 2027,
// the 13 clusters by current and target tier, where they are across the 12 leagues, and what
// waits for the caller's decision.
import { get, listAll } from '../api.js';
import { ChartCanvas, COLORS } from '../charts.jsx';
import { joinList, L, label, localName } from '../i18n.js';
import { clusterList, departmentName, referenceData, regionName } from '../ref.js';
import { Loaded, Section, useLoad } from '../ui.jsx';
import { LeagueMap } from './leagues.jsx';

const TARGET_YEAR = 2027;
const TIERS = ['TIER_WORLD_CLASS', 'TIER_NATIONAL', 'TIER_REGION'];
const CURRENT_TIERS = ['TIER_NONE', 'TIER_REGION', 'TIER_NATIONAL', 'TIER_WORLD_CLASS'];

function ProgressChart({ progress }) {
  const tiers = TIERS.map((t) => (progress.tiers || []).find((x) => x.tier === t) || { tier: t });
  const series = [
    ['goalCount', L('2027 目标', '2027 goal')],
    ['targetedCount', L('以此为目标', 'aiming for it')],
    ['designatedCount', L('已认定', 'designated')],
    ['achievedCount', L('已达标', 'achieved')],
  ];
  return (
    <>
      <ChartCanvas
        type="bar"
        label={L('2027 年目标进度柱状图', 'Bar chart of progress toward the 2027 targets')}
        data={{
          labels: tiers.map((t) => label('tier', t.tier)),
          datasets: series.map(([key, text], i) => ({
            label: text,
            data: tiers.map((t) => t[key] || 0),
            backgroundColor: COLORS[i],
          })),
        }}
        options={{ scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }}
      />
      <table class="compact">
        <caption>
          {L('目标进度', 'Progress')} · {L('合计', 'total')} {progress.achievedTotal || 0} / {progress.goalTotal || 0}
        </caption>
        <thead>
          <tr>
            <th scope="col">{L('层级', 'Tier')}</th>
            {series.map(([key, text]) => (
              <th scope="col" key={key}>
                {text}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {tiers.map((t) => (
            <tr key={t.tier} data-tier={t.tier}>
              <th scope="row">{label('tier', t.tier)}</th>
              {series.map(([key]) => (
                <td key={key}>{t[key] || 0}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function TierChart({ clusters }) {
  return (
    <ChartCanvas
      type="bar"
      label={L('按目标层级与当前层级统计的集群数', 'Clusters by target tier, stacked by current tier')}
      data={{
        labels: TIERS.map((t) => `${L('目标', 'target')}: ${label('tier', t)}`),
        datasets: CURRENT_TIERS.map((cur, i) => ({
          label: `${L('当前', 'now')}: ${label('tier', cur)}`,
          data: TIERS.map((t) => clusters.filter((c) => c.targetTier === t && (c.tier || 'TIER_NONE') === cur).length),
          backgroundColor: COLORS[(i + 2) % COLORS.length],
        })),
      }}
      options={{ indexAxis: 'y', scales: { x: { stacked: true, ticks: { precision: 0 } }, y: { stacked: true } } }}
      height={200}
    />
  );
}

function ClusterTable({ clusters, refdata: ref }) {
  return (
    <table class="clusters">
      <thead>
        <tr>
          <th scope="col">{L('集群', 'Cluster')}</th>
          <th scope="col">{L('当前层级', 'Current tier')}</th>
          <th scope="col">{L('目标层级', 'Target tier')}</th>
          <th scope="col">{L('核心区', 'Core regions')}</th>
          <th scope="col">{L('牵头部门', 'Lead departments')}</th>
        </tr>
      </thead>
      <tbody>
        {clusters.map((c) => (
          <tr key={c.name}>
            <th scope="row">
              <a href={`/${c.name}`}>{localName(c)}</a>
            </th>
            <td>{label('tier', c.tier || 'TIER_NONE')}</td>
            <td>{label('tier', c.targetTier)}</td>
            <td>{joinList((c.coreRegions || []).map((r) => regionName(ref, r)))}</td>
            <td>{joinList((c.leadDepartments || []).map((d) => departmentName(ref, d)))}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const QUEUES = {
  designations: () => L('促进机构认定申请', 'Promotion organization designations'),
  applications: () => L('要素保障申请', 'Support applications'),
  reports: () => L('年度报告', 'Annual reports'),
  'my-applications': () => L('待修改或提交的申请', 'Applications to correct or submit'),
  'my-reports': () => L('被退回的年度报告', 'Annual reports returned'),
};

// What waits for this caller: a count and where to act, per queue (named at render, in the
// language then chosen).
async function loadWaiting(can, clusters) {
  const out = [];
  if (can.government) {
    const mine = new Set(clusters.filter((c) => (c.leadDepartments || []).includes(can.department)).map((c) => c.name));
    const [designations, applications, reports] = await Promise.all([
      listAll('designations', 'designations', { filter: 'state = PENDING' }),
      listAll('applications', 'applications', { orderBy: 'priority' }),
      listAll('annualReports', 'annualReports', { filter: 'state = SUBMITTED' }),
    ]);
    out.push({
      key: 'designations',
      count: designations.filter((d) => mine.has(d.cluster)).length,
      href: '/reviews#designations',
    });
    out.push({
      key: 'applications',
      count: applications.filter(
        (a) => mine.has(a.cluster) && ['SUBMITTED', 'UNDER_REVIEW', 'APPROVED'].includes(a.state),
      ).length,
      href: '/reviews#applications',
    });
    out.push({
      key: 'reports',
      count: reports.filter((r) => mine.has(r.cluster)).length,
      href: '/reviews#reports',
    });
  }
  if (can.enterprise) {
    const apps = await listAll('applications', 'applications');
    out.push({
      key: 'my-applications',
      count: apps.filter((a) => a.state === 'RETURNED' || a.state === 'DRAFT').length,
      href: '/enterprise#applications',
    });
  }
  if (can.promotionOrg) {
    const reports = await listAll('annualReports', 'annualReports', { filter: `promotion_org = "${can.promotionOrg}"` });
    out.push({
      key: 'my-reports',
      count: reports.filter((r) => r.state === 'RETURNED').length,
      href: '/organization#reports',
    });
  }
  return out;
}

export function Dashboard({ session }) {
  const progress = useLoad(() => get(`targetProgress/${TARGET_YEAR}`), []);
  const data = useLoad(async () => {
    const [all, ref] = await Promise.all([clusterList(), referenceData()]);
    // World-class first, then national, then region-level, as the plan lists them.
    const clusters = [...all].sort((a, b) => TIERS.indexOf(a.targetTier) - TIERS.indexOf(b.targetTier));
    return { clusters, ref };
  }, []);
  const waiting = useLoad(async () => loadWaiting(session.can, await clusterList()), [session.token]);
  return (
    <div class="dashboard">
      <h1>{L('总览', 'Dashboard')}</h1>
      <div class="grid">
        <Section id="progress" title={L(`${TARGET_YEAR} 年目标：1 个世界级、3 个国家级、9 个自治区级`, `Toward ${TARGET_YEAR}: 1 world-class, 3 national, 9 region-level`)}>
          <Loaded load={progress} isEmpty={() => false}>
            {(p) => <ProgressChart progress={p} />}
          </Loaded>
        </Section>
        <Section id="waiting" title={L('待我处理', 'Waiting for my decision')}>
          <Loaded load={waiting} empty={L('没有待处理的事项', 'Nothing waits for you')}>
            {(items) =>
              items.every((i) => i.count === 0) ? (
                <p class="empty">{L('没有待处理的事项', 'Nothing waits for you')}</p>
              ) : (
                <ul class="waiting">
                  {items.map((i) => (
                    <li key={i.key} data-queue={i.key}>
                      <a href={i.href}>{QUEUES[i.key]()}</a> <span class="count">{i.count}</span>
                    </li>
                  ))}
                </ul>
              )
            }
          </Loaded>
        </Section>
      </div>
      <Section id="tiers" title={L('13 个集群：当前层级与目标层级', 'The 13 clusters by current and target tier')}>
        <Loaded load={data} isEmpty={(d) => d.clusters.length === 0}>
          {(d) => (
            <>
              <TierChart clusters={d.clusters} />
              <ClusterTable clusters={d.clusters} refdata={d.ref} />
            </>
          )}
        </Loaded>
      </Section>
      <Section id="map" title={L('12 个盟市分布', 'Across the 12 leagues')}>
        <Loaded load={data} isEmpty={(d) => d.clusters.length === 0}>
          {(d) => <LeagueMap regions={d.ref.regions || []} clusters={d.clusters} />}
        </Loaded>
      </Section>
    </div>
  );
}
