"""Prints, as JSON, the environment each deploy file gives each Kurz service:

    {"compose": {"command-api": {"KURZ_…": "…"}, …}, "helm": {"command-api": {…}, …}}

Read from the files themselves: compose.yaml with its anchors and merges resolved, and the chart as
Helm renders it (helm-python-sdk) with its defaults. Variables whose value comes from a Secret
(valueFrom) are left out: the test that uses this provides its own secrets.

    python service_env.py REPO_ROOT
"""

import json
import pathlib
import sys

import yaml

root = pathlib.Path(sys.argv[1])
SERVICES = ["command-api", "query-api", "projector"]

compose = yaml.safe_load((root / "deploy/compose/compose.yaml").read_text())
compose_env = {}
for name in SERVICES:
    environment = compose["services"][name].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    compose_env[name] = {key: str(value) for key, value in environment.items()}

helm_env = {}
try:
    import helm_python as helm
except ImportError:
    helm = None
if helm is not None:
    chart = helm.Chart.load(str(root / "deploy/helm/kurz"))
    for text in chart.render(None, name="kurz", namespace="kurz", is_install=True).values():
        for document in yaml.safe_load_all(text):
            if not document or document.get("kind") not in ("Deployment", "StatefulSet"):
                continue
            container = document["spec"]["template"]["spec"]["containers"][0]
            helm_env[container["name"]] = {
                item["name"]: str(item["value"]) for item in container.get("env", []) if "value" in item
            }

print(json.dumps({"compose": compose_env, "helm": helm_env}))
