#!/usr/bin/env bash
# How the models in resources/models/ were made: the exact commands, in order. Each `run` trains in the
# background-safe way the trainer always does (checkpoints every few minutes; `resume RUN` continues one that
# was stopped). Runs go to $RUNS, never into git; only the exported weights and cards in resources/models/ ship.
#
# Usage: bash scripts/train_shipped_models.sh [denoiser|denoiser-two-hours|sr-x2|sr-x4|lowdose|vdsr-x2|vdsr-x4|srcnn-x2|srcnn-x4|srgan|gan-denoisers|cyclegan|all]   (from the repository root, after
# `bash scripts/setup.sh`). On 2 CPU cores each stage takes 45-95 minutes; the timings are in README.md.
# OMP_NUM_THREADS=1 lets two stages share two cores without OpenMP threads stalling each other.
set -euo pipefail

PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs}
POOL=${POOL:-$RUNS/pool}
MODELS=resources/models
SOURCE="from MedViewer's training pool (trainer/training_pool.py: scikit-image's and pydicom's bundled images except the held-out six, simulated phantoms, radiographs and head CT)"
SOURCE_V3="from MedViewer's training pool v3 (trainer/training_pool.py: scikit-image's and pydicom's bundled images except the held-out six, simulated phantoms, radiographs, head CT and dead-leaves images)"
SOURCE_V4="from MedViewer's training pool v4 (trainer/training_pool.py: scikit-image's and pydicom's bundled images except the held-out six, simulated phantoms, radiographs, head CT, dead-leaves images, textured dead-leaves images and the stereo motorcycle photograph)"
SOURCE_V7="from MedViewer's training pool v7 (trainer/training_pool.py: scikit-image's and pydicom's bundled images except the held-out six, simulated phantoms, radiographs, head CT, dead-leaves images, textured dead-leaves images, the stereo motorcycle photograph, and the photographs' colour planes (full, 0.7 and half size) and 0.7-scale copies)"
SOURCE_V8="from MedViewer's training pool v8 (trainer/training_pool.py: scikit-image's and pydicom's bundled images except the held-out six, simulated phantoms, radiographs, head CT, dead-leaves images, textured dead-leaves images, the stereo motorcycle photograph, and the photographs' colour planes (at five scales) and 0.85, 0.7 and 0.6-scale copies: photographs half of the frames; earlier stages on pools v1-v7)"
# The shipped default trained on more than its recipe's noise (noise_maps), so its card states its own limits.
MSDENOISER_LIMITS="Blind Gaussian denoiser trained on sigma 0-55 (in 8-bit units of the image's range), half of the noisy patches with a sigma that varies over the patch (smooth fields, or growing with the signal as sqrt(offset + value)), on scikit-image and pydicom images, simulated phantoms and synthetic textures, never on clinical data; Poisson noise at very low counts and spatially correlated noise (as in reconstructed low-dose CT) are outside its training. It can remove faint low-contrast detail along with noise. Not a medical device: never read the enhanced image in place of the acquired one."
DOMAINS_SOURCE="from MedViewer's translation domains (trainer/translation_domains.py): domain A (X-ray) = 96 simulated radiographs (exp(-line integral) through soft-tissue and hollow-bone ellipsoids) and 12 digitally reconstructed radiographs of the synthetic head CT at 0-165 degrees; domain B (CT/MR) = 22 slices of the synthetic head CT, each at brain, subdural and bone windows (66 images), and the 3 CT/MR images of pydicom's test files that are not held out; held out, never trained on: 8 radiographs of unseen seeds, 3 DRRs from unseen angles, CT_small and MR_small"
# The shipped models' validation split is 8 % of the pool; the benchmark's six held-out images are the test set.
SPLIT=(val_fraction=0.08 test_fraction=0 workers=1)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

limits() {  # the recipe's stated limits (the first runs were made before recipes stated them)
    "$PYTHON" -c "from trainer.recipe import load_recipe, shipped_recipes; print(load_recipe(shipped_recipes()['$1']).recipe.limits)"
}

