#!/usr/bin/env bash
# Makes sure the Python tools the deploy checks and tests use are installed in a virtualenv under
# the target directory (helm-python-sdk: Helm v4 as a library; kubernetes-validate; PyYAML with it),
# and prints the virtualenv's path. Exits non-zero when they cannot be had (no PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-$PWD/target}/deploy-tools/venv"
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 >&2
fi
echo "$venv"
