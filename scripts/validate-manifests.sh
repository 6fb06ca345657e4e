#!/usr/bin/env bash
# Validates deploy/: the Kubernetes manifests against the Kubernetes OpenAPI schemas, offline,
# with kubernetes-validate from PyPI (it bundles the schemas of every Kubernetes minor version
# it supports); the ServiceMonitor, a CRD it has no schema for, against
# scripts/schemas/servicemonitor.schema.json; the ConfigMap's proofgate.toml with
# `proofgate check`; and the wiring between the files (labels, ports, names).
#
#   scripts/validate-manifests.sh [PROOFGATE_BINARY]     # default: target/debug/proofgate
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/debug/proofgate}
readonly KV_VERSION=1.37.0
# The oldest and the newest Kubernetes minor versions the manifests must validate against.
readonly K8S_VERSIONS="1.29.0 1.37.0"

venv=${PROOFGATE_TOOLS_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/proofgate/kubernetes-validate-$KV_VERSION}
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi

manifests=(deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment.yaml
  deploy/kubernetes/service.yaml deploy/kubernetes/pdb.yaml deploy/kubernetes/hpa.yaml
  deploy/kubernetes/secret.template.yaml)
# The optional shared store of [cluster] (docs/cluster.md), applied on its own.
cluster_manifests=(deploy/kubernetes/cluster/redis.yaml deploy/kubernetes/cluster/networkpolicy.yaml)
for v in $K8S_VERSIONS; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}" "${cluster_manifests[@]}"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" - "$tmp" <<'PY'
import glob, json, os, sys
import jsonschema, yaml

