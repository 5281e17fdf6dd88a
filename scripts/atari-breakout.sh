#!/usr/bin/env bash
# Breakout at the card's protocol budget (120k updates at batch 32, Tianshou's offline Atari
# protocol), in the order the comparison needs them:
#   1. bc and discrete_bcq, seeds 0-2, bf16 (both at once, one worker each)
#   2. discrete_cql, seed 0, bf16
#   3. bc, seeds 0-2, fp32: bf16 against fp32 for one algorithm
# Hours of CPU in all. Every step is a `bench sweep`, which keeps complete runs and resumes
# stopped ones from their last checkpoint (one every 40k updates), so running this again after
# an interruption continues where it stopped:
#   nohup bash scripts/atari-breakout.sh > atari.log 2>&1 &
# bf16 is refused on a CPU without native bf16: there, run with PRECISION=fp32.
# Then: bench leaderboard --results results/atari; bench plot --results results/atari
set -euo pipefail
RESULTS=${1:-results/atari}
PRECISION=${PRECISION:-bf16}
BENCH=${BENCH:-bench}
sweep() { "$BENCH" sweep --dataset atari-breakout --results-dir "$RESULTS" --quiet "$@"; }
sweep --algo bc,discrete_bcq --seeds 0-2 --precision "$PRECISION" --workers 2
sweep --algo discrete_cql --seeds 0 --precision "$PRECISION" --workers 1
if [ "$PRECISION" != fp32 ]; then
  sweep --algo bc --seeds 0-2 --precision fp32 --workers 1
fi
