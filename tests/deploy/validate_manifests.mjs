#!/usr/bin/env node
// Validates rendered kustomize output (deploy/k8s): every object against the Kubernetes schemas
// (kubernetes-models, offline) and against the semantic checks of lib/checks.mjs, which include
// the clustergov binaries' real flags. Run by manifests_test.sh, which renders the directories.
//
//   node validate_manifests.mjs --modules <node_modules> --build-dir <build> --k8s-root <deploy/k8s>
//        [--source-root <repo>] [--self-test] [--require base,overlays/dev,overlays/prod] --render <dir> <file> ...
//
// --source-root: the repository, to tell which flags a binary reads (lib/flags.mjs flagsReadBy).
// --render: a kustomize directory (relative to --k8s-root) and the file `kubectl kustomize` wrote.
// An optional <dir>/external-secrets.txt lists Secrets created out of band (one name a line).
// --self-test: instead of reporting, breaks copies of each render in known ways (lib/mutations.mjs)
// and fails unless every break is reported.
// Exit status: 0 when nothing failed, 1 otherwise, 2 on bad usage.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaValidator, schemaSelfCheck, importPackage } from './lib/schema.mjs';
import { BinaryCatalog } from './lib/flags.mjs';
import { Index, idOf, workloadsOf, deepCopy } from './lib/k8s.mjs';
import { runChecks } from './lib/checks.mjs';
import { MUTATIONS } from './lib/mutations.mjs';

function parseArgs(argv) {
  const options = { renders: [], selfTest: false, require: ['base', 'overlays/dev', 'overlays/prod'] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--modules') options.modules = argv[++i];
    else if (arg === '--build-dir') options.buildDir = argv[++i];
    else if (arg === '--k8s-root') options.root = argv[++i];
    else if (arg === '--source-root') options.sourceRoot = argv[++i];
    else if (arg === '--self-test') options.selfTest = true;
    else if (arg === '--require') options.require = argv[++i].split(',').filter(Boolean);
    else if (arg === '--render') options.renders.push({ name: argv[++i], file: argv[++i] });
    else usage(`unknown argument ${arg}`);
  }
  if (!options.modules || !options.buildDir || !options.root)
    usage('--modules, --build-dir and --k8s-root are required');
  if (options.renders.some((r) => !r.name || !r.file)) usage('--render takes a directory and a file');
  return options;
}

function usage(message) {
  console.error(`validate_manifests: ${message}`);
  process.exit(2);
}

// ------------------------------------------------------------------ loading

function readExternalSecrets(file) {
  if (!existsSync(file)) return new Set();
  return new Set(
    readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean),
  );
}

function loadRender(YAML, root, { name, file }) {
  const documents = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
  const errors = documents.flatMap((d) => d.errors.map((e) => e.message));
  const objects = documents.map((d) => d.toJS()).filter((o) => o && typeof o === 'object');
  const externalSecretsFile = join(root, name, 'external-secrets.txt');
  return {
    name,
    file,
    objects,
    errors,
    externalSecretsFile,
    externalSecrets: readExternalSecrets(externalSecretsFile),
  };
}

// ------------------------------------------------------------------ checking

// What each render's services must run on (lib/checks.mjs checkStore): PostgreSQL everywhere,
// held by the render itself (database 'here': dev brings its own) or reached outside it
// ('outside': production's); the base leaves the place to the overlays.
const SERVICE_STORES = {
  base: { postgres: true },
  'overlays/dev': { postgres: true, database: 'here' },
  'overlays/prod': { postgres: true, database: 'outside' },
};

// The semantic contexts of a render: a render with workloads is checked on its own; one without
// (monitoring/) is checked together with each render that has them, since it refers to them.
function contextsOf(render, renders) {
  if (workloadsOf(render.objects).length > 0 || !renders.some((r) => workloadsOf(r.objects).length > 0)) {
    return [
      {
        label: render.name,
        objects: render.objects,
        index: new Index(render.objects),
        externalSecrets: render.externalSecrets,
        externalSecretsFile: render.externalSecretsFile,
        store: SERVICE_STORES[render.name],
      },
    ];
  }
  return renders
    .filter((r) => workloadsOf(r.objects).length > 0)
    .map((app) => ({
      label: `${render.name} with ${app.name}`,
      objects: render.objects,
      index: new Index([...app.objects, ...render.objects]),
      externalSecrets: new Set([...app.externalSecrets, ...render.externalSecrets]),
      externalSecretsFile: render.externalSecretsFile,
    }));
}

