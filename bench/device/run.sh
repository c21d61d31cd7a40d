#!/usr/bin/env bash
# The GPU run (issue 17), on a machine with a real GPU, from the repository root, with the
# release binary that `cargo xtask bench --device` staged at bench/device/scorelab (the GPU
# machine reaches no package registry: nothing is built there). Writes into $OUT (or
# target/device-run): machine.txt (GPU, driver, Vulkan ICDs), device-bench.json (the native
# benchmark: WGSL training and samplers at 10^4..10^6 particles, the tiled matmul, the CPU
# engine on this machine's cores) and device-bench.log. Bring them back and run
# `cargo xtask bench --device-report DIR` to write docs/device/<adapter>.{json,md}.
# QUICK=1 runs the smoke-sized benchmark (for trying the flow on lavapipe).
set -u
cd "$(dirname "$0")/../.."
out=${OUT:-target/device-run}
mkdir -p "$out"
bin=bench/device/scorelab
{
  date -u
  uname -a
  nproc
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
  ldconfig -p 2>/dev/null | grep -Ei "libvulkan|libEGL|libnvidia-glcore" | head
} > "$out/machine.txt" 2>&1
if [ ! -x "$bin" ]; then
  echo "no $bin: run cargo xtask bench --device on the build machine first" | tee -a "$out/device-bench.log"
  exit 2
fi
args=(bench)
[ "${QUICK:-0}" = 1 ] && args+=(--quick)
start=$SECONDS
RUST_LOG=warn timeout "${LIMIT_S:-480}" "$bin" "${args[@]}" > "$out/device-bench.json" 2> "$out/device-bench.log"
rc=$?
echo "device bench: rc $rc after $((SECONDS - start)) s" | tee -a "$out/device-bench.log"
cat "$out/machine.txt"
tail -30 "$out/device-bench.log"
exit $rc
