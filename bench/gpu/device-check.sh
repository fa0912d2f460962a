#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (the device tool's `run`, the working tree plus what bench/gpu/pack.sh
# says to carry): which adapter Dawn opens, the WebGPU conformance suites on it, backend expert
# calls per second and backend prefill throughput on --device webgpu against --device cpu on the same machine's
# cores, for the default model and the granite-shaped q4_0 one (generated here by the committed script).
# Everything lands in $OUT: summary.md (the tables), log.txt, results.tar.gz (every bench's json/md).
#   QUICK=1 for a short local rehearsal (lavapipe, default model only, fewer rows); DEVICES=webgpu skips the cpu peer;
#   CONFORMANCE_ONLY=1 stops after the suites; BACKEND_ONLY=1 runs only the expert-call benches; PHASES_ONLY=1 runs
#   only where a webgpu prefill's time goes
#   (bench/gpu/prefill-phases.ts; PHASE_CHUNKS="64 256" for several chunk sizes).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/device-check}
RES=$OUT/results
mkdir -p "$RES"
LOG=$OUT/log.txt
QUICK=${QUICK:-0}
START=$(date +%s)
say() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
BUDGET=${BUDGET:-480} # seconds for all steps: whatever is cut, the summary and the files still come back
step() { # step <seconds> <name> <command...>: runs with a limit (clipped to what is left), keeps going on failure
  local limit=$1 name=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if [ "$left" -lt 20 ]; then say "== $name: skipped (out of time)"; echo "| $name | skipped |" >>"$OUT/steps.md"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "== $name"
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  pkill -f 'gpu-backend/main.ts' 2>/dev/null # a bench cut by its limit leaves its backend child behind
  say "== $name: exit $rc"
  echo "| $name | $rc |" >>"$OUT/steps.md"
}

# --- runtime: Node, node_modules and the Vulkan loader, unless the machine has them
# (NVIDIA's Vulkan ICD is libGLX_nvidia.so.0, which needs glvnd's libGLdispatch: the loader alone finds no driver)
if [ -d .device/gl ] && ! { ldconfig -p | grep -q libvulkan.so.1 && ldconfig -p | grep -q libGLdispatch.so.0; }; then
  for f in .device/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# the project's pinned Node where pack.sh carried it (the figures then come from the same V8 as here), else the machine's
if [ -f .device/node.xz ]; then
  mkdir -p /tmp/node-bin && xz -dc .device/node.xz >/tmp/node-bin/node && chmod +x /tmp/node-bin/node
  export PATH=/tmp/node-bin:$PATH
fi
[ -d node_modules ] || tar -xJf .device/modules.tar.xz
if [ -z "${MOE_EDGE_SHARED:-}" ] && [ ! -d ../shared/fixtures ] && [ -f .device/shared.tar.xz ]; then
  mkdir -p /tmp/moe-edge-shared && tar -xJf .device/shared.tar.xz -C /tmp/moe-edge-shared
  export MOE_EDGE_SHARED=/tmp/moe-edge-shared
fi
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export PATH=$ROOT/node_modules/.bin:$PATH
{
  echo "# device check $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "- node $(node --version), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "- load: $(cat /proc/loadavg)"
  echo "- cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  command -v nvidia-smi >/dev/null && echo "- gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader)"
} >"$OUT/summary.md"
say "runtime ready: node $(node --version)"
echo "| step | exit |" >"$OUT/steps.md"; echo "|---|---|" >>"$OUT/steps.md"

ADAPTER=$(timeout 60 tsx bench/gpu/adapter.ts 2>>"$LOG")
echo "- adapter: $ADAPTER" >>"$OUT/summary.md"
say "adapter: $ADAPTER"
DEV=webgpu
[ "$QUICK" = 1 ] || echo "$ADAPTER" | grep -q '"adapter":"' || say "no hardware adapter: the webgpu rows will fail"