// Every failure of a render (schema and semantic) as strings "<context>: <Kind/name>: <reason>".
async function failuresOf(render, renders, tools) {
  const failures = render.errors.map((e) => `${render.name}: YAML: ${e}`);
  for (const obj of render.objects) {
    for (const error of await tools.schema.validate(obj))
      failures.push(`${render.name}: ${idOf(obj)}: schema: ${error}`);
  }
  for (const context of contextsOf(render, renders)) {
    const seen = new Set();
    const report = (obj, message) => {
      const line = `${context.label}: ${idOf(obj)}: ${message}`;
      if (!seen.has(line)) failures.push(line);
      seen.add(line);
    };
    runChecks({ ...context, binaries: tools.binaries, report });
  }
  return failures;
}

async function validate(renders, options, tools) {
  let total = 0;
  const present = new Set(renders.map((r) => r.name));
  for (const name of options.require.filter((n) => !present.has(n))) {
    const exists = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].some((f) =>
      existsSync(join(options.root, name, f)),
    );
    console.log(
      `FAIL ${name}: ${exists ? 'not rendered (kubectl kustomize failed, or it was not passed with --render)' : `no kustomization in ${join(options.root, name)}`}`,
    );
    total++;
  }
  for (const render of renders) {
    const failures = await failuresOf(render, renders, tools);
    console.log(`== ${render.name}: ${render.objects.length} objects, ${failures.length} failure(s)`);
    for (const failure of failures) console.log(`FAIL ${failure}`);
    total += failures.length;
  }
  const objects = renders.reduce((sum, r) => sum + r.objects.length, 0);
  console.log(`validate_manifests: ${renders.length} render(s), ${objects} objects, ${total} failure(s)`);
  return total === 0;
}

// ------------------------------------------------------------------ self-test

async function selfTest(renders, tools) {
  let passed = 0;
  let failed = 0;
  const hasWorkloads = (r) => workloadsOf(r.objects).length > 0;
  if (!renders.some(hasWorkloads)) {
    console.log('FAIL self-test: no render has workloads to mutate');
    failed++;
  }
  for (const render of renders) {
    const baseline = new Set(await failuresOf(render, renders, tools));
    const notApplicable = [];
    for (const mutation of MUTATIONS) {
      const objects = deepCopy(render.objects);
      const target = mutation.apply(objects);
      if (target === null) {
        if (mutation.required && hasWorkloads(render)) {
          console.log(`FAIL ${render.name}: cannot ${mutation.name}: the render has nothing to break that way`);
          failed++;
        } else {
          notApplicable.push(mutation.name);
        }
        continue;
      }
      const mutated = { ...render, objects };
      const fresh = (
        await failuresOf(
          mutated,
          renders.map((r) => (r === render ? mutated : r)),
          tools,
        )
      ).filter((f) => !baseline.has(f));
      if (fresh.some((f) => mutation.expect.test(f))) {
        console.log(`ok   ${render.name}: ${mutation.name} (${target}) is reported`);
        passed++;
      } else {
        console.log(
          `FAIL ${render.name}: ${mutation.name} (${target}) was not reported; new failures: ${fresh.length ? '\n       ' + fresh.join('\n       ') : 'none'}`,
        );
        failed++;
      }
    }
    if (notApplicable.length)
      console.log(
        `n/a  ${render.name}: nothing to break for ${notApplicable.length} mutation(s): ${notApplicable.join('; ')}`,
      );
  }
  console.log(`self-test: ${passed} passed, ${failed} failed`);
  return failed === 0;
}

// ------------------------------------------------------------------ main

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const yamlModule = await importPackage(options.modules, 'yaml');
  const YAML = yamlModule.default ?? yamlModule;
  const tools = {
    schema: new SchemaValidator(options.modules),
    binaries: new BinaryCatalog(options.buildDir, options.sourceRoot),
  };

  const check = await schemaSelfCheck(tools.schema);
  if (check.problems.length) {
    console.log(`FAIL schema self-check: the validator lets broken objects through: ${check.problems.join('; ')}`);
    process.exit(1);
  }
  console.log(`schema self-check: a broken Deployment is refused (${check.errors.join('; ')})`);

  const renders = options.renders.map((r) => loadRender(YAML, options.root, r));
  const ok = options.selfTest ? await selfTest(renders, tools) : await validate(renders, options, tools);
  process.exit(ok ? 0 : 1);
}

await main();
