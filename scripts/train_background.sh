#!/usr/bin/env bash
# `make train`: continue the built-in model's run, and keep it going through crashes.
#
#   scripts/train_background.sh RUN_DIR MINUTES [PYTHON]
#
# Resumes RUN_DIR when it holds a checkpoint (last.pt), else warm-starts from the shipped weights with the
# recipe they were trained with (INIT_ARGS, default: the camera-loss options of weights v4; a resumed run
# keeps its own settings, stored with it). If the
# trainer dies (an exception, an OOM kill), it is started again from its last checkpoint, up to
# MAX_RESTARTS times (default 5) with a pause between tries, so one bad step does not stop training until
# someone notices. A clean finish (the time budget used up, or SIGTERM, which checkpoints) ends the loop.
# Meant to run under nohup; everything goes to RUN_DIR.log.
set -u
run=${1:?run folder}
minutes=${2:?minutes}
py=${3:-.venv/bin/python}
max_restarts=${MAX_RESTARTS:-5}
pause=${RESTART_PAUSE_S:-30}
weights=models/weights/onepass-tiny.safetensors
read -r -a init_args <<< "${INIT_ARGS:---direction-weight 0.1 --sign-invariant-rotation}"

stop=0
trap 'stop=1; kill -TERM "$child" 2>/dev/null' TERM INT
for ((attempt = 0; attempt <= max_restarts; attempt++)); do
  if [ -f "$run/last.pt" ]; then from=(--resume); else from=(--init-weights "$weights" "${init_args[@]}"); fi
  "$py" -m app train --out "$run" "${from[@]}" --minutes "$minutes" --no-progress --threads 1 &
  child=$!
  wait "$child"
  rc=$?
  # `wait` returns early when our trap fires: wait again for the trainer's checkpoint and exit
  if [ "$stop" = 1 ]; then wait "$child" 2>/dev/null; exit 0; fi
  if [ "$rc" = 0 ]; then exit 0; fi
  echo "train_background: trainer exited with status $rc (attempt $((attempt + 1)) of $((max_restarts + 1)))"
  [ "$attempt" -lt "$max_restarts" ] && sleep "$pause"
done
echo "train_background: giving up after $((max_restarts + 1)) attempts; see the traceback above"
exit 1
