// SPDX-License-Identifier: MIT
// Validate rendered Kubernetes manifests offline (what `kubectl kustomize DIR` prints).
//
//   node validate.mjs [--bin DIR] [--refs] [--require-secrets] FILE.yaml...
//
// Every object of every YAML document is checked:
//  1. against the Kubernetes OpenAPI schema of its apiVersion/kind, with kubernetes-models'
//     generated class (.validate(): required fields, types, enums, formats);
//  2. for unknown fields, which the schemas accept: every key is walked against the type maps
//     (attributeTypeMap) of @kubernetes/client-node's models, so `readinesProbe:` fails;
//  objects of kinds that neither package knows (CRDs) are checked against the small field list
//  in CRD_TYPES below, or fail when there is none;
//  3. with --bin DIR: each container whose command is one of shoal's binaries is run from DIR
//     with its args and env (downward-API values replaced by samples, $(VAR) expanded as the
//     kubelet does) and --print-config appended, so a flag or value the binary refuses fails;
//  4. with --refs: references between the objects resolve (Service selectors, named ports,
//     serviceName, HPA and PDB targets, the nodes' --advertise and SHOAL_REDIS hosts (the
//     Sentinels' too, with a redis-sentinel:// URL: Service, port, StatefulSet pod), and with
//     --require-secrets the Secrets that volumes name).
// Exit 0 when all is well, 1 on any problem (each printed), 2 on bad usage.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import * as k8s from '@kubernetes/client-node';

const problems = [];
const notes = [];
const fail = (where, msg) => problems.push(`${where}: ${msg}`);

// ---- CRDs that are not in the schema: explicit field lists in client-node's notation. ----
const CRD_TYPES = {
  // monitoring.coreos.com/v1 ServiceMonitor (prometheus-operator), the fields we use and their
  // close neighbours.
  'monitoring.coreos.com/v1/ServiceMonitor': {
    apiVersion: 'string', kind: 'string', metadata: 'V1ObjectMeta', spec: 'SMSpec',
  },
  SMSpec: {
    jobLabel: 'string', targetLabels: 'Array<string>', podTargetLabels: 'Array<string>',
    selector: 'V1LabelSelector', namespaceSelector: 'SMNamespaceSelector',
    endpoints: 'Array<SMEndpoint>', sampleLimit: 'number',
  },
  SMNamespaceSelector: { any: 'boolean', matchNames: 'Array<string>' },
  SMEndpoint: {
    port: 'string', targetPort: 'IntOrString', path: 'string', scheme: 'string',
    interval: 'string', scrapeTimeout: 'string', honorLabels: 'boolean',
    honorTimestamps: 'boolean', relabelings: 'Array<any>', metricRelabelings: 'Array<any>',
    params: '{ [key: string]: Array<string>; }',
  },
};
const CRD_REQUIRED = {
  'monitoring.coreos.com/v1/ServiceMonitor': ['metadata.name', 'spec.selector', 'spec.endpoints'],
};

// ---- unknown-field walk ----
function attrsOf(type) {
  if (CRD_TYPES[type]) return new Map(Object.entries(CRD_TYPES[type]));
  const cls = k8s[type];
  if (!cls || typeof cls.getAttributeTypeMap !== 'function') return null;
  return new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
}

function distance(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                         d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
  return d[a.length][b.length];
}

const isPlain = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const PRIMITIVES = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString']);

