"""Checks the deployment files that cannot be built or started here (no container runtime on
the CI machine): every YAML file parses, and the properties the README promises hold.
Run by .ci/run:  python3 deploy/check.py"""

import glob
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
problems = []


def need(ok, what):
    if not ok:
        problems.append(what)


docs = {}
for path in sorted(glob.glob(os.path.join(HERE, "**", "*.yaml"), recursive=True)):
    try:
        docs[os.path.relpath(path, HERE)] = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    except yaml.YAMLError as e:
        problems.append(f"{path}: {e}")

compose = docs["compose.yaml"][0]
services = compose["services"]
rampart = [n for n, s in services.items() if "build" in s]
need(len(rampart) >= 2, "compose: two Rampart instances")
need({"nginx", "postgres", "redis"} <= services.keys(), "compose: nginx, PostgreSQL and Redis")
for name in rampart:
    env = services[name]["environment"]
    need("RAMPART_MASTER_KEY_FILE" in env and "RAMPART_MASTER_KEY" not in env, f"compose {name}: the master key from a file")
    need(env.get("RAMPART_RATE_LIMIT__BACKEND") == "redis", f"compose {name}: shared rate limits")
need(all(s.get("file") for s in compose["secrets"].values()), "compose: secrets from files")

k8s = [d for f, ds in docs.items() if f.startswith("k8s/") for d in ds]
kinds = {d["kind"]: d for d in k8s}
need({"Deployment", "Service", "PodDisruptionBudget", "Job", "Secret"} <= kinds.keys(), f"k8s: kinds {sorted(kinds)}")
pod = kinds["Deployment"]["spec"]["template"]["spec"]
c = pod["containers"][0]
need(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "k8s: liveness on /healthz")
need(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "k8s: readiness on /readyz")
need("requests" in c["resources"], "k8s: resource requests")
need(pod["securityContext"].get("runAsNonRoot") is True, "k8s: non-root")
need(c["securityContext"].get("readOnlyRootFilesystem") is True, "k8s: read-only root filesystem")
need(kinds["Job"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"], "k8s: the migration Job runs `rampart migrate`")
pdb = kinds["PodDisruptionBudget"]["spec"]
need(pdb.get("minAvailable", 0) < kinds["Deployment"]["spec"]["replicas"], "k8s: the PDB leaves room to drain a node")

dockerfile = open(os.path.join(ROOT, "Dockerfile")).read()
need(dockerfile.count("FROM ") >= 2, "Dockerfile: multi-stage")
need("USER 10001" in dockerfile, "Dockerfile: a non-root user")
need("HEALTHCHECK" in dockerfile and "/readyz" in dockerfile, "Dockerfile: a HEALTHCHECK on /readyz")

# The Prometheus alerting rules name only metrics Rampart exports (counters with `_total`).
import re  # noqa: E402

metrics_src = open(os.path.join(ROOT, "crates", "rampart-core", "src", "metrics.rs")).read()
registered = {"rampart_" + m for m in re.findall(r'registry\.register\(\s*"([a-z_]+)"', metrics_src)}
need("rampart_security_events" in registered, "metrics.rs: the registered metric names are readable")
alerts = yaml.safe_load(open(os.path.join(HERE, "prometheus", "alerts.yml")))
for group in alerts["groups"]:
    for rule in group["rules"]:
        for name in re.findall(r"\brampart_[a-z_]+", rule["expr"]):
            base = re.sub(r"_(total|count|sum|bucket)$", "", name)
            need(base in registered, f"prometheus/alerts.yml {rule['alert']}: {name} is not a metric Rampart exports")

if problems:
    print("deployment files:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"deployment files: {len(docs)} YAML files parse; compose, Kubernetes, Dockerfile and alert-rule checks pass")
