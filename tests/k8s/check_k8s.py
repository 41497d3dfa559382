#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Validate the Kubernetes manifests in deploy/k8s offline (ctest: lint.k8s).

1. yamllint --strict over deploy/k8s with deploy/k8s/.yamllint.yaml.
2. `kubectl kustomize` renders the base, the example overlay and the sentinel overlay (the
   example with components/redis-sentinel; in a scratch copy, with throw-away secret files
   where the example's secretGenerator expects them), and
   validate.mjs checks every object: the Kubernetes schema (kubernetes-models), unknown fields
   (@kubernetes/client-node's type maps), the flags and SHOAL_* variables of every shoal
   container against the built binaries (--print-config), and the references between objects.
   deploy/k8s/optional/*.yaml (CRDs such as ServiceMonitor) are checked as files.
3. Self-test: deliberately broken copies (an unknown field, a wrong type, a missing required
   field, an unknown flag, a misspelt SHOAL_ variable, a wrong --advertise, an unknown field in
   the ServiceMonitor, a probe on a missing port, a Sentinel pod or port that does not exist, a
   duplicate YAML key)
   must each FAIL with the expected message, so a validator that passes everything cannot pass.

The npm packages (package-lock.json) are installed with `npm ci` into --work (a build
directory), never into the source tree. Exit 77 (skipped) when kubectl, node or npm is missing."""
import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# (what is broken, file under deploy/k8s, text, replacement, what the output must say)
BREAKS = [
    ("unknown field (misspelt readinessProbe)", "base/node.yaml",
     "          readinessProbe:\n", "          readinesProbe:\n",
     'unknown field "readinesProbe" in V1Container'),
    ("unknown field (misspelt HPA minReplicas)", "base/gateway.yaml",
     "  minReplicas: 2\n", "  minReplica: 2\n", 'unknown field "minReplica"'),
    ("wrong type (a string for an integer)", "base/gateway.yaml",
     "      terminationGracePeriodSeconds: 30\n", "      terminationGracePeriodSeconds: thirty\n",
     "terminationGracePeriodSeconds must be integer"),
    ("wrong type (an enum value)", "base/gateway.yaml",
     "  externalTrafficPolicy: Local\n", "  externalTrafficPolicy: Locale\n",
     "externalTrafficPolicy must be equal to one of the allowed values"),
    ("missing required field (a Service port's port)", "base/redis.yaml",
     "      port: 6379\n", "",
     "must have required property port"),
    ("unknown flag", "base/gateway.yaml",
     "            - --secret-file\n", "            - --secret-fil\n",
     "unknown option '--secret-fil'"),
    ("misspelt SHOAL_ variable", "base/node.yaml",
     "            - name: SHOAL_MEMORY\n", "            - name: SHOAL_MEMROY\n",
     "env SHOAL_MEMROY: shoal-node has no option --memroy"),
    ("--advertise not under the headless Service", "base/node.yaml",
     ".shoal-node.$(POD_NAMESPACE)", ".shoal-nodes.$(POD_NAMESPACE)",
     "is not the pod's name under the headless Service"),
    ("unknown field in a CRD object (ServiceMonitor field list)", "optional/servicemonitor.yaml",
     "      interval: 15s\n", "      intervall: 15s\n", 'unknown field "intervall" in SMEndpoint'),
    ("a probe on a port the container does not have", "base/gateway.yaml",
     "              path: /readyz\n              port: admin\n",
     "              path: /readyz\n              port: admn\n",
     "readinessProbe names port admn"),
    ("SHOAL_REDIS names a Sentinel pod that does not exist",
     "components/redis-sentinel/redis-sentinel.yaml",
     "  serviceName: shoal-sentinel\n  replicas: 3\n",
     "  serviceName: shoal-sentinel\n  replicas: 2\n",
     "shoal-sentinel-2 is not a pod of a StatefulSet under Service shoal-sentinel (2 replicas)"),
    ("SHOAL_REDIS names a port the Sentinels' Service does not have",
     "components/redis-sentinel/redis-sentinel.yaml",
     "      port: 26379\n", "      port: 26380\n", "Service shoal-sentinel has no port 26379"),
]
# yamllint's own self-test: a duplicate key, which kustomize would quietly resolve.
YAML_BREAK = ("base/node.yaml", "  replicas: 3\n", "  replicas: 3\n  replicas: 5\n",
              "duplication of key")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, **kw)


def npm_install(work: str) -> str:
    """npm ci into work/npm unless the lock file there is the same as ours; returns the dir."""
    d = os.path.join(work, "npm")
    os.makedirs(d, exist_ok=True)
    lock = open(os.path.join(HERE, "package-lock.json"), "rb").read()
    stamp = os.path.join(d, "node_modules", ".shoal-lock-sha256")
    want = hashlib.sha256(lock + open(os.path.join(HERE, "package.json"), "rb").read()).hexdigest()
    for f in ("package.json", "package-lock.json", "validate.mjs"):
        shutil.copyfile(os.path.join(HERE, f), os.path.join(d, f))
    if not (os.path.exists(stamp) and open(stamp).read() == want):
        r = run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d)
        if r.returncode != 0:
            raise RuntimeError(f"npm ci failed (is the npm registry reachable?):\n{r.stderr}")
        open(stamp, "w").write(want)
    return d


def render(k8s: str, out: str, which: str) -> str:
    """kubectl kustomize k8s/which > out/<name>.yaml; returns the path."""
    r = run(["kubectl", "kustomize", os.path.join(k8s, which)])
    if r.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {which}: {r.stderr.strip()}")
    path = os.path.join(out, which.replace("/", "-") + ".yaml")
    open(path, "w").write(r.stdout)
    return path


def scratch_copy(root: str, tmp: str, name: str) -> str:
    """deploy/k8s copied to tmp/name, with throw-away secret files for the example overlay."""
    k8s = os.path.join(tmp, name)
    shutil.copytree(os.path.join(root, "deploy", "k8s"), k8s)
    sec = os.path.join(k8s, "overlays", "example", "secrets")
    os.makedirs(sec, exist_ok=True)
    for f in ("connid-secret", "admin-token"):
        open(os.path.join(sec, f), "w").write(secrets.token_hex(32) + "\n")
    return k8s


def validate(npm: str, binary_dir: str, k8s: str, out: str, everything=True) -> tuple[int, str]:
    """Render and validate the base, and unless not everything the overlay and the optional
    files of k8s; returns (failures, log)."""
    log, failed = [], 0
    runs = [("base", [render(k8s, out, "base")], ["--refs"])]
    if everything:
        optional = sorted(os.path.join(k8s, "optional", f)
                          for f in os.listdir(os.path.join(k8s, "optional")) if f.endswith(".yaml"))
        runs += [("overlays/example", [render(k8s, out, "overlays/example")],
                  ["--refs", "--require-secrets"]),
                 ("overlays/sentinel", [render(k8s, out, "overlays/sentinel")],
                  ["--refs", "--require-secrets"]),
                 ("optional", optional, [])]
    for label, files, extra in runs:
        r = run(["node", os.path.join(npm, "validate.mjs"), "--bin", binary_dir, *extra, *files],
                cwd=npm)
        log.append(f"--- {label}\n{r.stdout}{r.stderr}")
        failed += r.returncode != 0
    return failed, "".join(log)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="the repository")
    ap.add_argument("--bin", required=True, help="directory of the built shoal binaries")
    ap.add_argument("--work", required=True, help="scratch directory for npm (a build dir)")
    args = ap.parse_args()
    missing = [t for t in ("kubectl", "node", "npm") if not shutil.which(t)]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (kubectl renders the kustomizations; "
              "node and npm run the schema validator)", file=sys.stderr)
        return 77
    if not shutil.which("yamllint"):
        print("yamllint not found: install it (deploy/install-deps.sh test)", file=sys.stderr)
        return 1
    binary_dir = os.path.abspath(args.bin)
    for b in ("shoal-node", "shoal-gateway"):
        if not os.access(os.path.join(binary_dir, b), os.X_OK):
            print(f"{binary_dir}/{b} is not built", file=sys.stderr)
            return 1
    failed = 0
    npm = npm_install(os.path.abspath(args.work))

    conf = os.path.join(args.root, "deploy", "k8s", ".yamllint.yaml")
    r = run(["yamllint", "--strict", "-f", "parsable", "-c", conf,
             os.path.join(args.root, "deploy", "k8s")])
    print(f"yamllint: {'ok' if r.returncode == 0 else 'FAILED'}")
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        failed += 1

    with tempfile.TemporaryDirectory(prefix="shoal-k8s-") as tmp:
        k8s = scratch_copy(args.root, tmp, "k8s")
        n, log = validate(npm, binary_dir, k8s, tmp)
        print(log, end="")
        failed += n

        # Self-test: each broken copy must fail, saying what is wrong.
        broken = [(*b, False) for b in BREAKS] + [(("duplicate YAML key (yamllint)",) + YAML_BREAK +
                                                   (True,))]
        for what, rel, old, new, expect, is_yaml in broken:
            name = f"broken-{len(os.listdir(tmp))}"
            bk = scratch_copy(args.root, tmp, name)
            path = os.path.join(bk, rel)
            text = open(path).read()
            if text.count(old) != 1:
                print(f"self-test '{what}': {rel} does not hold {old!r} exactly once; update BREAKS")
                failed += 1
                continue
            open(path, "w").write(text.replace(old, new))
            if is_yaml:
                r = run(["yamllint", "--strict", "-f", "parsable", "-c", conf, bk])
                n, log = (r.returncode != 0), r.stdout + r.stderr
            else:
                out = os.path.join(tmp, name + "-out")
                os.makedirs(out)
                try:
                    # (a break in the base shows in the base, which the overlay only adds to)
                    n, log = validate(npm, binary_dir, bk, out,
                                      everything=not rel.startswith("base/"))
                except RuntimeError as e:  # kustomize refused it: also a failure, but say so
                    n, log = 1, str(e)
            if n and expect in log:
                print(f"self-test: broken copy fails as it must: {what}")
                for line in log.splitlines():
                    if expect in line:
                        print(f"    {line.strip()}")
                        break
            else:
                print(f"self-test '{what}': the broken copy was not refused with {expect!r}:\n{log}")
                failed += 1
    print(f"lint.k8s: {'FAILED' if failed else 'ok'} ({failed} problem(s))")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
