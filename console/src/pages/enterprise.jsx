// Enterprise self-service: its record, cluster memberships (join), land and energy applications
// (apply, follow, withdraw), talent demands.
import { useState } from 'preact/hooks';
import { get, listAll, patch, post, requestId } from '../api.js';
import { formatTime, L, label, labelOptions } from '../i18n.js';
import { clusterList, clusterName, clusterOptions, CURRENT_YEAR, referenceData, regionOptions } from '../ref.js';
import { ErrorNote, Field, FormActions, Loaded, Section, StateBadge, useForm, useLoad } from '../ui.jsx';
import { ItemsTable, loadPools } from './reviews.jsx';

const num = (v) => (v === '' || v === undefined || v === null ? 0 : Number(v));
// "2027-03-01" (a date input) as a google.type.Date; empty: unset.
const dateValue = (v) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v || '');
  return m ? { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) } : undefined;
};

function RecordForm({ enterprise, refdata, onReload }) {
  const form = useForm({
    'enterprise.legal_name_zh': enterprise.legalNameZh || '',
    'enterprise.name_en': enterprise.nameEn || '',
    'enterprise.region': enterprise.region || '',
    'enterprise.industry': enterprise.industry || '',
    'enterprise.employees': String(enterprise.employees || 0),
    'enterprise.annual_output_cny_10k': String(enterprise.annualOutputCny10k || 0),
  });
  // The version this form last saw: a save moves it on; a stale one asks to reload (onReload).
  const [etag, setEtag] = useState(enterprise.etag);
  const save = (e) =>
    form.submit(async (v) => {
      const updated = await patch(
        enterprise.name,
        {
          legalNameZh: v['enterprise.legal_name_zh'],
          nameEn: v['enterprise.name_en'],
          region: v['enterprise.region'],
          industry: v['enterprise.industry'],
          employees: num(v['enterprise.employees']),
          annualOutputCny10k: num(v['enterprise.annual_output_cny_10k']),
        },
        // Proto field paths: the camelCase of annual_output_cny_10k does not map back.
        { query: { updateMask: 'legal_name_zh,name_en,region,industry,employees,annual_output_cny_10k' }, ifMatch: etag },
      );
      setEtag(updated.etag);
    }, e);
  const regions = regionOptions(refdata, { required: true });
  return (
    <form onSubmit={save} noValidate class="form-grid">
      <Field label={L('企业名称', 'Legal name')} {...form.field('enterprise.legal_name_zh')} />
      <Field label={L('英文名称', 'English name')} {...form.field('enterprise.name_en')} />
      <Field label={L('所在盟市', 'Region')} type="select" options={regions} {...form.field('enterprise.region')} />
      <Field label={L('产业代码', 'Industry code')} {...form.field('enterprise.industry')} hint={L('如 dairy', 'e.g. dairy')} />
      <Field label={L('从业人数', 'Employees')} type="number" {...form.field('enterprise.employees')} />
      <Field label={L('年产值（万元）', 'Annual output (10k yuan)')} type="number" {...form.field('enterprise.annual_output_cny_10k')} />
      <FormActions form={form} label={L('保存', 'Save')} onReload={onReload} />
    </form>
  );
}

