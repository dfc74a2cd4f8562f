// The clustergov binaries' own flags, read from the build: `<binary> --helpfull` (Abseil) lists
// every flag with its default, and `<binary> <args> --only_check_args` parses a command line and
// the CLUSTERGOV_* environment exactly as the pod would, then exits (0: accepted).
//
// Every service and the gateway parse flags with common/server/flags.cc ParseFlags: each flag
// <name> may also be set by the environment variable CLUSTERGOV_<NAME uppercased>; the command
// line wins over the environment.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export const ENV_PREFIX = 'CLUSTERGOV_';

export function envNameOfFlag(flag) {
  return ENV_PREFIX + flag.toUpperCase();
}

export function flagOfEnvName(name) {
  return name.startsWith(ENV_PREFIX) ? name.slice(ENV_PREFIX.length).toLowerCase() : null;
}

// `--helpfull` prints each flag as "    --name (help...); default: value;" (4 spaces; wrapped
// help lines are indented further, so they are not taken for flags).
export function parseHelpfull(text) {
  const flags = new Map();
  const lines = text.split('\n');
  let group = '';
  for (let i = 0; i < lines.length; i++) {
    group = /^ {2}Flags from (.*):$/.exec(lines[i])?.[1] ?? group;
    const match = /^ {4}--([A-Za-z0-9_]+) \(/.exec(lines[i]);
    if (!match) continue;
    let entry = lines[i];
    while (i + 1 < lines.length && /^ {6}\S/.test(lines[i + 1])) entry += ' ' + lines[++i].trim();
    const def = /; default: (.*);$/.exec(entry)?.[1];
    flags.set(match[1], {
      default: def === undefined ? undefined : unquote(def),
      bool: def === 'true' || def === 'false',
      group,
    });
  }
  return flags;
}

function unquote(value) {
  return value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

// "--a=1", "--b", "2", "-c=3", "--nobool": [{name, value, raw}]. A flag without "=" takes the next
// argument as its value unless it is a boolean (Abseil's rules); "--" ends the flags.
export function parseFlagArgs(args, flags) {
  const parsed = [];
  for (let i = 0; i < args.length; i++) {
    const raw = String(args[i]);
    if (raw === '--') break;
    const match = /^--?([A-Za-z][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(raw);
    if (!match) continue;
    let [, name, value] = match;
    if (value === undefined) {
      const known = flags?.get(name);
      if (known && !known.bool && i + 1 < args.length) value = String(args[++i]);
      else if (known?.bool) value = 'true';
      else if (name.startsWith('no') && flags?.get(name.slice(2))?.bool) [name, value] = [name.slice(2), 'false'];
    }
    parsed.push({ name, value, raw });
  }
  return parsed;
}

export function isKnownFlag(flags, name) {
  return flags.has(name) || (name.startsWith('no') && Boolean(flags.get(name.slice(2))?.bool));
}

// Kubernetes expands $(VAR) in command and args from the container's environment.
export function expandVars(text, env) {
  return String(text).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name) => env.get(name) ?? whole);
}

// The flags a binary reads, from its source (services/<svc>/main.cc): all of them when it calls
// CommonConfigFromFlags (which reads every flag of common/server/flags.cc); otherwise (the
// gateway) the flags defined outside common/server/flags.cc plus those its main.cc declares with
// ABSL_DECLARE_FLAG. null: read all (no source to tell otherwise).
export function flagsReadBy(sourceRoot, name, flags) {
  const main = sourceRoot && join(sourceRoot, 'services', name.replace(/^clustergov-/, ''), 'main.cc');
  if (!main || !existsSync(main)) return null;
  const text = readFileSync(main, 'utf8');
  if (text.includes('CommonConfigFromFlags')) return null;
  const declared = [...text.matchAll(/ABSL_DECLARE_FLAG\([^,]+,\s*(\w+)\)/g)].map((m) => m[1]);
  const own = [...flags].filter(([, f]) => !f.group.endsWith('common/server/flags.cc')).map(([n]) => n);
  return new Set([...own, ...declared]);
}

// The build's binaries, found by the basename a container's command names.
export class BinaryCatalog {
  constructor(buildDir, sourceRoot) {
    this.buildDir = buildDir;
    this.sourceRoot = sourceRoot;
    this.cache = new Map();
  }

  // services/<svc>/clustergov-<svc> first (the layout CMake gives), then any build/*/ or
  // build/*/*/ file of that name (e.g. common/clustergov-token).
  locate(name) {
    const service = name.replace(/^clustergov-/, '');
    const direct = join(this.buildDir, 'services', service, name);
    if (existsSync(direct)) return direct;
    for (const dir of [this.buildDir, ...subdirs(this.buildDir), ...subdirs(this.buildDir).flatMap(subdirs)]) {
      const candidate = join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
    return null;
  }

  // {name, path, flags} or {name, error}.
  binary(command) {
    const name = basename(String(command));
    if (!this.cache.has(name)) this.cache.set(name, this.load(name));
    return this.cache.get(name);
  }

  load(name) {
    const path = this.locate(name);
    if (!path) return { name, error: `binary ${name} is not in the build directory ${this.buildDir} (build it first)` };
    const run = spawnSync(path, ['--helpfull'], { encoding: 'utf8', timeout: 20000, env: {} });
    const flags = parseHelpfull(`${run.stdout ?? ''}\n${run.stderr ?? ''}`);
    if (flags.size === 0)
      return {
        name,
        path,
        error: `${path} --helpfull listed no flags (${run.error?.message ?? `exit ${run.status}`})`,
      };
    const read = flagsReadBy(this.sourceRoot, name, flags);
    return { name, path, flags, reads: (flag) => read === null || read.has(flag) };
  }

  // Runs the binary on a container's arguments and environment with --only_check_args: null when
  // it accepts them, else what it printed.
  checkCommandLine(binary, args, env) {
    const childEnv = Object.fromEntries(env);
    if (process.env.LD_LIBRARY_PATH) childEnv.LD_LIBRARY_PATH = process.env.LD_LIBRARY_PATH;
    const run = spawnSync(binary.path, [...args, '--only_check_args'], {
      encoding: 'utf8',
      timeout: 20000,
      env: childEnv,
    });
    if (run.status === 0) return null;
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim().replace(/\s+/g, ' ');
    return output || run.error?.message || `exit ${run.status ?? run.signal}`;
  }
}

function subdirs(dir) {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter(
        (e) =>
          e.isDirectory() &&
          e.name !== 'CMakeFiles' &&
          !e.name.startsWith('.') &&
          e.name !== 'node_modules' &&
          e.name !== 'deploy-validator',
      )
      .map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

// ------------------------------------------------------------------ addresses in flag values

// Flags whose value names other services: --redis, --*_addr, and the gateway's --backend
// ("<package.Service>=host:port[,host:port]", entries separated by ';', ',' or whitespace).
export function isAddressFlag(name) {
  return name === 'redis' || name === 'backend' || name.endsWith('_addr');
}

export function addressesOf(flag, value) {
  const tokens = flag === 'backend' ? value.split(/[,;\s]+/).filter(Boolean) : [value];
  return tokens.map((t) => parseAddress(flag === 'backend' ? t.replace(/^[^=]*=/, '') : t)).filter(Boolean);
}

// "dns:///clusters:50051", "dns://8.8.8.8/clusters:50051", "redis:6379" -> {host, port}.
function parseAddress(text) {
  let rest = text.trim();
  if (/^(ipv4|ipv6|unix|unix-abstract|vsock):/.test(rest)) return null;
  rest = rest.replace(/^dns:(\/\/[^/]*\/)?/, '');
  const match = /^([^:/]+):(\d+)$/.exec(rest);
  return match ? { host: match[1], port: Number(match[2]), text } : { host: rest, port: NaN, text };
}

export function isIpAddress(host) {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(':') || host === 'localhost';
}