// Types of primitive values are the schema validator's job (a quantity may be a number or a
// string); this walk rejects keys the type does not have and objects where lists belong.
function walk(value, type, where) {
  if (value === null || value === undefined || PRIMITIVES.has(type)) return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (!Array.isArray(value)) return fail(where, `expected a list (${type})`);
    value.forEach((v, i) => walk(v, m[1], `${where}[${i}]`));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (!isPlain(value)) return fail(where, `expected a map (${type})`);
    for (const [k, v] of Object.entries(value)) walk(v, m[1], `${where}.${k}`);
    return;
  }
  const attrs = attrsOf(type);
  if (!attrs) return fail(where, `no field list for type ${type} (validator bug)`);
  if (!isPlain(value)) return fail(where, `expected an object (${type})`);
  for (const [k, v] of Object.entries(value)) {
    if (!attrs.has(k)) {
      const near = [...attrs.keys()].filter((a) => distance(a, k) <= 2);
      fail(`${where}.${k}`, `unknown field "${k}" in ${type}` +
           (near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(', ')}?)` : ''));
      continue;
    }
    walk(v, attrs.get(k), `${where}.${k}`);
  }
}

// ---- schema validation ----
function splitApiVersion(apiVersion) {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : {
    group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

async function modelClass(apiVersion, kind) {
  const { group, version } = splitApiVersion(apiVersion);
  if (!/^[a-z0-9.]*$/.test(group) || !/^v[0-9a-z]+$/.test(version) || !/^[A-Za-z]+$/.test(kind))
    return null;
  try {
    const mod = await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`);
    return mod[kind] ?? null;
  } catch {
    return null;
  }
}

function clientType(apiVersion, kind) {
  const { version } = splitApiVersion(apiVersion);
  const name = `${version[0].toUpperCase()}${version.slice(1)}${kind}`;
  const attrs = attrsOf(name);
  return attrs && attrs.has('apiVersion') && attrs.has('kind') ? name : null;
}

function schemaErrors(e) {
  if (Array.isArray(e?.errors))
    return e.errors.map((x) => `${x.instancePath || '/'} ${x.message}` +
                               (x.params ? ` ${JSON.stringify(x.params)}` : ''));
  return [String(e?.message ?? e)];
}

function getPath(obj, dotted) {
  return dotted.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

async function checkObject(obj, where) {
  if (!isPlain(obj)) return fail(where, 'not a mapping');
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string')
    return fail(where, 'apiVersion and kind are required strings');
  const id = `${where} ${kind}/${obj.metadata?.name ?? '?'}`;
  const crd = `${apiVersion}/${kind}`;
  if (CRD_TYPES[crd]) {
    notes.push(`${id}: ${crd} is a CRD, not in the Kubernetes schema: checked against the ` +
               'field list in validate.mjs only');
    for (const req of CRD_REQUIRED[crd] ?? [])
      if (getPath(obj, req) === undefined) fail(id, `missing required field ${req}`);
    walk(obj, crd, id);
    return;
  }
  const Cls = await modelClass(apiVersion, kind);
  const typeName = clientType(apiVersion, kind);
  if (!Cls || !typeName)
    return fail(id, `${apiVersion} ${kind} is not a known Kubernetes type and has no field list`);
  // kustomize's secretGenerator wraps long base64 values over lines; the API server decodes them
  // with Go's encoding/base64, which ignores \r and \n, but the schema's "byte" format does not.
  let checked = obj;
  if (kind === 'Secret' && isPlain(obj.data))
    checked = { ...obj, data: Object.fromEntries(Object.entries(obj.data).map(
      ([k, v]) => [k, typeof v === 'string' ? v.replace(/[\r\n]/g, '') : v])) };
  try {
    new Cls(checked).validate();
  } catch (e) {
    for (const msg of schemaErrors(e)) fail(id, `schema: ${msg}`);
  }
  walk(obj, typeName, id);
}

// ---- the flags in the manifests, against the binaries ----
const POD_TEMPLATE_KINDS = {
  Deployment: (o) => o.spec?.template, StatefulSet: (o) => o.spec?.template,
  DaemonSet: (o) => o.spec?.template, ReplicaSet: (o) => o.spec?.template,
  Job: (o) => o.spec?.template, CronJob: (o) => o.spec?.jobTemplate?.spec?.template,
  Pod: (o) => o,
};
const SHOAL_BINARIES = new Set(['shoal', 'shoal-node', 'shoal-gateway']);

// The kubelet's $(VAR) expansion: defined names are replaced, $$ escapes, others stay as written.
function expand(s, env) {
  return String(s).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name) => {
    if (m === '$$') return '$';
    return Object.prototype.hasOwnProperty.call(env, name) ? env[name] : m;
  });
}

