#!/usr/bin/env bash
# Checks clustergov's Prometheus and Grafana files offline:
#   - promtool check config deploy/monitoring/prometheus/prometheus.yml (Debian's promtool has no
#     Kubernetes service discovery: the kubernetes_sd_configs block is then swapped for a
#     static_configs one and the rest, rule files included, checked);
#   - promtool check rules / promtool test rules on the rule file and its unit tests;
#   - deploy/k8s/monitoring/prometheusrule.yaml equals a fresh render of the rule file, and
#     `kubectl kustomize deploy/k8s/monitoring` builds;
#   - every alert has for, severity (page or ticket), summary, description and a runbook_url
#     docs/operations.md#<alert name in lower case>, and docs/operations.md has that heading
#     (a section titled with the alert's name, or an <a id="..."> anchor);
#   - the Grafana dashboard: valid JSON, ${datasource} everywhere, every panel has queries, and
#     every PromQL expression (variables substituted) parses (promtool check rules) and uses only
#     the metrics the services export, the recording rules of the rule file and known labels;
#     the rule file's expressions are held to the same metric and label names.
# Usage: tests/deploy/monitoring_test.sh [REPO_ROOT]   Needs promtool (Debian package prometheus)
# and node (nodejs); no network. PROMTOOL, NODE and KUBECTL override the tools.
set -uo pipefail

root=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
PROMTOOL=${PROMTOOL:-promtool}
NODE=${NODE:-node}
KUBECTL=${KUBECTL:-kubectl}

mon="$root/deploy/monitoring"
config="$mon/prometheus/prometheus.yml"
rules="$mon/prometheus/rules/clustergov.rules.yml"
tests="$mon/prometheus/tests/clustergov.rules.test.yml"
dashboard="$mon/grafana/clustergov-dashboard.json"
rendered="$root/deploy/k8s/monitoring/prometheusrule.yaml"
runbooks="$root/docs/operations.md"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=()
# check NAME COMMAND...: runs COMMAND, prints ok or FAIL with its output.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok   $name"
  else
    echo "FAIL $name"
    printf '%s\n' "$out" | sed 's/^/     /'
    failed+=("$name")
  fi
}

for tool in "$PROMTOOL" "$NODE"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL $tool not found (scripts/install-deps.sh installs it)"
    exit 1
  fi
done
echo "using $("$PROMTOOL" --version 2>&1 | head -n 1), node $("$NODE" --version)"

# --- Prometheus configuration
printf 'scrape_configs:\n  - job_name: probe\n    kubernetes_sd_configs:\n      - role: endpoints\n' > "$tmp/probe.yml"
if "$PROMTOOL" check config "$tmp/probe.yml" >/dev/null 2>&1; then
  check "promtool check config prometheus.yml" "$PROMTOOL" check config "$config"
else
  echo "note this promtool lacks kubernetes_sd_configs (Debian's build): checking prometheus.yml with it swapped for static_configs"
  mkdir "$tmp/config"
  ln -s "$mon/prometheus/rules" "$tmp/config/rules"
  awk '
    skip && (NF == 0 || match($0, /^ */) && RLENGTH > indent) { next }
    { skip = 0 }
    /^ *kubernetes_sd_configs:/ {
      match($0, /^ */); indent = RLENGTH; skip = 1; swapped++
      printf "%*sstatic_configs: [{targets: [\"kubernetes-sd.invalid:9451\"]}]\n", indent, ""
      next
    }
    { print }
    END { if (!swapped) { print "no kubernetes_sd_configs block found" > "/dev/stderr"; exit 1 } }
  ' "$config" > "$tmp/config/prometheus.yml" || failed+=("prometheus.yml: kubernetes_sd_configs swap")
  check "promtool check config prometheus.yml (kubernetes_sd_configs swapped)" \
    "$PROMTOOL" check config "$tmp/config/prometheus.yml"
fi

# --- Rules and their unit tests
check "promtool check rules clustergov.rules.yml" "$PROMTOOL" check rules "$rules"
check "promtool test rules clustergov.rules.test.yml" "$PROMTOOL" test rules "$tests"