# --- conformance: the webgpu executor of the kernel suite, the WGSL trunk, remote prefill on --device webgpu
# (onnxruntime-web is not carried: the matmul cases compare with ts-ref and float64 only)
[ "${PHASES_ONLY:-0}" = 1 ] || [ "${BACKEND_ONLY:-0}" = 1 ] || step 300 conformance env CONFORMANCE_VERBOSE=1 CONFORMANCE_NO_ORT=1 vitest run --config bench/gpu/vitest.config.ts --reporter=verbose
grep -E "Test Files|Tests |webgpu conformance on|max \|logit diff\|" "$LOG" | sed 's/^/    /' >"$RES/conformance-summary.txt" || true

# CONFORMANCE_ONLY=1: the adapter and the suites alone (a rerun after a fix, a minute of device time)
[ "${CONFORMANCE_ONLY:-0}" = 1 ] && { cat "$RES/conformance-summary.txt" >>"$OUT/summary.md"; tail -c 3000 "$OUT/summary.md"; exit 0; }

# --- the granite-shaped model (seeded weights from the published config; the same script as here)
MODELS=models/default
if [ "$QUICK" != 1 ]; then
  step 240 make-granite tsx models/make-granite-shaped.ts --quant q4_0
  [ -f .cache/models/granite-shaped-q4_0/trunk.bin ] && MODELS="$MODELS .cache/models/granite-shaped-q4_0"
fi
SECS=2; CONC=1,4,16; LENGTHS=64,256,1024,2048
[ "$QUICK" = 1 ] && { SECS=1; CONC=1,4; LENGTHS=64,256; }
THREADS=$(nproc)

# --- where a webgpu prefill's time goes, phase by phase
for m in $MODELS; do
  n=$(basename "$m"); len=64,256,1024
  [ "$n" = default ] && len=64,256
  [ "${BACKEND_ONLY:-0}" = 1 ] && break
  for c in ${PHASE_CHUNKS:-64}; do
    step 180 "prefill phases $n chunk $c" sh -c "tsx bench/gpu/prefill-phases.ts --model '$m' --lengths $len --chunk $c > '$RES/phases-$n-chunk$c.md'"
  done
done
[ "${PHASES_ONLY:-0}" = 1 ] && DEVICES=none

# --- the webgpu device first (what only this machine can measure), then the cpu device on every core of the same
# machine as its peer: expert calls per second, then TTFT local vs remote and backend prefill throughput
for d in ${DEVICES:-$DEV cpu}; do
  [ "$d" = none ] && continue
  for m in $MODELS; do
    n=$(basename "$m")
    step 200 "backend $n $d" tsx bench/backend/run.ts --model "$m" --device "$d" --threads "$THREADS" --seconds "$SECS" \
      --concurrency "$CONC" --out "$RES/backend-$n-$d"
  done
  [ "${BACKEND_ONLY:-0}" = 1 ] && continue
  for m in $MODELS; do
    n=$(basename "$m"); len=$LENGTHS
    [ "$n" = default ] || len=64,256,1024
    step 240 "prefill $n $d" tsx bench/prefill/run.ts --models "$m" --device "$d" --threads "$THREADS" --lengths "$len" \
      --rtt 0,20 --rounds 1 --concurrency "$CONC" --out "$RES/prefill-$n-$d"
  done
done

# --- the summary: every table, the steps' exit codes
{
  echo; echo "## steps"; echo; cat "$OUT/steps.md"
  echo; echo "## conformance"; echo; cat "$RES/conformance-summary.txt"
  for f in "$RES"/phases-*.md "$RES"/backend-*.md "$RES"/prefill-*.md; do [ -f "$f" ] && { echo; echo "## $(basename "$f" .md)"; echo; grep -v '^# ' "$f"; }; done
} >>"$OUT/summary.md"
tar -czf "$OUT/results.tar.gz" -C "$OUT" results
rm -rf "$RES" "$OUT/steps.md"
say "done"
tail -c 6000 "$OUT/summary.md"
