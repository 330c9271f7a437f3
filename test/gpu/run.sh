#!/usr/bin/env bash
# The GPU check, as one prepared script: bash test/gpu/run.sh <out-dir>
#
# For a machine with an NVIDIA GPU, its driver and CUDA, and maybe no Node.js and no network
# (test/gpu/pack.sh, run beforehand on a machine with Node, packs node, koffi and dist/ into
# test/gpu/carry/). It finds the CUDA runtime, cuBLAS and NCCL (set PLAIT_CUDART, PLAIT_CUBLAS,
# PLAIT_NCCL to override; else Python's nvidia-* wheels and torch/lib, else the system), runs the
# GPU tests (test/gpu/nccl.mjs, test/gpu/train.mjs) and the GPU benchmark (test/gpu/bench.mjs, with
# test/gpu/torch_bench.py as the PyTorch baseline), and writes into <out-dir>: env.json,
# tests.json, train.json, bench.json, torch.json and log.txt. Exit status: 0 when every test passed, 1 when
# one failed, 2 when this machine cannot run them (no GPU or driver, no node). PLAIT_GPU_CARRY
# names another folder than test/gpu/carry for what pack.sh made; PLAIT_GPU_PACKED_NODE=1 takes
# the packed node even where one is on PATH (tests of this script do).
set -uo pipefail

out=${1:-}
if [[ -z "$out" ]]; then
  echo "usage: bash test/gpu/run.sh <out-dir>" >&2
  exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.." || exit 2
carry=${PLAIT_GPU_CARRY:-test/gpu/carry}
log="$out/log.txt"
: >"$log"
say() { echo "run.sh: $*" | tee -a "$log" >&2; }
fail() {
  say "$1"
  printf '{"ok": false, "reason": %s}\n' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/')" >"$out/env.json"
  exit "${2:-2}"
}

# 1. a GPU and its driver
if ! command -v nvidia-smi >/dev/null 2>&1; then
  fail "no NVIDIA GPU/driver: nvidia-smi is not on PATH (this machine has no NVIDIA driver)"
fi
if ! gpus=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1) || [[ -z "$gpus" ]]; then
  fail "no NVIDIA GPU/driver: nvidia-smi failed: $gpus"
fi
say "GPU: $gpus"

# 2. node: the one on PATH (20 or later), else the packed copy
node_cmd=""
if [[ "${PLAIT_GPU_PACKED_NODE:-}" != 1 ]] && command -v node >/dev/null 2>&1 && [[ "$(node -v)" =~ ^v(2[0-9]|[3-9][0-9]) ]]; then
  node_cmd=$(command -v node)
elif [[ -f "$carry/node.xz" ]]; then
  tmp=$(mktemp -d)
  xz -dc "$carry/node.xz" >"$tmp/node" && chmod +x "$tmp/node" && node_cmd="$tmp/node"
fi
if [[ -z "$node_cmd" ]] || ! "$node_cmd" -v >/dev/null 2>&1; then
  fail "no Node.js: none on PATH and no usable $carry/node.xz (run test/gpu/pack.sh where node is, and carry test/gpu/carry)"
fi
say "node: $node_cmd $("$node_cmd" -v)"

# 3. koffi and the built library
if [[ ! -d node_modules/koffi ]]; then
  if [[ -f "$carry/node_modules.tar.gz" ]]; then
    tar -xzf "$carry/node_modules.tar.gz" || fail "cannot unpack $carry/node_modules.tar.gz"
  else
    fail "no node_modules/koffi and no $carry/node_modules.tar.gz (run test/gpu/pack.sh and carry test/gpu/carry)"
  fi
fi
[[ -f dist/src/comm/nccl.js ]] || fail "no dist/ (run test/gpu/pack.sh, which builds it, and carry dist)"

# 4. the libraries: explicit variables win, else Python wheels / torch, else the system
py=$(command -v python3 || true)
find_lib() { # $1: file glob, e.g. 'libnccl.so.2'
  [[ -n "$py" ]] || return 0
  "$py" - "$1" <<'PY' 2>/dev/null
import glob, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()]
for d in dirs:
    for pat in (f"{d}/nvidia/*/lib/{sys.argv[1]}", f"{d}/nvidia/*/*/lib/{sys.argv[1]}", f"{d}/torch/lib/{sys.argv[1]}"):
        hits = sorted(glob.glob(pat))
        if hits:
            print(hits[-1])
            sys.exit(0)
PY
}
: "${PLAIT_NCCL:=$(find_lib 'libnccl.so.2')}"
: "${PLAIT_CUBLAS:=$(find_lib 'libcublas.so.1[0-9]')}"
: "${PLAIT_CUDART:=$(find_lib 'libcudart.so.1[0-9]')}"
for v in PLAIT_NCCL PLAIT_CUBLAS PLAIT_CUDART; do
  if [[ -z "${!v}" ]]; then unset "$v"; else export "${v?}"; say "$v=${!v}"; fi
done
# cuBLAS needs cublasLt beside it; NCCL and cuBLAS need the runtime the wheels ship
for v in PLAIT_NCCL PLAIT_CUBLAS PLAIT_CUDART; do
  [[ -n "${!v:-}" ]] && LD_LIBRARY_PATH="$(dirname "${!v}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

"$node_cmd" dist/src/cli/main.js env --json >"$out/env.json" 2>>"$log" || say "plait env failed (see log.txt)"

# 5. tests, then the benchmark (each bounded, so that the whole fits one device call)
status=0
say "tests: test/gpu/nccl.mjs"
timeout 200 "$node_cmd" test/gpu/nccl.mjs "$out/tests.json" 2>&1 | tee -a "$log" || status=1
say "tests: test/gpu/train.mjs (device autodiff, optimizers, AMP, withDDP over NCCL)"
timeout 200 "$node_cmd" test/gpu/train.mjs "$out/train.json" 2>&1 | tee -a "$log" || status=1
if [[ -n "$py" ]]; then
  say "baseline: test/gpu/torch_bench.py"
  timeout 120 "$py" test/gpu/torch_bench.py "$out/torch.json" 2>&1 | tee -a "$log" || say "torch baseline failed"
fi
say "bench: test/gpu/bench.mjs"
timeout 300 "$node_cmd" test/gpu/bench.mjs "$out/bench.json" "$out/torch.json" 2>&1 | tee -a "$log" || say "bench failed"
say "done (status $status); results in $out"
exit "$status"
