#!/usr/bin/env bash
# Build a wheel from this tree, install it into a fresh venv outside the
# repository, and run shipped configs and studies by name from another
# directory: what a user who runs `pip install aelab` gets.
#   bash .ci/wheel-check.sh [PYTHON]
set -euo pipefail
PY=${1:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/aelab-wheel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$ROOT"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q torch==2.13.0
"$WORK/venv/bin/python" -m pip install -q "$WORK"/dist/aelab-*.whl
mkdir "$WORK/elsewhere"
cd "$WORK/elsewhere"
AELAB="$WORK/venv/bin/aelab"
"$AELAB" --help > /dev/null
"$AELAB" configs > configs.txt
grep -q mnist-vae configs.txt
"$AELAB" train digits-ae --set train.epochs=2 --out run --quiet > /dev/null
"$AELAB" show run > show.txt
grep -q completed show.txt
"$AELAB" report run > /dev/null
test -f run/report.html
"$AELAB" sample run --sampler gmm --components 3 --n 4 > /dev/null  # samplers found by folder in the wheel
test -f run/samples-gmm/samples.npz
"$AELAB" models | grep -q "dae"  # the zoo's families too
"$WORK/venv/bin/python" - <<'PY'
from aelab.studies import prepare
ctx = prepare("optimizers", trials=None)
assert ctx.budget >= 4, ctx.budget
from aelab.lso.study import load_study
spec, folder = load_study("lso-paper")
assert spec.methods and (folder / spec.classifier).is_file()
print("wheel check: ok (configs, studies and LSO studies reachable by name outside the repository)")
PY
