#!/usr/bin/env bash
# The one prepared run on a lent GPU machine (issue 9): measure GPU inference of the shipped model, train the
# GPU configs on pairs synthesised on the device, measure the new models, and hand back weights in chunks of
# at most 15 MiB with their sha256 (the lending tool returns files of at most 16 MiB).
#
#   bash benchmarks/gpu_session.sh OUT_DIR [TRAIN_MINUTES] [DEVICE]
#
# The GPU machine has PyTorch but not nilearn, nibabel or pydicom: their wheels travel in .whl/ (ignored by git),
# fetched here with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl nilearn==0.14.1 nibabel==5.4.2 pydicom==3.0.2
# On a CPU the same script runs as a rehearsal: SESSION_PHANTOMS=4 SESSION_BATCH=2 bash benchmarks/gpu_session.sh
# /tmp/out 0.5 cpu. Lessons of the first run (benchmarks/RESULTS.md, "Enhancement on a GPU"): train single-coil
# pairs (or give the net the coil count) and one model per GPU.
set -uo pipefail
out=${1:?usage: gpu_session.sh OUT_DIR [TRAIN_MINUTES] [DEVICE]}
minutes=${2:-6.5}
device=${3:-cuda}
phantoms=${SESSION_PHANTOMS:-64}
batch=${SESSION_BATCH:-16}
work=${SESSION_WORK:-/tmp/gpu-session}
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out" "$work/weights"
if ! "$python" -c "import nilearn, pydicom" 2>/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" .whl/*.whl || exit 1
  export PYTHONPATH="$work/site:${PYTHONPATH:-}"
fi
export PYTHONPATH=".:${PYTHONPATH:-}"
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; nproc;
  "$python" -c "import torch; print('torch', torch.__version__)"; } > "$out/results.txt"

peak=${SESSION_PEAK_GFLOPS:-790000}  # bf16 dense matrix rate measured on this H200 kind (device KINDS.md)
throughput() {  # weights, label
  echo "== throughput: $2 ==" >> "$out/results.txt"
  "$python" -m benchmarks.enhance_throughput --device "$device" --threads 4 --weights "$1" \
    --peak-gflops "$peak" --json "$work/throughput-$2.json" >> "$out/results.txt" 2>&1
  cat "$work/throughput-$2.json" >> "$out/results.txt" 2>/dev/null
}
[ -n "${SESSION_SKIP_SHIPPED:-}" ] || throughput worker/enhance/weights/ceunet-c16-v2.pt shipped-c16-v2

common=(--device "$device" --cache "$work/cache" --max-minutes "$minutes" --phantoms "$phantoms" --batch "$batch")
"$python" -m worker.enhance.train --config gpu-c32 --prepare-only --workers "$(nproc)" --cache "$work/cache" \
  --phantoms "$phantoms" > "$out/train-prepare.log" 2>&1 || { tail -20 "$out/train-prepare.log"; exit 1; }
"$python" -m worker.enhance.train --config gpu-c32 --version ceunet-c32-v1 --out "$work/weights/ceunet-c32-v1.pt" \
  "${common[@]}" > "$out/train-c32.log" 2>&1 &
c32=$!
"$python" -m worker.enhance.train --config gpu-c16 --version ceunet-c16-v3 --out "$work/weights/ceunet-c16-v3.pt" \
  --init worker/enhance/weights/ceunet-c16-v2.pt "${common[@]}" > "$out/train-c16.log" 2>&1 &
c16=$!
wait $c32; echo "c32 training exit $?" >> "$out/results.txt"
wait $c16; echo "c16 training exit $?" >> "$out/results.txt"

for name in ceunet-c32-v1 ceunet-c16-v3; do
  weights="$work/weights/$name.pt"
  [ -f "$weights" ] || continue
  throughput "$weights" "$name"
  sha256sum "$weights" | sed "s#$work/weights/##" >> "$out/sha256.txt"
  split -b 15M -d -a 1 "$weights" "$out/$name.pt.part"
done
ls -la "$out" >> "$out/results.txt"