pool() {
    # v1: without the flat phantoms or dead leaves; v2: without the dead leaves; v3: without the textured dead
    # leaves and the motorcycle photograph; v4: all of it (the defaults); v6: v4 and the photographs' variants;
    # v7: v6 and the colour planes at 0.7 and half size; v8: photographs half of the frames (more scales, fewer
    # generated images); v8a: v8 with half the flat phantoms and dead leaves too; v9: v8 with twice them (the
    # msdenoiser-two-hours recipe). Pool v5 was a one-off (README.md).
    local before_v4="textured_leaves=0, motorcycle=False"
    [ -d "$POOL-v1" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v1'), flat_phantoms=0, leaves=0, $before_v4)"
    [ -d "$POOL-v2" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v2'), leaves=0, $before_v4)"
    [ -d "$POOL-v3" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v3'), $before_v4)"
    [ -d "$POOL-v4" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v4'))"
    [ -d "$POOL-v6" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v6'), variants=True)"
    [ -d "$POOL-v7" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v7'), variants=True, plane_scales=(1.0, 0.7, 0.5))"
    [ -d "$POOL-v8a" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v8a'), variants=True, plane_scales=(1.0, 0.85, 0.7, 0.6, 0.5), photo_scales=(0.85, 0.7, 0.6), phantoms=24, radiographs=12, flat_phantoms=24, leaves=32, textured_leaves=48)"
    [ -d "$POOL-v8" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v8'), variants=True, plane_scales=(1.0, 0.85, 0.7, 0.6, 0.5), photo_scales=(0.85, 0.7, 0.6), phantoms=24, radiographs=12, textured_leaves=48)"
    [ -d "$POOL-v9" ] || "$PYTHON" -c "from pathlib import Path; from trainer.training_pool import write_training_pool; write_training_pool(Path('$POOL-v9'), variants=True, plane_scales=(1.0, 0.85, 0.7, 0.6, 0.5), photo_scales=(0.85, 0.7, 0.6), phantoms=24, radiographs=12, flat_phantoms=96, leaves=128, textured_leaves=48)"
}

denoiser() {
    # 14000 steps of the recipe on pool v1 (stopped there: the held-out Shepp-Logan phantom showed that hard,
    # rasterised edges were missing from the pool), then 12000 steps from those weights on pool v2, then
    # 34000 steps from those on pool v2 with 128x128 patches (batch 4, the same pixels per step as 64x64 x 16;
    # the network's 123-pixel receptive field then sees whole flat regions and edges), lr 3e-4, two threads;
    # then 26000 steps from those on pool v3 (v2 and 64 dead-leaves images: hard edges of every contrast);
    # then 10000 steps on pool v3 with amount_exponent=1.5 (more weight on strong noise) at lr 2e-4, 42000 on
    # pool v4 (textured leaves, motorcycle) at lr 3e-4, and 9000 + 30000 on pool v4 with noise_maps=0.5 (half the
    # Gaussian patches get a sigma that varies over the patch) at lr 2e-4. The pool-v4 stage alone was not
    # shippable: it lost 2-4 dB on non-stationary noise, which noise_maps won back (README.md, "Robustness to
    # non-stationary noise").
    "$PYTHON" -m trainer run msdenoiser --data "$POOL-v1" --out "$RUNS" --name msdenoiser-v1 --set "${SPLIT[@]}" steps=26000 &
    local trainer=$!
    until [ -e "$RUNS/msdenoiser-v1/checkpoints/step-00014000.pt" ]; do sleep 10; done
    kill -TERM "$trainer"; wait "$trainer" || true  # SIGTERM: a last checkpoint, exit 130; export takes step 14000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v1" --to "$RUNS/stage" --id msdenoiser-v1
    "$PYTHON" -m trainer run msdenoiser --data "$POOL-v2" --out "$RUNS" --name msdenoiser-v2 \
        --init "$RUNS/stage/msdenoiser-v1.safetensors" --set "${SPLIT[@]}" optimiser.lr=5e-4 warmup_steps=200 steps=12000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v2" --to "$RUNS/stage" --id msdenoiser-v2 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v2" --out "$RUNS" --name msdenoiser-v3 \
        --init "$RUNS/stage/msdenoiser-v2.safetensors" --set "${SPLIT[@]}" patch=128 batch=4 optimiser.lr=3e-4 \
        warmup_steps=200 steps=34000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v3" --to "$RUNS/stage" --id msdenoiser-v3 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v3" --out "$RUNS" --name msdenoiser-v5 \
        --init "$RUNS/stage/msdenoiser-v3.safetensors" --set "${SPLIT[@]}" patch=128 batch=4 optimiser.lr=3e-4 \
        warmup_steps=200 steps=26000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v5" --to "$RUNS/stage" --id msdenoiser-v5 --float16
    local later=(patch=128 batch=4 warmup_steps=200 amount_exponent=1.5)
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v3" --out "$RUNS" --name msdenoiser-v6 \
        --init "$RUNS/stage/msdenoiser-v5.safetensors" --set "${SPLIT[@]}" "${later[@]}" optimiser.lr=2e-4 steps=10000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v6" --to "$RUNS/stage" --id msdenoiser-v6 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v4" --out "$RUNS" --name msdenoiser-v7 \
        --init "$RUNS/stage/msdenoiser-v6.safetensors" --set "${SPLIT[@]}" "${later[@]}" optimiser.lr=3e-4 steps=42000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v7" --to "$RUNS/stage" --id msdenoiser-v7 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v4" --out "$RUNS" --name msdenoiser-v8 \
        --init "$RUNS/stage/msdenoiser-v7.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 \
        optimiser.lr=2e-4 steps=9000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v8" --to "$RUNS/stage" --id msdenoiser-v8 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v4" --out "$RUNS" --name msdenoiser-v9 \
        --init "$RUNS/stage/msdenoiser-v8.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 \
        optimiser.lr=2e-4 steps=30000
    # The ninth stage: 24000 steps from the eighth on pool v6 (v4 with the photographs' colour planes and
    # 0.7-scale copies, twice the photographs' share of the patches), same settings.
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v9" --to "$RUNS/stage" --id msdenoiser-v9 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v6" --out "$RUNS" --name msdenoiser-v10 \
        --init "$RUNS/stage/msdenoiser-v9.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 \
        optimiser.lr=2e-4 steps=24000
    # The tenth: 14000 steps from the ninth on pool v7 (v6 with the colour planes at 0.7 and half size too) at
    # lr 1e-4.
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v10" --to "$RUNS/stage" --id msdenoiser-v10 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v7" --out "$RUNS" --name msdenoiser-v11 \
        --init "$RUNS/stage/msdenoiser-v10.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 \
        optimiser.lr=1e-4 steps=14000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v11" --to "$RUNS/stage" --id msdenoiser-v11 --float16
    # The eleventh: 6000 steps from the tenth on pool v8a (v8 with half the flat phantoms and dead leaves too;
    # stopped there because the Shepp-Logan phantom lost 0.7 dB), lr 1.5e-4 of a 24000-step schedule; then
    # 20000 steps on pool v8 at lr 1.5e-4; the mean of those weights and the tenth's (a model soup); from it
    # 11000 steps on pool v8 in batches of 8 at lr 7e-5; and last the L2 loss (the mean squared error that
    # PSNR measures; every stage before trained on L1) for 6000 steps at lr 3e-5. What ships is the mean of
    # those weights and the tenth's: alone, the L2 stage lost 0.39 dB on CT_small under the split noise field.
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v8a" --out "$RUNS" --name msdenoiser-v12 \
        --init "$RUNS/stage/msdenoiser-v11.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 \
        optimiser.lr=1.5e-4 steps=24000 &
    local eleventh=$!
    until [ -e "$RUNS/msdenoiser-v12/checkpoints/step-00006000.pt" ]; do sleep 10; done
    kill -TERM "$eleventh"; wait "$eleventh" || true
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v12" --to "$RUNS/stage" --id msdenoiser-v12 --float16 --step 6000
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v8" --out "$RUNS" --name msdenoiser-v13 \
        --init "$RUNS/stage/msdenoiser-v12.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 \
        optimiser.lr=1.5e-4 steps=20000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v13" --to "$RUNS/stage" --id msdenoiser-v13 --float16
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v13" --to "$RUNS/stage" --id msdenoiser-soup --float16 \
        --average-with "$RUNS/stage/msdenoiser-v11.safetensors"
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v8" --out "$RUNS" --name msdenoiser-v14 \
        --init "$RUNS/stage/msdenoiser-soup.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 batch=8 \
        optimiser.lr=7e-5 steps=11000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v14" --to "$RUNS/stage" --id msdenoiser-v14 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v8" --out "$RUNS" --name msdenoiser-v15 \
        --init "$RUNS/stage/msdenoiser-v14.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 batch=8 \
        optimiser.lr=3e-5 loss.pixel=l2 validate_every=2000 steps=6000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v15" --to "$RUNS/stage" --id msdenoiser-eleventh --float16 \
        --average-with "$RUNS/stage/msdenoiser-v11.safetensors"
    # The twelfth, shipped: 24000 steps of the L2 loss from the eleventh on pool v8 at lr 3e-5, in bfloat16
    # autocast (3.4x faster on a CPU with AMX; 45 min here). Its card runs it as an x4 self-ensemble.
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser --data "$POOL-v8" --out "$RUNS" --name msdenoiser-v20 \
        --init "$RUNS/stage/msdenoiser-eleventh.safetensors" --set "${SPLIT[@]}" "${later[@]}" noise_maps=0.5 \
        batch=8 optimiser.lr=3e-5 loss.pixel=l2 run.precision=bfloat16 validate_every=4000 checkpoint_every=4000 \
        steps=24000
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v20" --to "$MODELS" --id msdenoiser --float16 --default \
        --self-ensemble 4 --step 24000 --name "Blind denoiser (msdenoiser)" --data-source "$SOURCE_V8" \
        --limits "$MSDENOISER_LIMITS"
}

denoiser_two_hours() {
    # Not shipped: the msdenoiser-two-hours recipe, one run from random weights on pool v9 (2 h 20 min here in
    # bfloat16, README.md "A one-run schedule"), exported beside the runs for comparison with the staged default.
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run msdenoiser-two-hours --data "$POOL-v9" --out "$RUNS" \
        --name msdenoiser-two-hours --set "${SPLIT[@]}"
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-two-hours" --to "$RUNS/two-hours" --id msdenoiser --float16 \
        --self-ensemble 4
}

super_resolution() {
    local scale=$1 default=()
    [ "$scale" = 2 ] && default=(--default)
    "$PYTHON" -m trainer run "fastsr-x$scale" --data "$POOL-v$2" --out "$RUNS" --name "fastsr-x$scale-v1" --set "${SPLIT[@]}" ${3:+steps=$3}
    "$PYTHON" -m trainer export "$RUNS/fastsr-x$scale-v1" --to "$MODELS" --id "fastsr-x$scale" --float16 "${default[@]}" \
        --name "Fast super-resolution x$scale (fastsr)" --data-source "$SOURCE" --limits "$(limits "fastsr-x$scale")"
}

lowdose() {
    # The low-dose denoiser fine-tunes the default denoiser's eighth stage (msdenoiser-v9, exported by
    # denoiser()) on Poisson-Gaussian noise (the recipe from scratch needs ~3x the steps): 9000 steps on pool v4
    # with the later stages' 128x128 patches in batches of 4, lr 2e-4, warm-up 200, two threads. (The first
    # shipped low-dose model fine-tuned the second stage, msdenoiser-v2, at lr 5e-4 on pool v2.)
    "$PYTHON" -m trainer export "$RUNS/msdenoiser-v9" --to "$RUNS/stage" --id msdenoiser-v9 --float16
    OMP_NUM_THREADS=2 "$PYTHON" -m trainer run lowdose-denoiser --data "$POOL-v4" --out "$RUNS" --name lowdose-v2 \
        --init "$RUNS/stage/msdenoiser-v9.safetensors" --set "${SPLIT[@]}" patch=128 batch=4 optimiser.lr=2e-4 \
        warmup_steps=200 steps=9000
    "$PYTHON" -m trainer export "$RUNS/lowdose-v2" --to "$MODELS" --id lowdose-denoiser --float16 \
        --name "Low-dose denoiser (msdenoiser)" --data-source "$SOURCE_V4" --limits "$(limits lowdose-denoiser)"
}

source_method() {  # the source projects' super-resolution networks, each its recipe as it stands, on pool v1
    local recipe=$1 name=$2
    "$PYTHON" -m trainer run "$recipe" --data "$POOL-v1" --out "$RUNS" --name "$recipe-v1" --set "${SPLIT[@]}"
    "$PYTHON" -m trainer export "$RUNS/$recipe-v1" --to "$MODELS" --id "$recipe" --float16 \
        --name "$name" --data-source "$SOURCE" --limits "$(limits "$recipe")"
}

srgan() {
    # The L1 twin first (its recipe as it stands), then SRGAN from its weights, as the paper did: pretrain_steps=0
    # because the pre-training is the twin. Adversarial runs export their last checkpoint.
    source_method srresnet-cbam-x4 "SRResNet-CBAM x4 (L1 twin of SRGAN)"
    "$PYTHON" -m trainer run srgan-cbam-x4 --data "$POOL-v1" --out "$RUNS" --name srgan-cbam-x4-v1 \
        --init "$MODELS/srresnet-cbam-x4.safetensors" --set "${SPLIT[@]}" pretrain_steps=0 steps=1500
    "$PYTHON" -m trainer export "$RUNS/srgan-cbam-x4-v1" --to "$MODELS" --id srgan-cbam-x4 --float16 \
        --name "SRGAN-CBAM x4" --data-source "$SOURCE" --limits "$(limits srgan-cbam-x4)"
}

gan_denoisers() {  # the source projects' GAN denoisers, each its recipe as it stands, on pool v2
    local recipe name
    for recipe in pix2pix-denoiser dagan-denoiser; do
        name=$([ "$recipe" = pix2pix-denoiser ] && echo "pix2pix U-Net GAN denoiser" || echo "DAGAN denoiser")
        "$PYTHON" -m trainer run "$recipe" --data "$POOL-v2" --out "$RUNS" --name "$recipe-v1" --set "${SPLIT[@]}"
        "$PYTHON" -m trainer export "$RUNS/$recipe-v1" --to "$MODELS" --id "$recipe" --float16 \
            --name "$name" --data-source "$SOURCE" --limits "$(limits "$recipe")"
    done
}

cyclegan() {
    # Unpaired domains from trainer/translation_domains.py (A: X-ray-like, B: CT/MR); CycleGAN keeps float32
    # (InstanceNorm statistics) and exports both generators (cyclegan-xray-ct and cyclegan-xray-ct-reverse).
    local domains=$RUNS/domains
    [ -d "$domains" ] || "$PYTHON" -c "from pathlib import Path; from trainer.translation_domains import write_translation_domains; write_translation_domains(Path('$domains'))"
    "$PYTHON" -m trainer run cyclegan-xray-ct --data "$domains/A" "$domains/B" --out "$RUNS" --name cyclegan-xray-ct-v1 --set workers=1
    "$PYTHON" -m trainer export "$RUNS/cyclegan-xray-ct-v1" --to "$MODELS" --id cyclegan-xray-ct \
        --name "CycleGAN X-ray to CT-like" --data-source "$DOMAINS_SOURCE" --limits "$(limits cyclegan-xray-ct)"
}

pool
case "${1:-all}" in
    denoiser) denoiser ;;
    denoiser-two-hours) denoiser_two_hours ;;
    sr-x2) super_resolution 2 1 ;;
    sr-x4) super_resolution 4 2 22000 ;;
    lowdose) lowdose ;;
    vdsr-x2 | vdsr-x4) source_method "$1" "VDSR x${1#vdsr-x}" ;;
    srcnn-x2 | srcnn-x4) source_method "$1" "SRCNN x${1#srcnn-x}" ;;
    srgan) srgan ;;
    gan-denoisers) gan_denoisers ;;
    cyclegan) cyclegan ;;
    all)
        denoiser; super_resolution 2 1; super_resolution 4 2 22000; lowdose
        for scale in 2 4; do source_method "vdsr-x$scale" "VDSR x$scale"; source_method "srcnn-x$scale" "SRCNN x$scale"; done
        srgan; gan_denoisers; cyclegan
        ;;
    *) echo "usage: $0 [denoiser|denoiser-two-hours|sr-x2|sr-x4|lowdose|vdsr-x2|vdsr-x4|srcnn-x2|srcnn-x4|srgan|gan-denoisers|cyclegan|all]" >&2; exit 2 ;;
esac