function sampleFieldRef(fieldPath, podName, namespace) {
  const samples = {
    'metadata.name': podName, 'metadata.namespace': namespace, 'metadata.uid': 'uid-sample',
    'spec.nodeName': 'worker-1', 'spec.serviceAccountName': 'default',
    'status.podIP': '10.0.0.10', 'status.hostIP': '192.0.2.1', 'status.podIPs': '10.0.0.10',
    'status.hostIPs': '192.0.2.1',
  };
  return samples[fieldPath] ?? `sample-${fieldPath}`;
}

function podNameOf(obj) {
  const n = obj.metadata?.name ?? 'pod';
  return obj.kind === 'StatefulSet' ? `${n}-0` : obj.kind === 'Pod' ? n : `${n}-5d8f7c9b4-x2k9q`;
}

function runConfig(bin, obj, c, where) {
  const namespace = obj.metadata?.namespace ?? 'default';
  const env = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = expand(e.value, env);
    else if (e.valueFrom?.fieldRef) env[e.name] = sampleFieldRef(e.valueFrom.fieldRef.fieldPath,
                                                                 podNameOf(obj), namespace);
    else if (e.valueFrom?.resourceFieldRef) env[e.name] = '1';
    else if (e.valueFrom) env[e.name] = 'sample';
    else env[e.name] = '';
  }
  if (c.envFrom?.length)
    notes.push(`${where}: envFrom values are not known offline; checked without them`);
  const argv = [...c.command.slice(1), ...(c.args ?? [])].map((a) => expand(a, env));
  const exe = path.join(bin, c.command[0]);
  // Only the manifest's environment (and PATH): nothing of the caller's SHOAL_* leaks in.
  const r = spawnSync(exe, [...argv, '--print-config'], {
    env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 30000 });
  if (r.error) return fail(where, `${exe}: ${r.error.message}`), null;
  if (r.status !== 0) {
    fail(where, `${c.command[0]} ${argv.join(' ')} --print-config: exit ${r.status}: ` +
                `${(r.stderr || '').trim()}`);
    return null;
  }
  const cfg = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^([a-z0-9-]+) = (.*)$/.exec(line);
    if (m) cfg[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  for (const [k, v] of Object.entries(cfg))
    if (v.includes('$(')) fail(where, `${k} = ${v}: a $(VAR) the container's env does not define`);
  // The binaries ignore SHOAL_* variables they do not know: a misspelt one would be silently
  // without effect, so each must name an option the binary printed.
  for (const name of Object.keys(env)) {
    if (!name.startsWith('SHOAL_')) continue;
    const key = name.slice(6).toLowerCase().replace(/_/g, '-');
    if (!(key in cfg) && key !== 'config' && key !== 'print-config')
      fail(where, `env ${name}: ${c.command[0]} has no option --${key}`);
  }
  return { cfg, namespace };
}

function checkFlags(objs, bin) {
  const configs = [];
  for (const { obj, where } of objs) {
    const tmpl = POD_TEMPLATE_KINDS[obj.kind]?.(obj);
    if (!tmpl) continue;
    const spec = tmpl.spec ?? {};
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const w = `${where} ${obj.kind}/${obj.metadata?.name} container ${c.name}`;
      const cmd = c.command?.[0];
      if (!SHOAL_BINARIES.has(cmd)) {
        notes.push(`${w}: command ${JSON.stringify(c.command ?? '(image default)')} is not a ` +
                   'shoal binary: flags not checked');
        continue;
      }
      const r = runConfig(bin, obj, c, w);
      if (r) configs.push({ obj, container: c, where: w, ...r });
    }
  }
  return configs;
}

// ---- references between the objects ----
const matches = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

