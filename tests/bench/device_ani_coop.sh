#!/usr/bin/env bash
# ANI-2x tensor-core (cooperative matrix) GEMMs on the lent GPU, in one device call: the
# accuracy test against float64 references (tests/ani_coop.rs, WGMD_REQUIRE_COOP=1 so a
# missing tensor-core path fails), then `wgmd bench ani` with and without tensor cores on the
# same device (WGMD_COOP=0 opens the device without the feature: the previous kernels;
# WGMD_COOP_STAGED=0 the tensor-core kernels without workgroup-memory staging).
#
# Here (once): the Vulkan loader into .gl/ (../shared/WGPU_NOTES.md). Then
#   tests/bench/device_ani_coop.sh prepare
# packs the release binary, the ani_coop test binary (stripped, xz) and the ANI-2x networks
# (xz) into .anidev/ (git-ignored; ~62 MB, inside the 64 MiB a device call may carry).
# On the device, with carry [".gl", ".anidev"]:
#   bash tests/bench/device_ani_coop.sh device
set -euo pipefail
SIZES="${SIZES:-3000 10002 100002}"
# The packed folder (ignored by git); DEV=other/folder where the device tool copies another
# checkout than this one.
DEV="${DEV:-.anidev}"
case "${1:-}" in
prepare)
    cargo build --release --bin wgmd
    cargo test --release --test ani_coop --no-run
    test_bin=$(ls -t target/release/deps/ani_coop-* | grep -v '\.d$' | head -1)
    mkdir -p .anidev
    rm -f .anidev/wgmd.xz .anidev/ani_coop.xz
    strip -o .anidev/wgmd target/release/wgmd
    strip -o .anidev/ani_coop "$test_bin"
    xz -f -6 -T2 .anidev/wgmd .anidev/ani_coop
    # The model and data (~52 MB compressed) only once.
    if [ ! -f .anidev/files.tar.xz ]; then
        rm -rf .anidev/stage && mkdir -p .anidev/stage/models/ani-2x_8x .anidev/stage/data
        m=../shared/models
        cp $m/ani-2x_8x.info .anidev/stage/models/
        cp $m/ani-2x_8x/*.params $m/ani-2x_8x/sae_linfit.dat .anidev/stage/models/ani-2x_8x/
        for k in 0 1 2 3 4 5 6 7; do
            mkdir -p .anidev/stage/models/ani-2x_8x/train$k
            cp -r $m/ani-2x_8x/train$k/networks .anidev/stage/models/ani-2x_8x/train$k/
        done
        cp ../shared/data/ani2x_reference.json .anidev/stage/data/
        tar -C .anidev/stage -cf - models data | xz -6 -T2 > .anidev/files.tar.xz
        rm -rf .anidev/stage
    fi
    du -sh .anidev
    ;;
device)
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
    out=${OUT:-/tmp}
    mkdir -p /tmp/coop
    DEV="$DEV" python3 - <<'PY'
import lzma, shutil, tarfile
import os
dev = os.environ["DEV"]
for b in ("wgmd", "ani_coop"):
    shutil.copyfileobj(lzma.open(f"{dev}/{b}.xz"), open(f"/tmp/coop/{b}", "wb"))
tarfile.open(f"{dev}/files.tar.xz").extractall("/tmp/coop")
PY
    chmod +x /tmp/coop/wgmd /tmp/coop/ani_coop
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv || true
    export WGMD_ANI_MODEL=/tmp/coop/models/ani-2x_8x.info WGMD_ANI_DATA=/tmp/coop/data
    # The accuracy tests with the default (staged) wide kernel, then with the direct one.
    for staged in 1 0; do
        echo "== ani_coop, WGMD_COOP_STAGED=$staged"
        WGMD_COOP_STAGED=$staged WGMD_REQUIRE_COOP=1 timeout 180 /tmp/coop/ani_coop --nocapture --test-threads 1 \
            2>&1 | grep -vE '^$|XDG_RUNTIME|CooperativeMatrixProperties' || true
    done 2>&1 | tee "$out/ani_coop_test.log"
    info=$WGMD_ANI_MODEL
    # One untimed call first: the first bench of call 2 ran on a cold GPU (its force stage,
    # which no GEMM choice touches, took 6x its usual time).
    /tmp/coop/wgmd bench ani --model "$info" --atoms 3000 --precision f16 --reps 20 --json > /dev/null || true
    for n in $SIZES; do
        # Each run under a time limit: a hung kernel must not take the whole call.
        w=(timeout 120 /tmp/coop/wgmd bench ani --model "$info" --atoms "$n" --reps 20 --json --precision)
        "${w[@]}" f16 || true
        WGMD_COOP_STAGED=0 "${w[@]}" f16 || true
        WGMD_COOP=0 "${w[@]}" f16 || true
        WGMD_COOP=0 "${w[@]}" f32 || true
    done 2>&1 | tee "$out/bench.jsonl"
    ;;
*)
    echo "usage: $0 prepare|device" >&2
    exit 2
    ;;
esac
