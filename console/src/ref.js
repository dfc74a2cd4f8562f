// Reference data and the cluster list, read once per session and shared by every page.
import { get, listAll } from './api.js';
import { L, localName } from './i18n.js';

let refPromise = null;
let clustersPromise = null;

export function referenceData() {
  if (!refPromise) refPromise = get('referenceData').catch((e) => ((refPromise = null), Promise.reject(e)));
  return refPromise;
}

export function clusterList() {
  if (!clustersPromise) {
    clustersPromise = listAll('clusters', 'clusters').catch((e) => ((clustersPromise = null), Promise.reject(e)));
  }
  return clustersPromise;
}

export function forgetCaches() {
  refPromise = null;
  clustersPromise = null;
}

export function regionName(ref, code) {
  const r = ref && (ref.regions || []).find((x) => x.code === code);
  return r ? localName(r) : code;
}

export function departmentName(ref, code) {
  const d = ref && (ref.departments || []).find((x) => x.code === code);
  return d ? localName(d) : code;
}

export function clusterName(clusters, name) {
  const c = (clusters || []).find((x) => x.name === name);
  return c ? localName(c) : name;
}

// <select> options for the 12 leagues, with an empty choice first unless `required`.
export function regionOptions(ref, { required = false } = {}) {
  const options = ((ref && ref.regions) || []).map((r) => ({ value: r.code, label: localName(r) }));
  return required ? options : [{ value: '', label: L('请选择盟市', 'Choose a region') }, ...options];
}

// <select> options for clusters (the names given, or every cluster), with an empty choice first.
export function clusterOptions(clusters, names) {
  const list = names ? names.map((n) => ({ value: n, label: clusterName(clusters, n) })) : clusters.map((c) => ({ value: c.name, label: localName(c) }));
  return [{ value: '', label: L('请选择集群', 'Choose a cluster') }, ...list];
}

export const CURRENT_YEAR = new Date().getFullYear();
