// The console in a real browser against the real platform: Debian's chromium, headless, driven by
// playwright-core (nothing downloaded), and every service started by scripts/run-local.sh
// --no-build on free ports with its own run directory. Scenarios: a government operator approves
// a designation and the cluster page shows the organization; an enterprise submits a land and
// energy application, the lead department approves it, and the enterprise sees the new status and
// the pools' new free quota; a bad field shows its message next to the field; a role without
// rights does not see the action. Screenshots go to $CLUSTERGOV_BINARY_DIR/console-artifacts.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.resolve(process.env.CLUSTERGOV_BINARY_DIR || path.join(ROOT, 'build'));
const ARTIFACTS = path.join(BIN, 'console-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const YEAR = new Date().getFullYear();
const DAIRY = 'clusters/hohhot-dairy';
const CASHMERE = 'clusters/cashmere-textiles';

let platform;
let platformOutput = '';
let runDir;
let base;
let browser;
let secret;
const ports = {};

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function mint(sub, org, roles) {
  const r = spawnSync(path.join(BIN, 'common/clustergov-token'),
    [`--secret=${secret}`, `--sub=${sub}`, `--org=${org}`, `--roles=${roles}`, '--ttl=3600'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

// An API call for the scenarios' setup. 503 (a service still connecting to another right after
// the start) is retried for a while; anything else that is not 2xx fails.
async function call(token, method, p, body, query = {}) {
  const q = new URLSearchParams(query).toString();
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}/v1/${p}${q ? `?${q}` : ''}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json().catch(() => ({}));
    if (res.status === 503 && attempt < 40) {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }
}

// GB 32100-2015 check character.
function uscc(first17) {
  const alphabet = '0123456789ABCDEFGHJKLMNPQRTUWXY';
  const weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  const sum = [...first17].reduce((acc, c, i) => acc + alphabet.indexOf(c) * weights[i], 0);
  return first17 + alphabet[(31 - (sum % 31)) % 31];
}

async function waitFor(what, fn, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${platformOutput}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// A signed-in page; every request it makes must stay on the gateway's origin, and the CSP must
// never be violated.
async function signedIn(token, { width = 1366, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.foreign = [];
  page.cspViolations = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) page.foreign.push(r.url());
  });
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) page.cspViolations.push(m.text());
  });
  await page.goto(`${base}/`);
  await page.getByLabel(/访问令牌/).fill(token);
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await page.getByRole('heading', { name: '总览' }).waitFor();
  return page;
}

async function finish(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  assert.deepEqual(page.foreign, [], 'requests left the gateway origin');
  assert.deepEqual(page.cspViolations, [], 'Content-Security-Policy violations');
  await page.context().close();
}

