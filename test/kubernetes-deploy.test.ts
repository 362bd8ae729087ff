/**
 * deploy/kubernetes/: every manifest validates against the Kubernetes schemas (kubernetes-models;
 * ServiceMonitor and PrometheusRule against the prometheus-operator CRD schemas of
 * @kubernetes-models/prometheus-operator), and, since those schemas let unknown fields through,
 * against the same models' TypeScript types with excess-property checks (a misspelt field fails).
 * Then what the manifests promise: least privilege, the socket mount, the per-process variant, the
 * PrometheusRule generated from prometheus/alerts.yml, and the Dockerfile's shape.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { PACKAGE_ROOT } from '../src/paths.js';
import { DEFAULT_POD_RESOURCES_SOCKET } from '../src/kubernetes/podresources.js';
// @ts-expect-error: a plain .mjs script without types
import { renderPrometheusRule, SOURCE, TARGET } from '../scripts/gen-prometheusrule.mjs';

const DIR = path.join(PACKAGE_ROOT, 'deploy', 'kubernetes');
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function docsOf(file: string): Doc[] {
  return YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJSON() as Doc;
  });
}
const manifests = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) => docsOf(path.join(DIR, f)).map((doc) => ({ file: f, doc })));
const byKind = (kind: string) => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
const daemonSet = byKind('DaemonSet')[0];
const container = daemonSet.spec.template.spec.containers[0];

const MODELS: Record<string, { model: new (d: any) => { validate(): void }; type: [string, string] }> = { // eslint-disable-line @typescript-eslint/no-explicit-any
  'v1/Namespace': { model: Namespace, type: ['kubernetes-models/v1/Namespace', 'INamespace'] },
  'v1/ServiceAccount': { model: ServiceAccount, type: ['kubernetes-models/v1/ServiceAccount', 'IServiceAccount'] },
  'v1/Service': { model: Service, type: ['kubernetes-models/v1/Service', 'IService'] },
  'apps/v1/DaemonSet': { model: DaemonSet, type: ['kubernetes-models/apps/v1/DaemonSet', 'IDaemonSet'] },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    model: ServiceMonitor,
    type: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'],
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    model: PrometheusRule,
    type: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'IPrometheusRule'],
  },
};

/** The strategic merge kustomize applies for our patch: maps merge, containers merge by name, other lists are replaced. */
function strategicMerge(base: unknown, patch: unknown, key = ''): unknown {
  if (Array.isArray(base) && Array.isArray(patch) && key === 'containers') {
    const out = base.map((c: Doc) => {
      const p = patch.find((x: Doc) => x.name === c.name);
      return p ? strategicMerge(c, p) : c;
    });
    return [...out, ...patch.filter((p: Doc) => !base.some((c: Doc) => c.name === p.name))];
  }
  if (base && patch && typeof base === 'object' && typeof patch === 'object' && !Array.isArray(base) && !Array.isArray(patch)) {
    const out: Doc = { ...(base as Doc) };
    for (const [k, v] of Object.entries(patch as Doc)) out[k] = k in out ? strategicMerge(out[k], v, k) : v;
    return out;
  }
  return patch;
}
const perProcess = strategicMerge(daemonSet, docsOf(path.join(DIR, 'per-process', 'hostpid.yaml'))[0]) as Doc;

