#!/usr/bin/env bash
# Checks the deploy files with the real tools that run without a Docker engine or a cluster:
# promtool (Prometheus config, alert rules and their unit tests), docker-compose (the compose file),
# Helm's own engine (helm-python-sdk from PyPI: Helm v4 as a library; strict lint and rendering with
# the defaults and with every option on) and kubernetes-validate (the rendered manifests against the
# Kubernetes API schemas), and JSON parsing of the Grafana dashboards. Gets promtool from Debian's
# prometheus package without installing it (no server is started), docker-compose from Debian when
# missing, and the Python tools into a virtualenv under the target directory.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${CARGO_TARGET_DIR:-$PWD/target}/deploy-tools"
promtool="$(command -v promtool || true)"
if [[ -z "$promtool" ]]; then
    promtool="$tools/usr/bin/promtool"
    if [[ ! -x "$promtool" ]]; then
        mkdir -p "$tools"
        # A fresh machine may have no package lists yet.
        (cd "$tools" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get download prometheus >/dev/null 2>&1; }; } \
            && dpkg -x prometheus_*.deb . && rm -f prometheus_*.deb)
    fi
fi
"$promtool" check config deploy/prometheus/prometheus.yml
"$promtool" test rules deploy/prometheus/alerts.test.yml

if ! command -v docker-compose >/dev/null; then
    apt-get install -y --no-install-recommends docker-compose >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends docker-compose >/dev/null; }
fi
# The compose file names secret files the operator creates; stand-ins let it be checked.
cleanup=()
for secret in secret.key admin.key; do
    if [[ ! -e "deploy/compose/$secret" ]]; then
        touch "deploy/compose/$secret"
        cleanup+=("deploy/compose/$secret")
    fi
done
trap 'rm -f "${cleanup[@]}"' EXIT
docker-compose -f deploy/compose/compose.yaml config -q
echo "compose: deploy/compose/compose.yaml is valid"

# Dashboards: every panel's query is valid PromQL (promtool checks it as a recording rule) and
# names only metrics Kurz describes (its `# HELP` list, plus process metrics and `up`).
for dashboard in deploy/grafana/dashboards/*.json; do
    rules="$(mktemp --suffix=.yml)"
    python3 - "$dashboard" crates/service-kit/src/telemetry.rs "$rules" <<'PY'
import json, re, sys
dashboard, telemetry, rules = sys.argv[1:4]
panels = json.load(open(dashboard))["panels"]
assert panels, "no panels"
described = set(re.findall(r'describe_(?:counter|gauge|histogram)!\(\s*"([a-z_]+)"', open(telemetry).read()))
described |= {"up"}
expressions = [t["expr"] for p in panels for t in p.get("targets", [])]
assert expressions, "no queries"
for expr in expressions:
    names = {n for n in re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?:\{|\[|\))", expr) if "_" in n}
    names = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names} - {"histogram_quantile", "clamp_min"}
    unknown = {n for n in names if n not in described and not n.startswith("process_")}
    assert not unknown, f"{dashboard}: {expr} names metrics Kurz does not export: {unknown}"
with open(rules, "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, expr in enumerate(expressions):
        out.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(expr)}\n")
PY
    "$promtool" check rules "$rules" >/dev/null
    rm -f "$rules"
    echo "grafana: $dashboard parses; its queries are valid PromQL over Kurz's metrics"
done

# The chart's PrometheusRule carries the same rules as Prometheus in compose.
cmp deploy/prometheus/alerts.yml deploy/helm/kurz/files/alerts.yml
echo "alerts: the chart's rules are deploy/prometheus/alerts.yml"

venv="$(scripts/python-tools.sh)"
rendered="$tools/rendered"
rm -rf "$rendered"
"$venv/bin/python" deploy/helm/checks/render.py deploy/helm/kurz "$rendered"
# --strict refuses fields the API does not have; the Prometheus operator's kinds have no schema here
# (reported as warnings).
"$venv/bin/kubernetes-validate" --strict --quiet "$rendered"/defaults/*.yaml "$rendered"/all-options/*.yaml
echo "kubernetes-validate: every rendered manifest is valid for Kubernetes 1.37"
