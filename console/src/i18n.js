// Chinese first, English second. Every text is written as L('中文', 'English') where it is used,
// so no string can lack a language; enum labels are the tables below. The choice is kept in
// localStorage (it is not sensitive) and set on <html lang>.

const KEY = 'clustergov.lang';
let lang = localStorage.getItem(KEY) === 'en' ? 'en' : 'zh';

export function getLang() {
  return lang;
}

export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}
setLang(lang);

export function L(zh, en) {
  return lang === 'zh' ? zh : en;
}

// The separator of an enumeration: 、 in Chinese, a comma in English.
export function listSeparator() {
  return lang === 'zh' ? '、' : ', ';
}

export function joinList(items) {
  return items.join(listSeparator());
}

const pair = (zh, en) => ({ zh, en });
const LABELS = {
  tier: {
    TIER_UNSPECIFIED: pair('未定', 'unspecified'),
    TIER_NONE: pair('未认定', 'not designated'),
    TIER_REGION: pair('自治区级', 'region-level'),
    TIER_NATIONAL: pair('国家级', 'national'),
    TIER_WORLD_CLASS: pair('世界级', 'world-class'),
  },
  role: {
    government: pair('政府部门', 'government'),
    promotion_org: pair('促进机构', 'promotion organization'),
    enterprise: pair('企业', 'enterprise'),
    talent: pair('人才', 'talent'),
    auditor: pair('审计', 'auditor'),
    admin: pair('管理员', 'administrator'),
    service: pair('服务', 'service'),
    expert: pair('专家', 'expert'),
  },
  applicationState: {
    DRAFT: pair('草稿', 'draft'),
    SUBMITTED: pair('已提交', 'submitted'),
    UNDER_REVIEW: pair('审核中', 'under review'),
    APPROVED: pair('已批准', 'approved'),
    REJECTED: pair('已驳回', 'rejected'),
    RETURNED: pair('已退回', 'returned'),
    ALLOCATED: pair('已配置', 'allocated'),
    WITHDRAWN: pair('已撤回', 'withdrawn'),
    EXPIRED: pair('已过期', 'expired'),
  },
  designationState: {
    PENDING: pair('待审批', 'pending'),
    ACTIVE: pair('有效', 'active'),
    REJECTED: pair('已驳回', 'rejected'),
    ENDED: pair('已结束', 'ended'),
    REVOKED: pair('已撤销', 'revoked'),
    WITHDRAWN: pair('已撤回', 'withdrawn'),
  },
  reportState: {
    SUBMITTED: pair('已提交', 'submitted'),
    RETURNED: pair('已退回', 'returned'),
    ACCEPTED: pair('已接受', 'accepted'),
  },
  kind: {
    LAND: pair('工业用地', 'industrial land'),
    ENERGY: pair('用能指标', 'energy quota'),
    WATER: pair('用水指标', 'water quota'),
    ENVIRONMENT: pair('环境容量', 'environmental capacity'),
    GREEN_POWER: pair('绿电', 'green power'),
    SUBSIDY: pair('奖补资金', 'subsidy funds'),
  },
  memberRole: {
    LEAD_ENTERPRISE: pair('龙头企业', 'lead enterprise'),
    CHAIN_LEADER: pair('链主企业', 'chain leader'),
    MEMBER: pair('成员企业', 'member'),
  },
  certification: {
    INNOVATIVE_SME: pair('创新型中小企业', 'innovative SME'),
    SPECIALIZED_SME: pair('专精特新中小企业', 'specialized SME'),
    LITTLE_GIANT: pair('专精特新“小巨人”', '"little giant"'),
    SINGLE_CHAMPION: pair('制造业单项冠军', 'single champion'),
    MANUFACTURING_PILOT: pair('制造业领航企业', 'manufacturing pilot'),
    HIGH_TECH: pair('高新技术企业', 'high-tech enterprise'),
    TECH_LEADER: pair('科技领军企业', 'tech leader'),
    SMART_FACTORY: pair('智能工厂', 'smart factory'),
    GREEN_FACTORY: pair('绿色工厂', 'green factory'),
    QUALITY_MANAGEMENT: pair('质量管理体系认证', 'quality management'),
  },
  taskStatus: {
    STATUS_UNSPECIFIED: pair('未填报', 'not reported'),
    NOT_STARTED: pair('未开始', 'not started'),
    IN_PROGRESS: pair('进行中', 'in progress'),
    COMPLETED: pair('已完成', 'completed'),
    BLOCKED: pair('受阻', 'blocked'),
  },
  dimension: {
    DIMENSION_SCALE: pair('集群规模实力', 'scale and strength'),
    DIMENSION_INNOVATION: pair('创新能力', 'innovation capacity'),
    DIMENSION_MANUFACTURING: pair('先进制造能力', 'advanced manufacturing'),
    DIMENSION_ECOSYSTEM: pair('产业发展生态', 'industry ecosystem'),
  },
  placementType: {
    FULL_TIME: pair('全职', 'full-time'),
    DUAL_APPOINTMENT: pair('双聘', 'dual appointment'),
    PART_TIME_PAID: pair('兼职兼薪', 'part-time with pay'),
  },
  recommendation: {
    KEEP: pair('保持', 'keep'),
    PROMOTE: pair('晋级', 'promote'),
    WARN: pair('预警', 'warn'),
    DEMOTE: pair('降级', 'demote'),
  },
  evaluationState: {
    LEAGUE_REVIEW: pair('盟市预审', 'league pre-review'),
    DEPARTMENT_REVIEW: pair('牵头部门审核', 'lead department review'),
    EXPERT_REVIEW: pair('专家评审', 'expert review'),
    DECISION: pair('待决定', 'awaiting decision'),
    DECIDED: pair('已决定', 'decided'),
  },
  certificationState: {
    VALID: pair('有效', 'valid'),
    EXPIRED: pair('已过期', 'expired'),
    REVOKED: pair('已撤销', 'revoked'),
  },
  demandState: {
    OPEN: pair('招聘中', 'open'),
    FILLED: pair('已满', 'filled'),
    CLOSED: pair('已关闭', 'closed'),
  },
  placementState: {
    ACTIVE: pair('在岗', 'active'),
    ENDED: pair('已结束', 'ended'),
  },
  level: {
    LEVEL_UNSPECIFIED: pair('不限', 'any'),
    SKILLED_WORKER: pair('技能人才', 'skilled worker'),
    ENGINEER: pair('工程师', 'engineer'),
    SENIOR_ENGINEER: pair('高级工程师', 'senior engineer'),
    HIGH_LEVEL: pair('高层次人才', 'high-level talent'),
    LEADING: pair('领军人才', 'leading talent'),
  },
};

// The label of an enum value, or the value itself when unknown.
export function label(table, value) {
  const entry = LABELS[table] && LABELS[table][value];
  return entry ? entry[lang] : value || '—';
}

export function labelOptions(table) {
  return Object.keys(LABELS[table]).map((value) => ({ value, label: LABELS[table][value][lang] }));
}

// A name in the caller's language from an object with nameZh / nameEn (or displayName...).
export function localName(o) {
  if (!o) return '';
  const zh = o.nameZh || o.displayNameZh || o.legalNameZh || '';
  const en = o.nameEn || o.displayNameEn || '';
  return lang === 'zh' ? zh || en : en || zh;
}

export function formatNumber(n) {
  return new Intl.NumberFormat(lang === 'zh' ? 'zh-CN' : 'en-GB').format(Number(n || 0));
}

export function formatTime(ts) {
  if (!ts) return '—';
  return new Date(ts).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}