let gov;
let commerceGov;
let enterpriseToken;
let enterprise;
let orgToken;
const ORG = 'promotionOrgs/console-test-alliance';

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  assert.ok(fs.existsSync(path.join(BIN, 'console/index.html')), `the console is not built into ${BIN}/console`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (scripts/install-deps.sh installs chromium)`);
  runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clustergov-console-'));
  const names = ['REDIS_PORT', 'CLUSTERS_PORT', 'CLUSTERS_METRICS_PORT', 'ENTERPRISES_PORT', 'ENTERPRISES_METRICS_PORT',
    'SUPPORT_PORT', 'SUPPORT_METRICS_PORT', 'PROMOTION_PORT', 'PROMOTION_METRICS_PORT', 'TALENT_PORT',
    'TALENT_METRICS_PORT', 'GATEWAY_PORT', 'GATEWAY_METRICS_PORT', 'PROMETHEUS_PORT'];
  const taken = new Set();
  for (const n of names) {
    let p;
    do p = await freePort(); while (taken.has(p));
    taken.add(p);
    ports[n] = String(p);
  }
  base = `http://127.0.0.1:${ports.GATEWAY_PORT}`;
  platform = spawn('bash', [path.join(ROOT, 'scripts/run-local.sh'), '--no-build'], {
    cwd: ROOT,
    env: { ...process.env, ...ports, BUILD_DIR: BIN, CLUSTERGOV_RUN_DIR: runDir, CLUSTERGOV_STARTUP_TIMEOUT: '90' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,  // its own process group, so that whatever outlives SIGTERM can be killed
  });
  platform.stdout.on('data', (d) => (platformOutput += d));
  platform.stderr.on('data', (d) => (platformOutput += d));
  const exited = new Promise((resolve) => platform.once('exit', resolve));
  await Promise.race([
    waitFor('the platform', () => platformOutput.includes('Ctrl-C stops everything'), 120000),
    exited.then((code) => Promise.reject(new Error(`run-local.sh exited (${code}):\n${platformOutput}`))),
  ]);
  // run-local.sh prints the console's address.
  assert.match(platformOutput, new RegExp(`console +http://127\\.0\\.0\\.1:${ports.GATEWAY_PORT}/`));
  secret = fs.readFileSync(path.join(runDir, 'dev-secret'), 'utf8').trim();

  gov = mint('wang.li', 'departments/industry_it', 'government');
  commerceGov = mint('chen.jie', 'departments/commerce', 'government');
  const energyGov = mint('zhao.min', 'departments/energy', 'government');
  // Pools the application draws from: land (Industry & IT) and energy (Energy Bureau).
  await call(gov, 'POST', 'pools', { region: '150100', year: YEAR, kind: 'LAND', capacity: '500000' });
  await call(energyGov, 'POST', 'pools', { region: '150100', year: YEAR, kind: 'ENERGY', capacity: '200000' });
  // A seeded lead enterprise of the dairy cluster applies.
  const members = await call(gov, 'GET', `${DAIRY}/members`);
  enterprise = members.memberships[0].enterprise;
  enterpriseToken = mint('ent.user', enterprise, 'enterprise');
  // An eligible promotion organization applies to serve the cashmere cluster.
  orgToken = mint('org.user', ORG, 'promotion_org');
  await call(orgToken, 'POST', 'promotionOrgs', {
    displayNameZh: '绒纺产业集群促进联盟',
    displayNameEn: 'Cashmere Cluster Alliance',
    legalForm: 'ALLIANCE',
    uscc: uscc('51150600CN0000001'),
    independentLegalPerson: true,
    governance: { legalRepresentative: '张敏', bylawsAdopted: { year: 2024, month: 3, day: 1 } },
    fullTimeStaff: 5,
    incomeSources: ['MEMBERSHIP_FEES', 'SERVICE_INCOME'],
    services: ['SUPPLY_DEMAND_MATCHING', 'INDUSTRY_MONITORING'],
    contact: { person: '张敏', phone: '0471-0000000', email: 'office@example.org' },
  }, { promotionOrgId: 'console-test-alliance' });
  await call(orgToken, 'POST', 'designations', { promotionOrg: ORG, cluster: CASHMERE, applicationReason: '服务绒纺集群' });

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (platform && platform.exitCode === null) {
    // SIGTERM: the script stops its children and waits for them; after 40 s the group is killed.
    const exited = new Promise((resolve) => platform.once('exit', () => resolve(true)));
    platform.kill('SIGTERM');
    if (!(await Promise.race([exited, new Promise((r) => setTimeout(() => r(false), 40000))]))) {
      process.kill(-platform.pid, 'SIGKILL');
    }
  }
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
});

test('the dashboard shows the 2027 progress, the 13 clusters, the leagues and the waiting queues', async () => {
  const page = await signedIn(gov);
  await page.locator('table.clusters tbody tr').first().waitFor();
  assert.equal(await page.locator('table.clusters tbody tr').count(), 13);
  // 1 + 3 + 9 goals.
  const goals = await page.locator('tr[data-tier] td:nth-child(2)').allTextContents();
  assert.deepEqual(goals, ['1', '3', '9']);
  assert.equal(await page.locator('.league-map .tile').count(), 12);
  assert.equal(await page.locator('canvas[role="img"]').count(), 2);
  // The pending designation waits for Industry & IT.
  await page.locator('[data-queue="designations"] .count').filter({ hasText: '1' }).waitFor();
  await finish(page, 'dashboard');
  // English too.
  const en = await signedIn(gov);
  await en.getByRole('button', { name: 'English' }).click();
  await en.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await en.locator('table.clusters tbody tr').first().waitFor();
  await en.getByRole('link', { name: 'Promotion organization designations' }).waitFor();
  assert.equal(await en.getByText('促进机构认定申请').count(), 0, 'nothing left in Chinese');
  await finish(en, 'dashboard-en');
  // A tablet in portrait: one column, nothing wider than the screen.
  const tablet = await signedIn(gov, { width: 820, height: 1180 });
  await tablet.locator('table.clusters tbody tr').first().waitFor();
  assert.ok(await tablet.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling');
  await finish(tablet, 'dashboard-tablet');
});

test('signing in works from the keyboard alone', async () => {
  const context = await browser.newContext({ locale: 'zh-CN' });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  // Skip link, brand link, language toggle, then the token field.
  for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement && document.activeElement.name === 'token')); i++) {
    await page.keyboard.press('Tab');
  }
  await page.keyboard.type(gov);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: '总览' }).waitFor();
  // The token is kept for the tab only.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('clustergov.token')), gov);
  assert.equal(await page.evaluate(() => localStorage.getItem('clustergov.token')), null);
  await context.close();
});