# --- PrometheusRule and kustomization
render_matches() {
  bash "$mon/render-prometheusrule.sh" "$tmp/prometheusrule.yaml" || return 1
  diff -u "$rendered" "$tmp/prometheusrule.yaml" || { echo "run deploy/monitoring/render-prometheusrule.sh"; return 1; }
}
kustomize_builds() {
  local out n kind
  out=$("$KUBECTL" kustomize "$root/deploy/k8s/monitoring") || return 1
  for kind in PrometheusRule ServiceMonitor; do
    grep -qx "kind: $kind" <<<"$out" || { echo "no $kind in the output"; return 1; }
  done
  n=$(grep -cx "  namespace: clustergov" <<<"$out")
  [[ $n -eq 2 ]] || { echo "expected 2 objects in namespace clustergov, found $n"; return 1; }
}
check "prometheusrule.yaml equals a fresh render" render_matches
# kubectl comes with scripts/install-deps.sh (Debian's kubernetes-client when none is installed).
check "$(basename "$KUBECTL") kustomize deploy/k8s/monitoring" kustomize_builds

# --- Alerts, names, and the dashboard (node, no packages)
cat > "$tmp/check.js" <<'JS'
'use strict';
const fs = require('fs');
const [mode, ...args] = process.argv.slice(2);
const problems = [];
const problem = (m) => problems.push(m);

// What the services export (docs/operations.md#metrics); histograms as their three series.
const COUNTERS_AND_GAUGES = [
  'up',
  'grpc_server_started_total', 'grpc_server_handled_total',
  'clustergov_cache_hits_total', 'clustergov_cache_misses_total', 'clustergov_cache_errors_total',
  'clustergov_cache_bypasses_total', 'clustergov_cache_near_hits_total', 'clustergov_cache_pending_invalidations',
  'clustergov_store_commits_total', 'clustergov_store_writes_total', 'clustergov_build_info',
  'clustergov_redis_up', 'clustergov_support_applications',
  'clustergov_support_oldest_pending_application_seconds', 'clustergov_support_pool_utilization_ratio',
  'http_requests_total',
  'clustergov_events_outbox_backlog', 'clustergov_events_outbox_oldest_unsent_age_seconds',
  'clustergov_events_published_total', 'clustergov_events_publish_errors_total', 'clustergov_events_stream_length',
  'clustergov_events_pending', 'clustergov_events_handled_total', 'clustergov_events_duplicates_total',
  'clustergov_events_handler_failures_total', 'clustergov_events_redeliveries_total',
  'clustergov_events_dead_letters_total', 'clustergov_scheduled_job_leader',
  'clustergov_scheduled_job_last_success_timestamp_seconds', 'clustergov_scheduled_job_runs_total',
  'clustergov_scheduled_job_failures_total',
];
const HISTOGRAMS = ['grpc_server_handling_seconds', 'clustergov_store_operation_seconds', 'http_request_duration_seconds',
  'clustergov_events_apply_lag_seconds'];
const LABELS = new Set([
  'job', 'instance', 'namespace', 'service', 'pod', 'container',   // target labels
  'grpc_type', 'grpc_service', 'grpc_method', 'grpc_code', 'le',   // gRPC
  'cache', 'op', 'version',                                        // cache, store, build info
  'state', 'pool', 'region', 'year', 'kind',                       // support
  'method', 'route', 'code',                                       // gateway
  'stream', 'group', 'schedule',                                   // events, scheduled jobs
]);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'inf', 'nan', 'offset']);

