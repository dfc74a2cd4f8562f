// Offline schema validation with kubernetes-models: the model class of an object is found from
// its apiVersion and kind in the packages' export maps, so a kind no package knows is reported
// ("no schema for ...") instead of being skipped.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// Packages holding models, tried in order; each exports one module per API group version
// ("./apps/v1", "./v1", "./monitoring.coreos.com/v1", ...).
const MODEL_PACKAGES = ['kubernetes-models', '@kubernetes-models/prometheus-operator'];

// Imports an npm package installed in `modulesDir` through its export map (the packages are ESM
// only and live outside this script's directory, so bare specifiers would not resolve here).
export async function importPackage(modulesDir, pkg, subpath = '.') {
  const pkgDir = join(modulesDir, pkg);
  const manifestFile = join(pkgDir, 'package.json');
  if (!existsSync(manifestFile)) throw new Error(`npm package ${pkg} is not installed in ${modulesDir}`);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  const target = exportTarget(manifest, subpath);
  if (!target) return null;
  return import(pathToFileURL(join(pkgDir, target)).href);
}

function exportTarget(manifest, subpath) {
  if (!manifest.exports) return subpath === '.' ? (manifest.main ?? 'index.js') : null;
  const entry = manifest.exports[subpath];
  return entry === undefined ? null : pickCondition(entry);
}

function pickCondition(entry) {
  if (typeof entry === 'string') return entry;
  for (const condition of ['import', 'node', 'default']) {
    if (entry?.[condition] !== undefined) return pickCondition(entry[condition]);
  }
  return null;
}

export class SchemaValidator {
  constructor(modulesDir) {
    this.modulesDir = modulesDir;
    this.groups = new Map(); // apiVersion -> [module namespaces]
  }

  async modelFor(apiVersion, kind) {
    if (!apiVersion || !kind) return null;
    if (!this.groups.has(apiVersion)) {
      const modules = [];
      for (const pkg of MODEL_PACKAGES) {
        const mod = await importPackage(this.modulesDir, pkg, `./${apiVersion}`);
        if (mod) modules.push(mod);
      }
      this.groups.set(apiVersion, modules);
    }
    for (const mod of this.groups.get(apiVersion)) {
      const Model = mod[kind];
      if (typeof Model === 'function' && Model.kind === kind && Model.apiVersion === apiVersion) return Model;
    }
    return null;
  }

  // Schema errors of one object as readable strings ("/spec/replicas: must be integer").
  async validate(obj) {
    const Model = await this.modelFor(obj?.apiVersion, obj?.kind);
    if (!Model) return [`no schema for apiVersion ${obj?.apiVersion} kind ${obj?.kind}`];
    try {
      new Model(unwrapBase64(obj)).validate();
      return [];
    } catch (error) {
      if (!Array.isArray(error.errors)) return [`validation failed: ${error.message}`];
      return error.errors.map(describeSchemaError);
    }
  }
}

// Secret data and ConfigMap binaryData without line breaks: kustomize wraps long base64 values,
// and the API server's decoding (Go's encoding/base64) skips them; the schema's "byte" format
// does not.
function unwrapBase64(obj) {
  const field = obj?.kind === 'Secret' ? 'data' : obj?.kind === 'ConfigMap' ? 'binaryData' : null;
  if (!field || !obj[field] || typeof obj[field] !== 'object') return obj;
  const unwrapped = Object.fromEntries(
    Object.entries(obj[field]).map(([key, value]) => [
      key,
      typeof value === 'string' ? value.replace(/[\r\n]/g, '') : value,
    ]),
  );
  return { ...obj, [field]: unwrapped };
}

function describeSchemaError({ instancePath, message, keyword, params }) {
  const path = instancePath || '/';
  const extra =
    keyword === 'enum'
      ? ` (allowed: ${params.allowedValues.join(', ')})`
      : keyword === 'additionalProperties'
        ? ` (${params.additionalProperty})`
        : '';
  return `${path}: ${message ?? keyword}${extra}`;
}

// A Deployment with two schema errors: the validator must find both, or it validates nothing.
export async function schemaSelfCheck(validator) {
  const broken = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'self-check' },
    spec: {
      replicas: 'two',
      selector: { matchLabels: { app: 'x' } },
      template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ image: 'x' }] } },
    },
  };
  const errors = await validator.validate(broken);
  const problems = [];
  if (!errors.some((e) => e.startsWith('/spec/replicas:'))) problems.push('replicas: "two" was accepted');
  if (!errors.some((e) => e.includes('/containers/0') && e.includes('name')))
    problems.push('a container without a name was accepted');
  const unknown = await validator.validate({ apiVersion: 'example.com/v1', kind: 'Nothing', metadata: { name: 'x' } });
  if (!unknown[0]?.startsWith('no schema')) problems.push('an unknown kind was not reported');
  return { errors, problems };
}