test('a role without rights does not see the action', async () => {
  // An enterprise has no review queue at all.
  const ent = await signedIn(enterpriseToken);
  assert.equal(await ent.getByRole('link', { name: '审批' }).count(), 0);
  await ent.goto(`${base}/reviews`);
  await ent.getByRole('heading', { name: '总览' }).waitFor();
  assert.equal(await ent.locator('button[data-action="approve"]').count(), 0);
  await finish(ent, 'enterprise-no-reviews');

  // Government of a department that does not lead the cluster sees the application, not the buttons.
  const commerce = await signedIn(commerceGov);
  await commerce.getByRole('link', { name: '审批' }).click();
  const item = commerce.locator(`li[data-name^="designations/"]`).filter({ hasText: '绒纺产业集群促进联盟' });
  await item.waitFor();
  await item.getByText('由该集群的牵头部门审批').waitFor();
  assert.equal(await item.locator('button[data-action="approve"]').count(), 0);
  await finish(commerce, 'other-department-no-approve');
});

test('a government operator approves a designation and the cluster page shows the organization', async () => {
  const page = await signedIn(gov);
  await page.getByRole('link', { name: '审批' }).click();
  const item = page.locator(`li[data-name^="designations/"]`).filter({ hasText: '绒纺产业集群促进联盟' });
  await item.waitFor();
  // Approving without a reason is refused next to the form.
  await item.locator('button[data-action="approve"]').click();
  await item.getByText('请填写理由。').waitFor();
  await item.getByLabel('理由').fill('符合促进机构条件');
  await item.locator('button[data-action="approve"]').click();
  await page.locator(`li[data-name^="designations/"]`).filter({ hasText: '绒纺产业集群促进联盟' }).waitFor({ state: 'detached' });
  await page.screenshot({ path: path.join(ARTIFACTS, 'designation-approved.png'), fullPage: true });

  await page.goto(`${base}/${CASHMERE}`);
  await page.locator('.promotion-org-name').filter({ hasText: '绒纺产业集群促进联盟' }).waitFor();
  await page.getByRole('heading', { name: '15 项重点任务进展' }).waitFor();
  assert.equal(await page.locator('table.tasks tbody tr').count(), 15);
  await finish(page, 'cluster-page');
});

test('a bad field shows its message next to the field', async () => {
  const page = await signedIn(enterpriseToken);
  await page.getByRole('link', { name: '本企业' }).click();
  const form = page.getByRole('form', { name: '新建要素保障申请' });
  await form.getByLabel('所属集群').selectOption(DAIRY);
  await form.getByLabel('项目名称').fill('液态奶扩产项目（错误数量）');
  await form.getByLabel('用地所在盟市').selectOption('150100');
  await form.getByLabel('工业用地（平方米）').fill('-5');
  await form.getByRole('button', { name: '提交申请' }).click();
  const message = form.locator('.field-error[data-field="application.items[0].quantity"]');
  await message.waitFor();
  assert.match(await message.textContent(), /required/);
  const input = form.getByLabel('工业用地（平方米）');
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  // The message is announced with the field it belongs to.
  assert.ok((await input.getAttribute('aria-describedby')).includes(await message.getAttribute('id')));
  // Every control on the page has a label.
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')].filter((e) => !e.labels || e.labels.length === 0).map((e) => e.name));
  assert.deepEqual(unlabelled, []);
  await finish(page, 'field-error');
});

