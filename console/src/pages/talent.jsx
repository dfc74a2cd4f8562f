// A talent's own profile (what the talent may change) and placements.
import { useState } from 'preact/hooks';
import { get, listAll, patch } from '../api.js';
import { formatTime, L, label } from '../i18n.js';
import { referenceData, regionOptions } from '../ref.js';
import { Field, FormActions, Loaded, Section, useForm, useLoad } from '../ui.jsx';

function ProfileForm({ talent, refdata, onReload }) {
  const form = useForm({
    'talent.display_name': talent.displayName || '',
    'talent.home_institution': talent.homeInstitution || '',
    'talent.region': talent.region || '',
    'talent.skills': (talent.skills || []).join(', '),
    'talent.contact.email': (talent.contact && talent.contact.email) || '',
    'talent.contact.phone': (talent.contact && talent.contact.phone) || '',
  });
  // The version this form last saw: a save moves it on; a stale one asks to reload (onReload).
  const [etag, setEtag] = useState(talent.etag);
  const save = (e) =>
    form.submit(async (v) => {
      const updated = await patch(
        talent.name,
        {
          displayName: v['talent.display_name'],
          homeInstitution: v['talent.home_institution'],
          region: v['talent.region'],
          skills: v['talent.skills'].split(/[,，\s]+/).filter(Boolean),
          contact: { email: v['talent.contact.email'], phone: v['talent.contact.phone'] },
        },
        { query: { updateMask: 'display_name,home_institution,region,skills,contact' }, ifMatch: etag },
      );
      setEtag(updated.etag);
    }, e);
  const regions = regionOptions(refdata, { required: true });
  return (
    <form onSubmit={save} noValidate class="form-grid">
      <Field label={L('姓名', 'Name')} {...form.field('talent.display_name')} />
      <Field label={L('所在单位', 'Institution')} {...form.field('talent.home_institution')} />
      <Field label={L('所在盟市', 'Region')} type="select" options={regions} {...form.field('talent.region')} />
      <Field label={L('技能（逗号分隔）', 'Skills (comma-separated)')} {...form.field('talent.skills')} />
      <Field label={L('电子邮箱', 'E-mail')} type="email" {...form.field('talent.contact.email')} />
      <Field label={L('电话', 'Phone')} type="tel" {...form.field('talent.contact.phone')} />
      <p class="muted">
        {L('人才层次', 'Level')}: {label('level', talent.level || 'LEVEL_UNSPECIFIED')} ·{' '}
        {L('由人社部门认定', 'granted by HR & Social Security')}
      </p>
      <FormActions form={form} label={L('保存', 'Save')} onReload={onReload} />
    </form>
  );
}

export function TalentPage({ session }) {
  const me = session.can.talent;
  const load = useLoad(async () => {
    const [talent, refdata, placements] = await Promise.all([
      get(me),
      referenceData(),
      listAll('placements', 'placements', { filter: `talent = "${me}"` }),
    ]);
    return { talent, refdata, placements };
  }, [me]);
  return (
    <div class="self-service">
      <h1>{L('个人档案', 'My profile')}</h1>
      <Loaded load={load} isEmpty={() => false}>
        {({ talent, refdata, placements }) => (
          <>
            <Section id="profile" title={talent.displayName}>
              <ProfileForm key={talent.etag} talent={talent} refdata={refdata} onReload={load.reload} />
            </Section>
            <Section id="placements" title={L('岗位安排', 'Placements')}>
              {placements.length === 0 ? (
                <p class="empty">{L('暂无岗位安排', 'No placements yet')}</p>
              ) : (
                <ul class="members">
                  {placements.map((p) => (
                    <li key={p.name}>
                      {p.enterprise} · {label('placementType', p.type)} · {label('placementState', p.state)} · {formatTime(p.startTime || p.createTime)}
                    </li>
                  ))}
                </ul>
              )}
            </Section>
          </>
        )}
      </Loaded>
    </div>
  );
}
