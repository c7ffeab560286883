"""Renders the chart with Helm's own engine (helm-python-sdk: Helm v4 as a library, no helm binary),
lints it strictly, and writes every rendered manifest to a directory for kubernetes-validate.

    python render.py CHART OUT_DIR

Renders twice: with the chart's defaults, and with every optional part switched on (the values in
all-options.yaml beside this file), so no template goes unrendered.
"""

import json
import pathlib
import sys

import helm_python as helm

chart_dir, out_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out_dir.mkdir(parents=True, exist_ok=True)

report = helm.lint(str(chart_dir), strict=True)
errors = report["errors"] + [m["error"] for m in report["messages"] if m["severity"] >= 3]
if errors:
    sys.exit(f"helm lint: {errors}")
print(f"helm lint: {chart_dir} passes ({len(report['messages'])} notes)")

chart = helm.Chart.load(str(chart_dir))
all_options = helm.values_from_yaml((pathlib.Path(__file__).parent / "all-options.yaml").read_text())
for label, values in [("defaults", None), ("all-options", all_options)]:
    manifests = chart.render(values, name="kurz", namespace="kurz", is_install=True)
    count = 0
    for path, text in sorted(manifests.items()):
        if not text.strip() or path.endswith("NOTES.txt"):
            continue
        target = out_dir / label / pathlib.Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        count += 1
    print(f"helm render ({label}): {count} manifests")
    (out_dir / f"{label}.json").write_text(json.dumps(manifests))