test('an enterprise applies for land and energy, the lead department approves, the enterprise sees it', async () => {
  const before = await call(gov, 'GET', `pools/150100-${YEAR}-land`);
  const ent = await signedIn(enterpriseToken);
  await ent.getByRole('link', { name: '本企业' }).click();
  const form = ent.getByRole('form', { name: '新建要素保障申请' });
  await form.getByLabel('所属集群').selectOption(DAIRY);
  await form.getByLabel('项目名称').fill('液态奶智能工厂扩产项目');
  await form.getByLabel('项目说明').fill('新建两条液态奶生产线');
  await form.getByLabel('用地所在盟市').selectOption('150100');
  await form.getByLabel('工业用地（平方米）').fill('30000');
  await form.getByLabel('用能指标（千克标准煤）').fill('12000');
  await form.getByRole('button', { name: '提交申请' }).click();
  const mine = ent.locator('li[data-name^="applications/"]').filter({ hasText: '液态奶智能工厂扩产项目' });
  await mine.locator('.app-state').filter({ hasText: '已提交' }).waitFor();
  await ent.screenshot({ path: path.join(ARTIFACTS, 'application-submitted.png'), fullPage: true });

  const reviewer = await signedIn(gov);
  await reviewer.getByRole('link', { name: '审批' }).click();
  const item = () => reviewer.locator('li[data-name^="applications/"]').filter({ hasText: '液态奶智能工厂扩产项目' });
  await item().waitFor();
  // The reviewer sees the amounts and each pool's free quota.
  await item().locator(`tr[data-pool="pools/150100-${YEAR}-land"] .pool-free`).filter({ hasText: '500,000' }).waitFor();
  await item().locator('button[data-action="startReview"]').click();
  await item().locator('button[data-action="approve"]').waitFor();
  await item().getByLabel('理由').fill('核心链项目，指标充足');
  await item().locator('button[data-action="approve"]').click();
  await item().locator('button[data-action="allocate"]').waitFor();
  await finish(reviewer, 'application-approved');

  await ent.reload();
  const after = ent.locator('li[data-name^="applications/"]').filter({ hasText: '液态奶智能工厂扩产项目' });
  await after.locator('.app-state').filter({ hasText: '已批准' }).waitFor();
  await after.locator(`tr[data-pool="pools/150100-${YEAR}-land"] .pool-free`).filter({ hasText: '470,000' }).waitFor();
  await after.locator(`tr[data-pool="pools/150100-${YEAR}-energy"] .pool-free`).filter({ hasText: '188,000' }).waitFor();
  const now = await call(gov, 'GET', `pools/150100-${YEAR}-land`);
  assert.equal(Number(before.free) - Number(now.free), 30000);
  await finish(ent, 'application-seen-by-enterprise');
});

test('a promotion organization files its annual report, the lead department accepts it, the evaluation shows', async () => {
  const org = await signedIn(orgToken);
  await org.getByRole('link', { name: '本机构' }).click();
  const form = org.getByRole('form', { name: '提交年度报告' });
  await form.getByLabel('集群', { exact: true }).selectOption(CASHMERE);
  await form.getByLabel('工作报告').fill('组织供需对接会 6 场，服务企业 40 家。');
  await form.getByLabel('集群产值（元）').fill('1200000000');
  await form.getByLabel('从业人员').fill('5200');
  await form.getByLabel('专利数').fill('36');
  await form.getByRole('button', { name: '提交' }).click();
  await org.locator('section[aria-labelledby="reports"] ul').getByText('已提交').waitFor();

  const reviewer = await signedIn(gov);
  await reviewer.getByRole('link', { name: '审批' }).click();
  const item = reviewer.locator(`li[data-name="annualReports/cashmere-textiles-${YEAR - 1}"]`);
  await item.getByText('组织供需对接会 6 场').waitFor();
  await item.locator('button[data-action="accept"]').click();
  await item.waitFor({ state: 'detached' });
  await finish(reviewer, 'annual-report-accepted');

  await org.reload();
  await org.locator('section[aria-labelledby="reports"] ul').getByText('已接受').waitFor();
  await finish(org, 'annual-report-seen-by-organization');

  // With the accepted report the lead department opens the year's evaluation; the cluster page
  // shows its result per dimension and per indicator with the rule set's explanation.
  await call(gov, 'POST', `${CASHMERE}/evaluations`, { year: YEAR - 1, reason: '年度评价' });
  const page = await signedIn(gov);
  await page.goto(`${base}/${CASHMERE}`);
  await page.locator('canvas[aria-label="四个维度得分雷达图"]').waitFor();
  const rows = page.locator('table.indicators tbody tr');
  await rows.first().waitFor();
  assert.ok((await rows.count()) > 4);
  const explained = await page.locator('table.indicators tbody td:last-child').allTextContents();
  assert.ok(explained.some((t) => t !== '—' && t.length > 4), 'indicators carry their explanation');
  await page.locator('#evaluation').scrollIntoViewIfNeeded();
  await finish(page, 'evaluation');
});

