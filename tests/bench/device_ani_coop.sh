#!/usr/bin/env bash
# ANI-2x tensor-core (cooperative matrix) GEMMs on the lent GPU, in one device call: the
# accuracy test against float64 references (tests/ani_coop.rs, WGMD_REQUIRE_COOP=1 so a
# missing tensor-core path fails), then `wgmd bench ani` f16 and f32 as built and with the
# A/B switch in $AB (default WGMD_ANI_FULL_AEV=1: all AEV columns), then — with ANCHOR=1 —
# the full tests/bench/device_ani.sh (wgmd f32/f16 beside TorchANI 2.9, same call).
#
# Here (once): the Vulkan loader into .gl/ and the TorchANI + ASE wheels into .anidev/whl/
# (see device_ani.sh). Then
#   tests/bench/device_ani_coop.sh prepare
# packs what device_ani.sh packs plus the ani_coop test binary (stripped, xz) and the
# TorchANI reference data into .anidev/ (git-ignored; ~64 MB with the wheels).
# On the device, with carry [".gl", ".anidev"]:
#   ANCHOR=1 bash tests/bench/device_ani_coop.sh device
set -euo pipefail
SIZES="${SIZES:-3000 10002 100002}"
case "${1:-}" in
prepare)
    bash tests/bench/device_ani.sh prepare
    cargo test --release --no-default-features --target-dir target/headless --test ani_coop --no-run
    test_bin=$(ls -t target/headless/release/deps/ani_coop-* | grep -v '\.d$' | head -1)
    rm -f .anidev/ani_coop.xz
    strip -o .anidev/ani_coop "$test_bin"
    xz -f -9 -T2 .anidev/ani_coop
    mkdir -p .anidev/data
    cp ../shared/data/ani2x_reference.json .anidev/data/
    du -sh .anidev
    ;;
device)
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
    out=${OUT:-/tmp}
    python3 -c "
import lzma, shutil
for b in ('wgmd', 'ani_coop'):
    shutil.copyfileobj(lzma.open(f'.anidev/{b}.xz'), open(f'/tmp/{b}', 'wb'))"
    chmod +x /tmp/wgmd /tmp/ani_coop
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv || true
    export WGMD_ANI_MODEL=$PWD/.anidev/models/ani-2x_8x.info WGMD_ANI_DATA=$PWD/.anidev/data
    echo "== ani_coop (tensor cores required)"
    WGMD_REQUIRE_COOP=1 timeout 180 /tmp/ani_coop --nocapture --test-threads 1 2>&1 \
        | grep -vE '^$|XDG_RUNTIME|CooperativeMatrixProperties' | tee "$out/ani_coop_test.log" || true
    info=$WGMD_ANI_MODEL
    # Untimed first (cold start: the call's first f16 benchmark runs every kernel 3-4x slower).
    timeout 120 /tmp/wgmd bench ani --model "$info" --atoms 3000 --precision f16 --reps 5 --json > /dev/null || true
    for n in $SIZES; do
        for p in f16 f32; do
            # Each run under a time limit: a hung kernel must not take the whole call.
            w=(timeout 120 /tmp/wgmd bench ani --model "$info" --atoms "$n" --reps 20 --json --precision "$p")
            "${w[@]}" || true
            env ${AB:-WGMD_ANI_FULL_AEV=1} "${w[@]}" || true
        done
    done 2>&1 | tee "$out/bench_ab.jsonl"
    if [ "${ANCHOR:-0}" = 1 ]; then
        exec bash tests/bench/device_ani.sh device
    fi
    ;;
*)
    echo "usage: $0 prepare|device" >&2
    exit 2
    ;;
esac