function known(rulesText) {
  const names = new Set(COUNTERS_AND_GAUGES);
  for (const h of HISTOGRAMS) for (const s of ['_bucket', '_sum', '_count']) names.add(h + s);
  for (const m of rulesText.matchAll(/^\s*-?\s*record:\s*['"]?([A-Za-z_:][A-Za-z0-9_:]*)/gm)) names.add(m[1]);
  return names;
}

// Metric and label names of a PromQL expression (a tokenizer, not a parser: promtool parses).
function names(expr) {
  let s = expr.replace(/#.*$/gm, ' ');
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const labels = [];
  s = s.replace(/\{([^}]*)\}/g, (_, inner) => {
    for (const m of inner.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1]);
    return ' ';
  });
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, kw, inner) => {
    for (const l of inner.split(',').map((x) => x.trim()).filter(Boolean)) labels.push(l);
    return ' ';
  });
  s = s.replace(/\boffset\s+\S+/g, ' ');
  s = s.replace(/(^|[^A-Za-z0-9_:.])(0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/g, '$1 ');
  const metrics = [];
  const re = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  let m;
  while ((m = re.exec(s))) {
    if (/^\s*\(/.test(s.slice(re.lastIndex))) continue;  // function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    metrics.push(m[0]);
  }
  return { metrics, labels };
}

function checkNames(where, expr, metricSet) {
  const { metrics, labels } = names(expr);
  if (metrics.length === 0) problem(`${where}: no metric in ${JSON.stringify(expr)}`);
  for (const n of metrics) if (!metricSet.has(n)) problem(`${where}: unknown metric ${n}`);
  for (const l of labels) if (!LABELS.has(l)) problem(`${where}: unknown label ${l}`);
}

// The rule file, line by line: it is written in one style (2-space lists, "expr:" inline or as
// a "|" block), which is all this reads; promtool checks the YAML itself.
function parseRules(text) {
  const lines = text.split('\n');
  const rules = [];
  let cur = null, section = null;
  const indentOf = (l) => l.match(/^ */)[0].length;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*(#.*)?$/.test(line)) continue;
    const item = line.match(/^( *)- (alert|record):\s*(.*)$/);
    if (item) {
      cur = { kind: item[2], name: item[3].replace(/^['"]|['"]$/g, ''), indent: item[1].length + 2,
              line: i + 1, keys: {}, labels: {}, annotations: {} };
      rules.push(cur); section = null;
      continue;
    }
    if (!cur) continue;
    const ind = indentOf(line);
    if (ind < cur.indent) { cur = null; continue; }
    const kv = line.match(/^ *([A-Za-z_]+):\s*(.*)$/);
    if (ind === cur.indent && kv) {
      section = kv[1];
      let value = kv[2];
      if (/^[|>][-+]?$/.test(value)) {
        const block = [];
        while (i + 1 < lines.length && (lines[i + 1].trim() === '' || indentOf(lines[i + 1]) > ind)) {
          block.push(lines[++i].trim());
        }
        value = block.join('\n').trim();
      } else {
        value = value.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
      }
      cur.keys[section] = value;
    } else if (ind === cur.indent + 2 && kv && (section === 'labels' || section === 'annotations')) {
      cur[section][kv[1]] = kv[2].replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
    }
  }
  return rules;
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
function anchors(markdown) {
  const set = new Set();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    if (fence) continue;
    const h = line.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
    if (h) set.add(h[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
    for (const a of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) set.add(a[1]);
  }
  return set;
}

if (mode === 'rules' || mode === 'runbooks') {
  const [rulesPath, runbooksPath] = args;
  const text = fs.readFileSync(rulesPath, 'utf8');
  const metricSet = known(text);
  const rules = parseRules(text);
  const alerts = rules.filter((r) => r.kind === 'alert');
  if (mode === 'rules') {
    for (const r of rules) {
      const where = `${r.kind} ${r.name} (line ${r.line})`;
      if (!r.keys.expr) { problem(`${where}: no expr`); continue; }
      checkNames(where, r.keys.expr, metricSet);
      if (r.kind !== 'alert') continue;
      if (!/^[A-Z][A-Za-z0-9]+$/.test(r.name)) problem(`${where}: alert names are CamelCase`);
      if (!r.keys.for) problem(`${where}: no for`);
      if (!['page', 'ticket'].includes(r.labels.severity)) problem(`${where}: severity must be page or ticket, not ${r.labels.severity}`);
      for (const a of ['summary', 'description', 'runbook_url']) if (!r.annotations[a]) problem(`${where}: no ${a} annotation`);
      const want = `docs/operations.md#${r.name.toLowerCase()}`;
      if (r.annotations.runbook_url && r.annotations.runbook_url !== want) {
        problem(`${where}: runbook_url ${r.annotations.runbook_url}, expected ${want}`);
      }
    }
    if (alerts.length === 0) problem('no alerts found in the rule file');
    console.log(`${rules.length} rules, ${alerts.length} alerts`);
  } else {
    const docAnchors = fs.existsSync(runbooksPath) ? anchors(fs.readFileSync(runbooksPath, 'utf8')) : new Set();
    const missing = [...new Set(alerts.map((r) => r.name))].filter((n) => !docAnchors.has(n.toLowerCase()));
    for (const n of missing) problem(`no heading "${n}" (anchor #${n.toLowerCase()})`);
    if (missing.length) problem(`${runbooksPath}: ${missing.length} runbook section(s) missing`);
  }
} else if (mode === 'dashboard') {
  const [dashPath, rulesPath, outPath] = args;
  let dash;
  try { dash = JSON.parse(fs.readFileSync(dashPath, 'utf8')); } catch (e) { problem(`invalid JSON: ${e.message}`); }
  const exprs = [];
  if (dash) {
    const metricSet = known(fs.readFileSync(rulesPath, 'utf8'));
    const isDs = (ds) => ds && ds.type === 'prometheus' && ds.uid === '${datasource}';
    const vars = (dash.templating && dash.templating.list) || [];
    const byName = Object.fromEntries(vars.map((v) => [v.name, v]));
    if (!byName.datasource || byName.datasource.type !== 'datasource' || byName.datasource.query !== 'prometheus') {
      problem('no "datasource" variable of type datasource (prometheus)');
    }
    for (const name of ['job', 'instance']) {
      const v = byName[name];
      if (!v || v.type !== 'query') { problem(`no "${name}" query variable`); continue; }
      if (!isDs(v.datasource)) problem(`variable ${name}: datasource is not \${datasource}`);
      const q = typeof v.query === 'string' ? v.query : (v.query && v.query.query) || '';
      const m = q.match(/^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/s);
      if (!m) { problem(`variable ${name}: expected label_values(<selector>, label), got ${q}`); continue; }
      exprs.push({ where: `variable ${name}`, id: `var_${name}`, expr: m[1] });
    }
    const panels = [];
    const walk = (list) => { for (const p of list || []) { panels.push(p); walk(p.panels); } };
    walk(dash.panels);
    let queries = 0;
    const ids = new Set();
    for (const p of panels) {
      if (ids.has(p.id)) problem(`panel id ${p.id} used twice`);
      ids.add(p.id);
      if (p.type === 'row') continue;
      const where = `panel ${p.id} "${p.title}"`;
      if (!isDs(p.datasource)) problem(`${where}: datasource is not \${datasource}`);
      if (!Array.isArray(p.targets) || p.targets.length === 0) { problem(`${where}: no targets`); continue; }
      for (const t of p.targets) {
        if (!isDs(t.datasource)) problem(`${where} ${t.refId}: datasource is not \${datasource}`);
        if (typeof t.expr !== 'string' || !t.expr.trim()) { problem(`${where} ${t.refId}: no expr`); continue; }
        exprs.push({ where: `${where} ${t.refId}`, id: `panel_${p.id}_${t.refId}`, expr: t.expr });
        queries++;
      }
    }
    for (const e of exprs) {
      // Grafana's variables: intervals become a duration, the others (used in =~ matchers) a regex.
      e.promql = e.expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (_, a, b, c) => {
        const v = a || b || c;
        return /^__(rate_)?interval(_ms)?$|^__range$/.test(v) ? '5m' : '.+';
      });
      checkNames(e.where, e.promql, metricSet);
    }
    const yaml = ['groups:', '  - name: dashboard', '    rules:'];
    for (const e of exprs) yaml.push(`      - record: dashboard:${e.id}`, `        expr: ${JSON.stringify(e.promql)}`);
    fs.writeFileSync(outPath, yaml.join('\n') + '\n');
    console.log(`${panels.filter((p) => p.type !== 'row').length} panels, ${queries} queries`);
  }
} else {
  problem(`unknown mode ${mode}`);
}
for (const p of problems) console.error(p);
process.exit(problems.length ? 1 : 0);
JS

check "rules: alerts have for, severity, summary, description, runbook_url; metric and label names" \
  "$NODE" "$tmp/check.js" rules "$rules"
check "docs/operations.md has a section for every alert's runbook_url" \
  "$NODE" "$tmp/check.js" runbooks "$rules" "$runbooks"
check "dashboard: JSON, datasource, targets, metric and label names" \
  "$NODE" "$tmp/check.js" dashboard "$dashboard" "$rules" "$tmp/dashboard.rules.yml"
if [[ -s "$tmp/dashboard.rules.yml" ]]; then
  check "dashboard: every expression parses (promtool check rules)" "$PROMTOOL" check rules "$tmp/dashboard.rules.yml"
fi

if ((${#failed[@]})); then
  echo "monitoring_test: ${#failed[@]} check(s) failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "monitoring_test: all checks passed"