test('an enterprise joins a cluster and posts a talent demand there', async () => {
  const page = await signedIn(enterpriseToken);
  await page.getByRole('link', { name: '本企业' }).click();
  const memberships = page.locator('section[aria-labelledby="memberships"]');
  await memberships.getByLabel('加入集群').selectOption('clusters/biomedicine');
  await memberships.getByLabel('产业链环节').fill('原料药');
  await memberships.getByRole('button', { name: '申请加入' }).click();
  await memberships.locator('ul.members').getByText('内蒙古生物医药先进制造业集群').waitFor();

  const form = page.getByRole('form', { name: '发布人才需求' });
  await form.getByLabel('所属集群').selectOption('clusters/biomedicine');
  await form.getByLabel('岗位名称').fill('发酵工艺工程师');
  await form.getByLabel('技能（逗号分隔）').fill('biopharma');
  await form.getByLabel('工作地').selectOption('150100');
  // Without a deadline the service names the field.
  await form.getByRole('button', { name: '发布' }).click();
  await form.locator('.field-error[data-field="demand.deadline"]').waitFor();
  const next = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
  await form.getByLabel('截止日期').fill(next);
  await form.getByRole('button', { name: '发布' }).click();
  await page.locator('section[aria-labelledby="demands"] ul.members').getByText('发酵工艺工程师').waitFor();
  await finish(page, 'membership-and-demand');
});

test('a stale record asks to reload', async () => {
  const page = await signedIn(enterpriseToken);
  await page.getByRole('link', { name: '本企业' }).click();
  const employees = page.getByLabel('从业人数');
  await employees.waitFor();
  // Someone else changes the record after the page read it.
  await call(gov, 'PATCH', enterprise, { employees: 4321 }, { updateMask: 'employees' });
  await employees.fill('1234');
  await page.getByRole('button', { name: '保存' }).click();
  await page.getByText('该记录已被他人修改，请重新加载后再试。').waitFor();
  await page.getByRole('button', { name: '重新加载' }).click();
  await page.waitForFunction(() => document.querySelector('input[name="enterprise.employees"]').value === '4321');
  // Saved on the current version it goes through.
  await page.getByLabel('从业人数').fill('1234');
  await page.getByRole('button', { name: '保存' }).click();
  await page.locator('[role="status"]').getByText('已保存').waitFor();
  assert.equal((await call(gov, 'GET', enterprise)).employees, 1234);
  await finish(page, 'stale-record');
});

test('a talent keeps their profile and sees placements', async () => {
  const talent = 'talents/console-test-talent';
  const token = mint('talent.user', talent, 'talent');
  await call(token, 'POST', 'talents', {
    displayName: '王芳', field: 'food', skills: ['dairy_processing'], institutionKind: 'UNIVERSITY',
    region: '150100', homeInstitution: '内蒙古农业大学',
  }, { talentId: 'console-test-talent' });
  const page = await signedIn(token);
  await page.getByRole('link', { name: '个人档案' }).click();
  await page.getByText('暂无岗位安排').waitFor();
  // An unknown skill is refused next to its field.
  await page.getByLabel('技能（逗号分隔）').fill('dairy_processing, juggling');
  await page.getByRole('button', { name: '保存' }).click();
  await page.locator('.field-error[data-field="talent.skills"]').waitFor();
  await page.getByLabel('技能（逗号分隔）').fill('dairy_processing');
  await page.getByLabel('所在单位').fill('内蒙古工业大学');
  await page.getByRole('button', { name: '保存' }).click();
  await page.locator('[role="status"]').getByText('已保存').waitFor();
  assert.equal((await call(token, 'GET', talent)).homeInstitution, '内蒙古工业大学');
  await finish(page, 'talent-profile');
});

test('the gateway serves the console with its security headers and the API stays JSON', async () => {
  const index = await fetch(`${base}/clusters/${CASHMERE.split('/')[1]}`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-security-policy'), /script-src 'self'; style-src 'self'/);
  assert.equal(index.headers.get('x-frame-options'), 'DENY');
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  const html = await index.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  assert.doesNotMatch(html, /https?:\/\//, 'no outside URL in the page');
  const asset = html.match(/src="(\/assets\/[^"]+\.js)"/)[1];
  const js = await fetch(`${base}${asset}`);
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  const api = await fetch(`${base}/v1/nowhere`);
  assert.equal(api.status, 404);
  assert.equal(api.headers.get('content-type'), 'application/json');
});
