// Promotion organization self-service: its record and eligibility, designation applications,
// and the annual report (work report and monitoring data) for each cluster it serves.
import { get, listAll, post, requestId } from '../api.js';
import { formatTime, L, label, localName } from '../i18n.js';
import { clusterList, clusterName, clusterOptions, CURRENT_YEAR } from '../ref.js';
import { Field, FormActions, Loaded, Section, StateBadge, useForm, useLoad } from '../ui.jsx';

const num = (v) => (v === '' ? 0 : Number(v));

function ApplyForDesignation({ org, clusters, onDone }) {
  const empty = { 'designation.cluster': '', 'designation.application_reason': '' };
  const form = useForm(empty);
  const apply = (e) =>
    form.submit(async (v) => {
      await post(
        'designations',
        { promotionOrg: org, cluster: v['designation.cluster'], applicationReason: v['designation.application_reason'] },
        { query: { requestId: requestId() } },
      );
      form.setValues(empty);
      onDone();
    }, e);
  const options = clusterOptions(clusters);
  return (
    <form onSubmit={apply} noValidate class="form-grid" aria-label={L('申请认定', 'Apply for designation')}>
      <Field label={L('集群', 'Cluster')} type="select" options={options} {...form.field('designation.cluster')} />
      <Field label={L('申请理由', 'Reason')} type="textarea" {...form.field('designation.application_reason')} />
      <FormActions form={form} label={L('申请认定', 'Apply')} />
    </form>
  );
}

function AnnualReportForm({ clusters, activeClusters, onDone }) {
  const empty = {
    'annual_report.cluster': '',
    'annual_report.year': String(CURRENT_YEAR - 1),
    'annual_report.work_report': '',
    'annual_report.monitoring.output_value_fen': '',
    'annual_report.monitoring.employment': '',
    'annual_report.monitoring.patents': '',
  };
  const form = useForm(empty);
  const submit = (e) =>
    form.submit(async (v) => {
      await post(
        'annualReports',
        {
          cluster: v['annual_report.cluster'],
          year: num(v['annual_report.year']),
          workReport: v['annual_report.work_report'],
          monitoring: {
            outputValueFen: String(Math.round(num(v['annual_report.monitoring.output_value_fen']) * 100)),
            employment: num(v['annual_report.monitoring.employment']),
            patents: num(v['annual_report.monitoring.patents']),
          },
        },
        { query: { requestId: requestId() } },
      );
      form.setValues(empty);
      onDone();
    }, e);
  const options = clusterOptions(clusters, activeClusters);
  return (
    <form onSubmit={submit} noValidate class="form-grid" aria-label={L('提交年度报告', 'Submit an annual report')}>
      <Field label={L('集群', 'Cluster')} type="select" options={options} {...form.field('annual_report.cluster')} />
      <Field label={L('年度', 'Year')} type="number" {...form.field('annual_report.year')} />
      <Field label={L('工作报告', 'Work report')} type="textarea" rows={5} {...form.field('annual_report.work_report')} />
      <Field label={L('集群产值（元）', 'Output value (yuan)')} type="number" {...form.field('annual_report.monitoring.output_value_fen')} />
      <Field label={L('从业人员', 'Employment')} type="number" {...form.field('annual_report.monitoring.employment')} />
      <Field label={L('专利数', 'Patents')} type="number" {...form.field('annual_report.monitoring.patents')} />
      <FormActions form={form} label={L('提交', 'Submit')} />
    </form>
  );
}

export function OrganizationPage({ session }) {
  const me = session.can.promotionOrg;
  const load = useLoad(async () => {
    const [org, eligibility, designations, reports, clusters] = await Promise.all([
      get(me),
      get(`${me}:checkEligibility`).catch(() => null),
      listAll('designations', 'designations', { filter: `promotion_org = "${me}"` }),
      listAll('annualReports', 'annualReports', { filter: `promotion_org = "${me}"` }),
      clusterList(),
    ]);
    return { org, eligibility, designations, reports, clusters };
  }, [me]);
  return (
    <div class="self-service">
      <h1>{L('本机构', 'My organization')}</h1>
      <Loaded load={load} isEmpty={() => false}>
        {({ org, eligibility, designations, reports, clusters }) => {
          const active = designations.filter((d) => d.state === 'ACTIVE').map((d) => d.cluster);
          return (
            <>
              <Section id="org" title={localName(org)}>
                {eligibility && (
                  <ul class="criteria">
                    {(eligibility.criteria || []).map((c) => (
                      <li key={c.code} class={c.met ? 'met' : 'unmet'}>
                        {c.met ? '✓' : '✗'} {c.titleZh} {c.reason && <span class="muted">· {c.reason}</span>}
                      </li>
                    ))}
                  </ul>
                )}
              </Section>
              <Section id="designations" title={L('认定', 'Designations')}>
                {designations.length === 0 ? (
                  <p class="empty">{L('尚无认定申请', 'No designation applications yet')}</p>
                ) : (
                  <ul class="members">
                    {designations.map((d) => (
                      <li key={d.name}>
                        {clusterName(clusters, d.cluster)} · <StateBadge state={d.state}>{label('designationState', d.state)}</StateBadge>
                        {d.decisionReason && <span class="muted"> · {d.decisionReason}</span>}
                      </li>
                    ))}
                  </ul>
                )}
                <ApplyForDesignation org={me} clusters={clusters} onDone={load.reload} />
              </Section>
              <Section id="reports" title={L('年度报告', 'Annual reports')}>
                {reports.length === 0 ? (
                  <p class="empty">{L('尚未提交年度报告', 'No annual reports yet')}</p>
                ) : (
                  <ul class="members">
                    {reports.map((r) => (
                      <li key={r.name}>
                        {clusterName(clusters, r.cluster)} · {r.year} ·{' '}
                        <StateBadge state={r.state}>{label('reportState', r.state)}</StateBadge> · {formatTime(r.updateTime)}
                        {r.decisionReason && <span class="muted"> · {r.decisionReason}</span>}
                      </li>
                    ))}
                  </ul>
                )}
                {active.length === 0 ? (
                  <p class="muted">{L('获认定后可提交年度报告', 'Annual reports can be filed once designated')}</p>
                ) : (
                  <AnnualReportForm clusters={clusters} activeClusters={active} onDone={load.reload} />
                )}
              </Section>
            </>
          );
        }}
      </Loaded>
    </div>
  );
}