function Memberships({ enterprise, clusters, memberships, onJoined }) {
  const form = useForm({ 'membership.cluster': '', 'membership.chain_segment': '' });
  const joined = new Set(memberships.map((m) => m.cluster));
  const options = clusterOptions(clusters.filter((c) => !joined.has(c.name)));
  const join = (e) =>
    form.submit(async (v) => {
      await post(
        `${enterprise}/memberships`,
        { cluster: v['membership.cluster'], role: 'MEMBER', chainSegment: v['membership.chain_segment'] },
        { query: { requestId: requestId() } },
      );
      form.setValues({ 'membership.cluster': '', 'membership.chain_segment': '' });
      onJoined();
    }, e);
  return (
    <>
      {memberships.length === 0 ? (
        <p class="empty">{L('尚未加入集群', 'Not a member of any cluster yet')}</p>
      ) : (
        <ul class="members">
          {memberships.map((m) => (
            <li key={m.name}>
              <a href={`/${m.cluster}`}>{clusterName(clusters, m.cluster)}</a> · {label('memberRole', m.role)}
              {m.chainSegment && ` · ${m.chainSegment}`}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={join} noValidate class="form-grid">
        <Field label={L('加入集群', 'Join a cluster')} type="select" options={options} {...form.field('membership.cluster')} />
        <Field label={L('产业链环节', 'Chain segment')} {...form.field('membership.chain_segment')} />
        <FormActions form={form} label={L('申请加入', 'Join')} />
      </form>
    </>
  );
}

const EMPTY_APPLICATION = {
  'application.cluster': '',
  'application.project_name': '',
  'application.project_description': '',
  'application.core_chain_project': true,
  'application.region': '',
  'application.year': String(CURRENT_YEAR),
  'application.items[0].quantity': '',
  'application.items[1].quantity': '',
};

// A land and energy application: created as a draft and submitted in one step.
function NewApplication({ clusters, memberships, refdata, onCreated }) {
  const form = useForm(EMPTY_APPLICATION);
  const create = (e) =>
    form.submit(async (v) => {
      const items = [];
      if (v['application.items[0].quantity'] !== '') items.push({ kind: 'LAND', quantity: num(v['application.items[0].quantity']) });
      if (v['application.items[1].quantity'] !== '') items.push({ kind: 'ENERGY', quantity: num(v['application.items[1].quantity']) });
      const app = await post(
        'applications',
        {
          cluster: v['application.cluster'],
          projectName: v['application.project_name'],
          projectDescription: v['application.project_description'],
          coreChainProject: !!v['application.core_chain_project'],
          region: v['application.region'],
          year: num(v['application.year']),
          items,
        },
        { query: { requestId: requestId() } },
      );
      onCreated();
      await post(`${app.name}:submit`, { etag: app.etag, requestId: requestId() });
      form.setValues(EMPTY_APPLICATION);
      onCreated();
    }, e);
  const clusterChoices = clusterOptions(clusters, memberships.map((m) => m.cluster));
  const regions = regionOptions(refdata);
  return (
    <form onSubmit={create} noValidate class="form-grid" aria-label={L('新建要素保障申请', 'New support application')}>
      <Field label={L('所属集群', 'Cluster')} type="select" options={clusterChoices} {...form.field('application.cluster')} />
      <Field label={L('项目名称', 'Project name')} {...form.field('application.project_name')} />
      <Field label={L('项目说明', 'Project description')} type="textarea" {...form.field('application.project_description')} />
      <Field label={L('核心产业链项目', 'Core chain project')} type="checkbox" {...form.field('application.core_chain_project')} />
      <Field label={L('用地所在盟市', 'Region')} type="select" options={regions} {...form.field('application.region')} />
      <Field label={L('年度', 'Year')} type="number" {...form.field('application.year')} />
      <Field
        label={L('工业用地（平方米）', 'Industrial land (m²)')}
        type="number"
        inputMode="numeric"
        {...form.field('application.items[0].quantity')}
      />
      <Field
        label={L('用能指标（千克标准煤）', 'Energy quota (kgce)')}
        type="number"
        inputMode="numeric"
        {...form.field('application.items[1].quantity')}
      />
      <FormActions form={form} label={L('提交申请', 'Submit application')} />
    </form>
  );
}

function MyApplications({ applications, pools, clusters, onChange }) {
  const [error, setError] = useState(null);
  const act = async (a, verb) => {
    setError(null);
    try {
      await post(`${a.name}:${verb}`, { etag: a.etag, requestId: requestId() });
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  if (applications.length === 0) return <p class="empty">{L('尚无申请', 'No applications yet')}</p>;
  return (
    <>
      <ErrorNote error={error} onReload={onChange} />
      <ul class="queue">
        {applications.map((a) => {
          const last = (a.history || [])[a.history.length - 1];
          return (
            <li class="card item" key={a.name} data-name={a.name}>
              <h3>{a.projectName}</h3>
              <p>
                {clusterName(clusters, a.cluster)} · {a.year} ·{' '}
                <StateBadge state={a.state}>
                  <span class="app-state">{label('applicationState', a.state)}</span>
                </StateBadge>
                {last && last.reason && <span class="muted"> · {last.reason}</span>}
              </p>
              <ItemsTable items={a.items || []} pools={pools} />
              <p class="muted">
                {L('更新于', 'updated')} {formatTime(a.updateTime)}
              </p>
              <div class="actions">
                {['DRAFT', 'RETURNED'].includes(a.state) && (
                  <button type="button" onClick={() => act(a, 'submit')}>
                    {L('提交', 'Submit')}
                  </button>
                )}
                {['DRAFT', 'SUBMITTED', 'RETURNED'].includes(a.state) && (
                  <button type="button" class="secondary" onClick={() => act(a, 'withdraw')}>
                    {L('撤回', 'Withdraw')}
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ul>
    </>
  );
}

function Demands({ enterprise, memberships, clusters, refdata }) {
  const list = useLoad(() => listAll('demands', 'demands', { filter: `enterprise = "${enterprise}"` }), [enterprise]);
  const empty = {
    'demand.cluster': '',
    'demand.title': '',
    'demand.skills': '',
    'demand.level': 'ENGINEER',
    'demand.count': '1',
    'demand.region': '',
    'demand.deadline': '',
  };
  const form = useForm(empty);
  const postDemand = (e) =>
    form.submit(async (v) => {
      await post(
        'demands',
        {
          cluster: v['demand.cluster'],
          title: v['demand.title'],
          skills: v['demand.skills'].split(/[,，\s]+/).filter(Boolean),
          level: v['demand.level'],
          count: num(v['demand.count']),
          region: v['demand.region'],
          deadline: dateValue(v['demand.deadline']),
        },
        { query: { requestId: requestId() } },
      );
      form.setValues(empty);
      list.reload();
    }, e);
  const clusterChoices = clusterOptions(clusters, memberships.map((m) => m.cluster));
  const regions = regionOptions(refdata);
  return (
    <>
      <Loaded load={list} empty={L('尚未发布人才需求', 'No talent demands posted yet')}>
        {(demands) => (
          <ul class="members">
            {demands.map((d) => (
              <li key={d.name}>
                {d.title} · {label('level', d.level || 'LEVEL_UNSPECIFIED')} · {d.filled || 0}/{d.count} · {label('demandState', d.state)}
              </li>
            ))}
          </ul>
        )}
      </Loaded>
      <form onSubmit={postDemand} noValidate class="form-grid" aria-label={L('发布人才需求', 'Post a talent demand')}>
        <Field label={L('所属集群', 'Cluster')} type="select" options={clusterChoices} {...form.field('demand.cluster')} />
        <Field label={L('岗位名称', 'Title')} {...form.field('demand.title')} />
        <Field label={L('技能（逗号分隔）', 'Skills (comma-separated)')} {...form.field('demand.skills')} />
        <Field
          label={L('最低层次', 'Minimum level')}
          type="select"
          options={labelOptions('level').filter((o) => o.value !== 'LEVEL_UNSPECIFIED')}
          {...form.field('demand.level')}
        />
        <Field label={L('人数', 'Positions')} type="number" {...form.field('demand.count')} />
        <Field label={L('工作地', 'Region')} type="select" options={regions} {...form.field('demand.region')} />
        <Field label={L('截止日期', 'Deadline')} type="date" {...form.field('demand.deadline')} />
        <FormActions form={form} label={L('发布', 'Post')} />
      </form>
    </>
  );
}

export function EnterprisePage({ session }) {
  const me = session.can.enterprise;
  const base = useLoad(async () => {
    const [enterprise, clusters, refdata, memberships] = await Promise.all([
      get(me),
      clusterList(),
      referenceData(),
      listAll(`${me}/memberships`, 'memberships'),
    ]);
    return { enterprise, clusters, refdata, memberships };
  }, [me]);
  const apps = useLoad(async () => {
    const applications = await listAll('applications', 'applications');
    return { applications, pools: await loadPools(applications) };
  }, [me]);
  return (
    <div class="self-service">
      <h1>{L('本企业', 'My enterprise')}</h1>
      <Loaded load={base} isEmpty={() => false}>
        {({ enterprise, clusters, refdata, memberships }) => (
          <>
            <Section id="record" title={`${L('企业信息', 'Record')} · ${enterprise.uscc}`}>
              <RecordForm key={enterprise.etag} enterprise={enterprise} refdata={refdata} onReload={base.reload} />
            </Section>
            <Section id="memberships" title={L('集群成员', 'Cluster memberships')}>
              <Memberships enterprise={me} clusters={clusters} memberships={memberships} onJoined={base.reload} />
            </Section>
            <Section id="applications" title={L('用地与用能申请', 'Land and energy applications')}>
              <Loaded load={apps} isEmpty={() => false}>
                {({ applications, pools }) => (
                  <MyApplications applications={applications} pools={pools} clusters={clusters} onChange={apps.reload} />
                )}
              </Loaded>
              <h3>{L('新建申请', 'New application')}</h3>
              <NewApplication clusters={clusters} memberships={memberships} refdata={refdata} onCreated={apps.reload} />
            </Section>
            <Section id="demands" title={L('人才需求', 'Talent demands')}>
              <Demands enterprise={me} memberships={memberships} clusters={clusters} refdata={refdata} />
            </Section>
          </>
        )}
      </Loaded>
    </div>
  );
}