tmp = sys.argv[1]
fail = []
docs = {}
for path in sorted(glob.glob("deploy/kubernetes/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if doc:
            docs[(doc["kind"], doc["metadata"]["name"] if "metadata" in doc else path)] = (path, doc)

# The CRD.
schema = json.load(open("scripts/schemas/servicemonitor.schema.json"))
sm = docs[("ServiceMonitor", "proofgate")][1]
for e in jsonschema.Draft202012Validator(schema).iter_errors(sm):
    fail.append(f"servicemonitor.yaml: {e.json_path}: {e.message}")

# kustomization.yaml names every manifest but the Secret template, and each exists.
kust = docs[("Kustomization", "deploy/kubernetes/kustomization.yaml")][1]
listed = set(kust["resources"])
present = {os.path.basename(p) for p in glob.glob("deploy/kubernetes/*.yaml")}
want = present - {"kustomization.yaml", "secret.template.yaml"}
if listed != want:
    fail.append(f"kustomization.yaml resources {sorted(listed)} != manifests {sorted(want)}")

# Wiring: what the Deployment refers to exists and matches.
dep = docs[("Deployment", "proofgate")][1]
pod = dep["spec"]["template"]
spec = pod["spec"]
c = spec["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
if dep["spec"]["replicas"] != 3:
    fail.append("the Deployment runs 3 replicas")
if pod["metadata"]["labels"] != dep["spec"]["selector"]["matchLabels"]:
    fail.append("Deployment selector != pod labels")
for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
    got = c[probe]["httpGet"]
    if got["path"] != path or got["port"] != "admin":
        fail.append(f"{probe} must GET {path} on the admin port")
sc = c["securityContext"]
if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
        and sc.get("capabilities", {}).get("drop") == ["ALL"] and spec["securityContext"].get("runAsNonRoot")):
    fail.append("container must be non-root, read-only root fs, no privilege escalation, all capabilities dropped")
if not (c["resources"].get("requests") and c["resources"].get("limits")):
    fail.append("container needs resource requests and limits")
if c["envFrom"][0]["secretRef"]["name"] != docs[("Secret", "proofgate-secrets")][1]["metadata"]["name"]:
    fail.append("the Deployment's secretRef is not the Secret template's name")
secret_keys = set(docs[("Secret", "proofgate-secrets")][1]["stringData"])
if secret_keys != {"PROOF_API_KEY", "PROOFGATE_COOKIE_KEY", "PROOF_WEBHOOK_SECRET"}:
    fail.append(f"Secret template keys {sorted(secret_keys)}")
cm_name = next(v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v)
cm = docs[("ConfigMap", cm_name)][1]
mount = next(m for m in c["volumeMounts"] if m["name"] == next(v["name"] for v in spec["volumes"] if "configMap" in v))
if "subPath" in mount:
    fail.append("the config mount must not use subPath (it would never see ConfigMap updates)")
config_file = os.path.join(mount["mountPath"], "proofgate.toml")
if c["args"][-1] != config_file:
    fail.append(f"args name {c['args'][-1]}, the ConfigMap is mounted at {config_file}")
open(os.path.join(tmp, "proofgate.toml"), "w").write(cm["data"]["proofgate.toml"])
# The config's listener ports are the container's.
import tomllib
cfg = tomllib.loads(cm["data"]["proofgate.toml"])
if int(cfg["listeners"][0]["address"].rsplit(":", 1)[1]) != ports["http"]:
    fail.append("the config's listener port is not the container's http port")
if int(cfg["admin"]["address"].rsplit(":", 1)[1]) != ports["admin"]:
    fail.append("the config's admin port is not the container's admin port")
if not cfg["admin"]["address"].startswith("0.0.0.0:"):
    fail.append("the admin listener must bind 0.0.0.0 for the kubelet's probes")
# Services and the ServiceMonitor select what exists.
for name in ["proofgate", "proofgate-admin"]:
    svc = docs[("Service", name)][1]
    sel = svc["spec"]["selector"]
    if any(pod["metadata"]["labels"].get(k) != v for k, v in sel.items()):
        fail.append(f"Service {name} selects no pod")
    for p in svc["spec"]["ports"]:
        if p["targetPort"] not in ports:
            fail.append(f"Service {name} targets unknown port {p['targetPort']}")
admin_svc = docs[("Service", "proofgate-admin")][1]
if any(admin_svc["metadata"]["labels"].get(k) != v for k, v in sm["spec"]["selector"]["matchLabels"].items()):
    fail.append("the ServiceMonitor selects no Service")
if sm["spec"]["endpoints"][0]["port"] not in {p["name"] for p in admin_svc["spec"]["ports"]}:
    fail.append("the ServiceMonitor's port is not the admin Service's")
for kind in ["PodDisruptionBudget"]:
    sel = docs[(kind, "proofgate")][1]["spec"]["selector"]["matchLabels"]
    if sel != dep["spec"]["selector"]["matchLabels"]:
        fail.append(f"{kind} does not select the Deployment's pods")
hpa = docs[("HorizontalPodAutoscaler", "proofgate")][1]["spec"]
if hpa["scaleTargetRef"]["name"] != "proofgate" or hpa["minReplicas"] < 3:
    fail.append("HPA must target the Deployment with at least 3 replicas")
# Step-up starts are limited per replica: the sum over replicas stays below the API's 100/min.
per_replica = cfg.get("step_up", {}).get("global_per_minute", 30)
if per_replica * hpa["maxReplicas"] >= 100:
    fail.append(f"maxReplicas {hpa['maxReplicas']} x global_per_minute {per_replica} >= 100/min")
# deploy/kubernetes/cluster: the NetworkPolicy guards the store's pods and lets only the
# gateway's pods in, on the store's port; the store reads its password from the gateway's Secret.
cdocs = {}
for path in sorted(glob.glob("deploy/kubernetes/cluster/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") != "Kustomization":
            cdocs[(doc["kind"], doc["metadata"]["name"])] = doc
store = cdocs[("Deployment", "proofgate-redis")]["spec"]["template"]
netpol = cdocs[("NetworkPolicy", "proofgate-redis")]["spec"]
if netpol["podSelector"]["matchLabels"] != store["metadata"]["labels"]:
    fail.append("cluster: the NetworkPolicy does not select the store's pods")
allowed = [f["podSelector"]["matchLabels"] for rule in netpol["ingress"] for f in rule["from"]]
if allowed != [pod["metadata"]["labels"]]:
    fail.append("cluster: the NetworkPolicy must let in the gateway's pods only")
store_port = store["spec"]["containers"][0]["ports"][0]["containerPort"]
if [p["port"] for rule in netpol["ingress"] for p in rule["ports"]] != [store_port]:
    fail.append("cluster: the NetworkPolicy must open the store's port only")
refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in store["spec"]["containers"][0]["env"]]
if refs != [docs[("Secret", "proofgate-secrets")][1]["metadata"]["name"]]:
    fail.append("cluster: the store's password must come from the gateway's Secret")
if fail:
    sys.exit("deploy/kubernetes:\n  " + "\n  ".join(fail))
PY
"$bin" check -c "$tmp/proofgate.toml"
echo "deploy/kubernetes: valid (Kubernetes $K8S_VERSIONS, ServiceMonitor schema, wiring, the cluster example, proofgate check)"