describe('the manifests validate', () => {
  it('has each kind once', () => {
    expect(manifests.map((m) => m.doc.kind).sort()).toEqual(['DaemonSet', 'Namespace', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor']);
  });

  it.each(manifests.map((m) => [`${m.file}: ${m.doc.kind}`, m.doc] as const))('%s against its schema', (_name, doc) => {
    const entry = MODELS[`${doc.apiVersion}/${doc.kind}`];
    expect(entry, `${doc.apiVersion} ${doc.kind}`).toBeDefined();
    expect(() => new entry.model(doc).validate()).not.toThrow();
  });

  it('the per-process variant (base + patch) validates too', () => {
    expect(() => new DaemonSet(perProcess).validate()).not.toThrow();
  });

  it('a schema violation is caught (the check is not vacuous)', () => {
    const broken = structuredClone(daemonSet);
    broken.spec.template.spec.hostPID = 'yes';
    expect(() => new DaemonSet(broken).validate()).toThrow(/hostPID/);
  });

  it('no unknown (misspelt) fields: the models\' types with excess-property checks (tsc)', () => {
    const dir = path.join(PACKAGE_ROOT, 'tmp');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `kube-manifest-types-${process.pid}.ts`);
    const all = [...manifests.map((m) => ({ name: m.file, doc: m.doc })), { name: 'per-process', doc: perProcess }];
    const lines: string[] = [];
    for (const [i, { doc }] of all.entries()) {
      const [from, type] = MODELS[`${doc.apiVersion}/${doc.kind}`].type;
      lines.push(`import type { ${type} as T${i} } from '${from}';`);
      lines.push(`export const m${i}: T${i} = ${JSON.stringify(doc)};`);
    }
    // and one misspelt field, which must be reported
    lines.push(`import type { IDaemonSet as TBad } from 'kubernetes-models/apps/v1/DaemonSet';`);
    const bad = structuredClone(daemonSet);
    bad.spec.template.spec.containers[0].imagee = bad.spec.template.spec.containers[0].image;
    lines.push(`export const bad: TBad = ${JSON.stringify(bad)};`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    let out = '';
    try {
      execFileSync(
        process.execPath,
        [path.join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--ignoreConfig', '--noEmit', '--strict', '--skipLibCheck', '--types', 'node', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', file],
        { encoding: 'utf8', cwd: PACKAGE_ROOT },
      );
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    } finally {
      fs.rmSync(file, { force: true });
    }
    const errors = out.split('\n').filter((l) => l.includes('error TS'));
    expect(errors, out).toHaveLength(1);
    expect(errors[0]).toMatch(/'"?imagee"?' does not exist in type 'IContainer'/);
  }, 60_000);
});

describe('what the DaemonSet promises', () => {
  it('least privilege: no capability, no privilege escalation, no API token, hostPID off', () => {
    const pod = daemonSet.spec.template.spec;
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container.securityContext.capabilities.add).toBeUndefined();
    expect(container.securityContext.privileged).toBeUndefined();
    expect(pod.hostPID).toBeUndefined();
    expect(pod.hostNetwork).toBeUndefined();
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(byKind('ServiceAccount')[0].automountServiceAccountToken).toBe(false);
    expect(container.resources.requests).toBeDefined();
    // no GPU taken from the scheduler
    expect(JSON.stringify(container.resources)).not.toMatch(/nvidia\.com/);
  });

  it('the kubelet socket: the directory mounted read-only, the default path passed', () => {
    const mount = container.volumeMounts.find((m: Doc) => m.mountPath === path.dirname(DEFAULT_POD_RESOURCES_SOCKET));
    expect(mount).toMatchObject({ readOnly: true });
    const volume = daemonSet.spec.template.spec.volumes.find((v: Doc) => v.name === mount.name);
    expect(volume.hostPath.path).toBe(path.dirname(DEFAULT_POD_RESOURCES_SOCKET));
    expect(container.args).toContain(`--pod-resources-socket=${DEFAULT_POD_RESOURCES_SOCKET}`);
  });

  it('NODE_NAME from the downward API', () => {
    expect(container.env.find((e: Doc) => e.name === 'NODE_NAME')).toEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
  });

  it('the per-process variant adds hostPID and --processes, nothing else', () => {
    expect(perProcess.spec.template.spec.hostPID).toBe(true);
    const c = perProcess.spec.template.spec.containers[0];
    expect(c.args).toEqual([...container.args.filter((a: string) => !a.startsWith('#')), '--processes']);
    const back = structuredClone(perProcess);
    delete back.spec.template.spec.hostPID;
    back.spec.template.spec.containers[0].args = container.args;
    expect(back).toEqual(daemonSet);
    const k = docsOf(path.join(DIR, 'per-process', 'kustomization.yaml'))[0];
    expect(k.resources).toEqual(['..']);
    expect(k.patches).toEqual([{ path: 'hostpid.yaml' }]);
  });

  it('Service, ServiceMonitor and pods agree on labels and the port; the job is gpu-telemetry', () => {
    const svc = byKind('Service')[0];
    const sm = byKind('ServiceMonitor')[0];
    expect(daemonSet.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    expect(daemonSet.spec.selector.matchLabels).toMatchObject(svc.spec.selector);
    expect(svc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
    expect(svc.spec.ports[0]).toMatchObject({ name: 'metrics', targetPort: 'metrics' });
    expect(container.ports[0]).toMatchObject({ name: 'metrics', containerPort: 9400 });
    expect(sm.spec.endpoints[0].port).toBe('metrics');
    expect(svc.metadata.name).toBe('gpu-telemetry'); // prometheus/alerts.yml: up{job="gpu-telemetry"}
    expect(sm.spec.namespaceSelector.matchNames).toEqual([svc.metadata.namespace]);
  });

  it("the ServiceMonitor drops the exporter's own pod/container/namespace (they would read as the GPU's pod)", () => {
    const relabelings = byKind('ServiceMonitor')[0].spec.endpoints[0].relabelings as Doc[];
    const drop = relabelings.find((r) => r.action === 'labeldrop');
    for (const l of ['pod', 'container', 'namespace', 'service', 'endpoint']) expect(new RegExp(`^(?:${drop!.regex})$`).test(l), l).toBe(true);
    for (const l of ['job', 'instance', 'gpu', 'uuid']) expect(new RegExp(`^(?:${drop!.regex})$`).test(l), l).toBe(false);
    expect(relabelings.find((r) => r.targetLabel === 'instance')).toMatchObject({ sourceLabels: ['__meta_kubernetes_pod_node_name'] });
  });

  it('every manifest lives in the one namespace, and kustomization.yaml lists every file', () => {
    for (const m of manifests) if (m.doc.kind !== 'Namespace') expect(m.doc.metadata.namespace, m.file).toBe(byKind('Namespace')[0].metadata.name);
    const k = docsOf(path.join(DIR, 'kustomization.yaml'))[0];
    expect([...k.resources].sort()).toEqual([...new Set(manifests.map((m) => m.file))].sort());
  });
});

describe('the PrometheusRule', () => {
  it('is what scripts/gen-prometheusrule.mjs generates from prometheus/alerts.yml', () => {
    expect(fs.readFileSync(TARGET, 'utf8')).toBe(renderPrometheusRule(fs.readFileSync(SOURCE, 'utf8')));
    const fromSource = YAML.parse(fs.readFileSync(SOURCE, 'utf8')).groups;
    expect(byKind('PrometheusRule')[0].spec.groups).toEqual(fromSource);
  });
  it('carries the kubernetes alert', () => {
    const names = byKind('PrometheusRule')[0].spec.groups.flatMap((g: Doc) => g.rules.map((r: Doc) => r.alert));
    expect(names).toContain('GpuTelemetryKubernetesDown');
  });
});

describe('the Dockerfile', () => {
  const text = fs.readFileSync(path.join(DIR, 'Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  const stages = lines.join('\n').split(/^FROM /m).slice(1);
  const runtime = stages[stages.length - 1];

  it('two stages: a build stage, then a slim Node 20 runtime', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/^node:20-\S+ AS build/);
    expect(runtime).toMatch(/^node:20-[a-z]+-slim\n/);
  });
  it('the build stage makes the prebuilds; the runtime copies them and installs no toolchain', () => {
    expect(stages[0]).toMatch(/npm ci/);
    expect(stages[0]).toMatch(/npm run prebuild/);
    expect(stages[0]).toMatch(/npm prune --omit=dev/);
    expect(runtime).not.toMatch(/\b(RUN|apt-get|gcc|g\+\+|make|python3|node-gyp)\b/);
    for (const dir of ['prebuilds', 'dist', 'node_modules', 'proto', 'scenarios', 'package.json']) expect(runtime).toMatch(new RegExp(`COPY --from=build /src/${dir} `));
    expect(runtime).not.toMatch(/\/src\/build\b/);
    expect(runtime).toMatch(/ENTRYPOINT \["node", "\/opt\/gpu-telemetry\/dist\/cli\.js"\]/);
  });
  it('what the build stage copies exists and is not excluded by .dockerignore', () => {
    const ignored = fs.readFileSync(path.join(PACKAGE_ROOT, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    for (const m of stages[0].matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1].split(' ')) {
        expect(fs.existsSync(path.join(PACKAGE_ROOT, src)), src).toBe(true);
        expect(ignored, src).not.toContain(src);
      }
    }
  });
  it('the runtime copies every folder package.json ships that the server needs', () => {
    const files = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { files: string[] }).files;
    for (const f of ['dist/', 'scenarios/', 'proto/', 'prebuilds/']) expect(files).toContain(f);
  });
});