function labelSelectorMatches(sel, labels) {
  if (!sel) return false;
  if (!matches(sel.matchLabels, labels)) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels ?? {}, e.key);
    const v = labels?.[e.key];
    if (e.operator === 'In' && !(has && e.values.includes(v))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(v)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function checkRefs(objs, configs, requireSecrets) {
  const ns = (o) => o.metadata?.namespace ?? '';
  const all = objs.map((x) => x.obj);
  const find = (kind, name, namespace) =>
    all.find((o) => o.kind === kind && o.metadata?.name === name && ns(o) === namespace);
  const workloads = all.filter((o) => POD_TEMPLATE_KINDS[o.kind]?.(o) && o.kind !== 'Pod');
  const templateOf = (o) => POD_TEMPLATE_KINDS[o.kind](o);
  const portsOf = (t) => (t.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
  for (const { obj: o, where } of objs) {
    const id = `${where} ${o.kind}/${o.metadata?.name}`;
    if (o.kind === 'Service' && o.spec?.selector) {
      const targets = workloads.filter((w) => ns(w) === ns(o) &&
                                              matches(o.spec.selector, templateOf(w).metadata?.labels));
      if (!targets.length) fail(id, 'its selector matches no pod template');
      for (const p of o.spec.ports ?? []) {
        if (typeof p.targetPort !== 'string') continue;
        for (const w of targets)
          if (!portsOf(templateOf(w)).some((cp) => cp.name === p.targetPort &&
                                                  (cp.protocol ?? 'TCP') === (p.protocol ?? 'TCP')))
            fail(id, `targetPort ${p.targetPort}/${p.protocol ?? 'TCP'} is not a port of ` +
                     `${w.kind}/${w.metadata.name}`);
      }
    }
    if (o.kind === 'StatefulSet') {
      const svc = find('Service', o.spec?.serviceName, ns(o));
      if (!svc) fail(id, `serviceName ${o.spec?.serviceName} is not a Service here`);
      else if (svc.spec?.clusterIP !== 'None') fail(id, `Service ${svc.metadata.name} is not headless`);
    }
    if (o.kind === 'HorizontalPodAutoscaler') {
      const t = o.spec?.scaleTargetRef;
      if (!find(t?.kind, t?.name, ns(o))) fail(id, `scaleTargetRef ${t?.kind}/${t?.name} is not here`);
    }
    if (o.kind === 'PodDisruptionBudget' &&
        !workloads.some((w) => ns(w) === ns(o) &&
                               labelSelectorMatches(o.spec?.selector, templateOf(w).metadata?.labels)))
      fail(id, 'its selector matches no pod template');
    const tmpl = POD_TEMPLATE_KINDS[o.kind]?.(o);
    if (!tmpl) continue;
    for (const c of tmpl.spec?.containers ?? [])
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
        if (typeof port === 'string' && !(c.ports ?? []).some((p) => p.name === port))
          fail(`${id} container ${c.name}`, `${probe} names port ${port}, which it does not have`);
      }
    for (const v of tmpl.spec?.volumes ?? []) {
      if (!v.secret) continue;
      if (find('Secret', v.secret.secretName, ns(o))) continue;
      if (requireSecrets) fail(id, `volume ${v.name}: Secret ${v.secret.secretName} is not here`);
      else notes.push(`${id}: volume ${v.name} names Secret ${v.secret.secretName}, which an ` +
                      'overlay provides');
    }
  }
  for (const { obj, cfg, namespace, where } of configs) {
    const redis = cfg.redis && /^rediss?:\/\/(?:[^@/]*@)?([^:/]+)/.exec(cfg.redis);
    if (redis) {
      const [svc, svcNs = namespace] = redis[1].split('.');
      if (!find('Service', svc, svcNs === namespace ? ns(obj) : svcNs))
        fail(where, `--redis ${cfg.redis}: no Service ${svc} in the manifests`);
    }
    // redis-sentinel://HOST[:PORT],.../NAME: each HOST a Service here (SERVICE[.NAMESPACE]) or a
    // pod of a StatefulSet under its headless Service (POD.SERVICE[.NAMESPACE]), PORT (default
    // 26379) one of that Service's ports.
    const sentinels = cfg.redis && /^redis-sentinel:\/\/(?:[^@/]*@)?([^/]+)\/[^/]+/.exec(cfg.redis);
    if (cfg.redis?.startsWith('redis-sentinel:') && !sentinels)
      fail(where, `--redis ${cfg.redis}: not redis-sentinel://HOST[:PORT],.../MASTERNAME`);
    for (const hp of sentinels ? sentinels[1].split(',') : []) {
      const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(hp);
      if (!m) {
        fail(where, `--redis: cannot read the Sentinel address ${hp}`);
        continue;
      }
      const port = Number(m[2] ?? 26379);
      const labels = m[1].split('.');
      const nsOf = (n) => (n === undefined || n === namespace ? ns(obj) : n);
      const podForm = labels.length > 1 && find('Service', labels[1], nsOf(labels[2]));
      const [svcName, svcNs] = podForm ? [labels[1], labels[2]] : [labels[0], labels[1]];
      const svc = find('Service', svcName, nsOf(svcNs));
      if (!svc) {
        fail(where, `--redis: Sentinel ${hp}: no Service ${svcName} in the manifests`);
        continue;
      }
      if (!(svc.spec?.ports ?? []).some((p) => p.port === port))
        fail(where, `--redis: Sentinel ${hp}: Service ${svcName} has no port ${port}`);
      if (podForm) {
        const sts = all.find((o) => o.kind === 'StatefulSet' && ns(o) === nsOf(svcNs) &&
                                    o.spec?.serviceName === svcName &&
                                    new RegExp(`^${o.metadata.name}-(\\d+)$`).test(labels[0]));
        const ord = sts ? Number(labels[0].slice(sts.metadata.name.length + 1)) : -1;
        if (!sts || ord >= (sts.spec?.replicas ?? 1))
          fail(where, `--redis: Sentinel ${hp}: ${labels[0]} is not a pod of a StatefulSet ` +
                      `under Service ${svcName}` +
                      (sts ? ` (${sts.spec?.replicas ?? 1} replicas)` : ''));
      }
    }
    if (cfg.advertise && obj.kind === 'StatefulSet') {
      const host = /^tcp:\/\/([^:/]+)/.exec(cfg.advertise)?.[1] ?? '';
      const [pod, svc, svcNs] = host.split('.');
      if (pod !== podNameOf(obj) || svc !== obj.spec?.serviceName || svcNs !== namespace)
        fail(where, `--advertise ${cfg.advertise} is not the pod's name under the headless ` +
                    `Service (${podNameOf(obj)}.${obj.spec?.serviceName}.${namespace}...)`);
    }
    if (obj.kind === 'StatefulSet' && cfg.id !== undefined && cfg.id !== podNameOf(obj))
      fail(where, `--id is ${cfg.id}, not the pod name ${podNameOf(obj)}`);
  }
}

// ---- main ----
async function main() {
  const args = process.argv.slice(2);
  let bin = null;
  let refs = false;
  let requireSecrets = false;
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--bin') bin = args[++i];
    else if (args[i] === '--refs') refs = true;
    else if (args[i] === '--require-secrets') requireSecrets = true;
    else if (args[i].startsWith('-')) {
      console.error(`usage: node validate.mjs [--bin DIR] [--refs] [--require-secrets] FILE...`);
      return 2;
    } else files.push(args[i]);
  }
  if (!files.length) {
    console.error('no files given');
    return 2;
  }
  const objs = [];
  for (const f of files) {
    let docs;
    try {
      docs = yaml.loadAll(readFileSync(f, 'utf8'));
    } catch (e) {
      fail(f, `YAML: ${e.message}`);
      continue;
    }
    docs.forEach((d, i) => { if (d != null) objs.push({ obj: d, where: `${path.basename(f)}#${i}` }); });
  }
  for (const { obj, where } of objs) await checkObject(obj, where);
  const configs = bin ? checkFlags(objs, bin) : [];
  if (refs) checkRefs(objs, configs, requireSecrets);
  for (const n of notes) console.log(`note: ${n}`);
  for (const p of problems) console.log(`FAIL: ${p}`);
  console.log(`${objs.length} objects in ${files.length} file(s)` +
              (bin ? `, ${configs.length} shoal containers run with --print-config` : '') +
              `: ${problems.length} problem(s)`);
  return problems.length ? 1 : 0;
}

process.exitCode = await main();
