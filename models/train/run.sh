#!/usr/bin/env bash
# The default model's pipeline in one command (see models/README.md). Stages:
#   all   (npm run train:default) corpus split + sums -> BPE tokenizer -> token ids -> training -> eval
#   eval  from the trained checkpoint in models/train/out/hf: PyTorch figures, q8_0 conversion, smoke test,
#         swap into models/default, engine figures and checks, model card
#   check (npm run eval:default) the committed models/default against the committed PyTorch figures
#         (plus the f32 greedy check when a checkpoint is present); writes nothing outside models/train/out
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}  # Debian's python3-torch installs for the system Python
# 2 threads for PyTorch's own kernels (bf16 matmuls go through oneDNN/OpenMP); threads that sleep instead
# of spinning: on a shared machine, spinning threads made steps ~5x slower
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
T=models/train
OUT=$T/out
DATA=$OUT/data
HF=$OUT/hf
DEFAULT=models/default
CORPUS=../shared/corpus
stage=${1:-all}

step() { echo "== $* ($(date +%H:%M:%S))"; }

eval_stage() {
  step "PyTorch evaluation (f32)"
  "$PY" $T/evaluate.py --data $DATA --hf $HF --out $OUT/eval-torch.json
  step "convert to q8_0"
  rm -rf $OUT/default-q8
  npm run -s cli -- convert --in $HF --out $OUT/default-q8 --quant q8_0 --name default
  step "smoke test before the swap"
  npm run -s cli -- generate --model $OUT/default-q8 --prompt "def " --max-tokens 16 --temperature 0 --json
  step "swap into $DEFAULT"
  # objects first, manifest last: its presence marks a complete model
  rm -rf $DEFAULT/manifest.json $DEFAULT/experts $DEFAULT/trunk.bin
  cp -r $OUT/default-q8/experts $OUT/default-q8/trunk.bin $OUT/default-q8/tokenizer.json $OUT/default-q8/tokenizer_config.json $DEFAULT/
  cp $OUT/default-q8/manifest.json $DEFAULT/manifest.json
  cp $OUT/eval-torch.json $DEFAULT/eval-torch.json
  step "engine evaluation"
  npx tsx $T/engine-eval.ts --data $DATA --torch $DEFAULT/eval-torch.json --model $DEFAULT --hf $HF --log "$(cat $OUT/train-log-path)" --out $DEFAULT/eval.json
  step "model card"
  npx tsx $T/card.ts $DEFAULT
}

case "$stage" in
  all)
    step "corpus splits and arithmetic"
    "$PY" $T/data.py --corpus $CORPUS --out $DATA
    step "BPE tokenizer"
    "$PY" $T/bpe.py --data $DATA --out $HF --vocab 3072
    step "token ids"
    npx tsx $T/encode.ts $DATA $HF
    step "training"
    log=$T/logs/train-$(date +%Y%m%d-%H%M).log
    echo "$log" > $OUT/train-log-path
    "$PY" $T/train.py --data $DATA --hf $HF --log "$log"
    eval_stage
    ;;
  eval)
    eval_stage
    ;;
  check)
    step "held-out splits"
    "$PY" $T/data.py --corpus $CORPUS --out $DATA > /dev/null
    hf=()
    [ -f $HF/model.safetensors ] && hf=(--hf $HF)
    npx tsx $T/engine-eval.ts --data $DATA --torch $DEFAULT/eval-torch.json --model $DEFAULT "${hf[@]}" --out $OUT/eval-check.json
    ;;
  *)
    echo "usage: run.sh [all|eval|check]" >&2
    exit 2
    ;;
esac
