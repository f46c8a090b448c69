// Batched 1-D complex FFTs along one axis of a 3-D grid: mixed-radix Stockham (radices 2, 3,
// 4, 5, 7, 9), one dispatch per axis. Driver and float64 twin: `forces::fft`.
//
// Grid layout: element (ix, iy, iz) of an (nx, ny, nz) grid sits at (ix * ny + iy) * nz + iz.
// Complex values are stored as the bits of vec2f in vec2u (so a kernel that reuses the buffer
// for integer data never loads an integer pattern as a float).
//
// Each workgroup loads `batch` whole lines into workgroup memory (lines adjacent in memory go
// to adjacent threads, so strided axes still read contiguous runs), runs every stage there
// with a barrier between stages, and writes the lines back in natural order (Stockham sorts
// as it goes, so there is no bit reversal). Forward is exp(-2 pi i jk / n); the inverse is
// exp(+2 pi i jk / n) and unnormalised.

// The axis a kernel transforms, fixed when its pipeline is built (`forces::fft::overrides`
// of a `FftAxis`): with these constant the driver can turn divisions by them into
// multiplies and fold each stage's radix and sub-transform length, which values read from a
// uniform buffer would not allow.
override FFT_N: u32 = 1u;      // line length
override FFT_STRIDE: u32 = 1u; // distance between consecutive elements of a line
override FFT_C1: u32 = 1u;     // line l starts at (l / FFT_C1) * FFT_S1 + (l % FFT_C1) * FFT_S2
override FFT_S1: u32 = 0u;
override FFT_S2: u32 = 0u;
override FFT_LINES: u32 = 1u;
override FFT_BATCH: u32 = 1u;  // lines per workgroup (FFT_BATCH * FFT_N <= FFT_TILE)
override FFT_STAGES: u32 = 0u;
override FFT_TW: u32 = 0u;     // offset of this axis' FFT_N roots of unity in `twiddle`
override FFT_CONTIG: u32 = 0u; // 1 when a batch of lines is one contiguous run of memory
// Radix of stage s (s < FFT_STAGES; at most 8 stages: 729 = 3^6 needs 6).
override FFT_R0: u32 = 0u;
override FFT_R1: u32 = 0u;
override FFT_R2: u32 = 0u;
override FFT_R3: u32 = 0u;
override FFT_R4: u32 = 0u;
override FFT_R5: u32 = 0u;
override FFT_R6: u32 = 0u;
override FFT_R7: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> grid: array<vec2u>;
// exp(-2 pi i t / n) for t < n, computed in float64 on the host, one table per axis.
@group(0) @binding(2) var<storage, read> twiddle: array<vec2f>;

// Threads per workgroup (`forces::fft::workgroup_threads`): 512 where the device allows it,
// else 256 (WebGPU's default limit). Measured on an H200 (BENCHMARKS.md, Coulomb, fifth
// session): the passes are bound by each thread's chain of dependent element steps, so more
// threads on the same 16 KiB tile make them faster (128 → 512: −36 % at 324³). The
// reductions in pme.wgsl use 4 · FFT_WG ≤ 2048 values of `sh`.
override FFT_WG: u32 = 256u;
const FFT_TILE: u32 = 1024u;
// Two tiles (source and destination of a stage): 16 KiB, WebGPU's default limit.
var<workgroup> sh: array<vec2f, 2048>;

fn cmul(a: vec2f, b: vec2f) -> vec2f {
    return vec2f(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn root(t: u32, inverse: bool) -> vec2f {
    let w = twiddle[FFT_TW + t];
    return select(w, vec2f(w.x, -w.y), inverse);
}

fn fft_group(wid: vec3u, nwg: vec3u) -> u32 {
    return wid.y * nwg.x + wid.x;
}

fn line_base(l: u32) -> u32 {
    return (l / FFT_C1) * FFT_S1 + (l % FFT_C1) * FFT_S2;
}

fn global_index(l: u32, i: u32) -> u32 {
    return line_base(l) + i * FFT_STRIDE;
}

// Tile slot e -> (line within the batch, position along the line); the tile itself is stored
// line after line (slot b * n + i).
fn tile_line_pos(e: u32) -> vec2u {
    if (FFT_CONTIG != 0u) {
        return vec2u(e / FFT_N, e % FFT_N);
    }
    return vec2u(e % FFT_BATCH, e / FFT_BATCH);
}

fn load_value(g: u32) -> vec2f {
    return bitcast<vec2f>(grid[g]);
}

fn store_value(g: u32, v: vec2f) {
    grid[g] = bitcast<vec2u>(v);
}

fn load_tile(l0: u32, lid: u32) {
    let count = FFT_BATCH * FFT_N;
    for (var e = lid; e < count; e += FFT_WG) {
        let bp = tile_line_pos(e);
        let l = l0 + bp.x;
        var v = vec2f(0.0);
        if (l < FFT_LINES) {
            v = load_value(global_index(l, bp.y));
        }
        sh[bp.x * FFT_N + bp.y] = v;
    }
}

fn store_tile(l0: u32, lid: u32, src: u32) {
    let count = FFT_BATCH * FFT_N;
    for (var e = lid; e < count; e += FFT_WG) {
        let bp = tile_line_pos(e);
        let l = l0 + bp.x;
        if (l < FFT_LINES) {
            store_value(global_index(l, bp.y), sh[src + bp.x * FFT_N + bp.y]);
        }
    }
}

// One Stockham stage per radix, each with compile-time trip counts so the butterfly values
// stay in registers (a runtime radix would index private arrays dynamically, which GPUs
// spill to local memory). Stage with radix p after sub-transforms of length m: butterfly j
// (k = j mod m) reads x_q = src[j + q n/p], twiddles x_q by w_{mp}^{qk}, and writes its
// DFT_p to dst[(j / m) m p + k + r m].

struct Butterfly {
    src: u32, // sh index of x_0
    dst: u32, // sh index of y_0
    k: u32,   // position inside the current sub-transform
}

fn butterfly_at(t: u32, p: u32, src: u32, dst: u32, m: u32) -> Butterfly {
    let nb = FFT_N / p;
    let b = t / nb;
    let j = t - b * nb;
    let lb = b * FFT_N;
    let k = j % m;
    return Butterfly(src + lb + j, dst + lb + (j / m) * m * p + k, k);
}

// x_q twiddled by w_{mp}^{qk} = w_n^{qk n/(mp)}.
fn load_twiddled(bf: Butterfly, q: u32, nb: u32, tstep: u32, inverse: bool) -> vec2f {
    let v = sh[bf.src + q * nb];
    if (q == 0u) {
        return v;
    }
    return cmul(v, root(bf.k * q * tstep, inverse));
}

// -i v forward, +i v inverse.
fn rot90(v: vec2f, inverse: bool) -> vec2f {
    return select(vec2f(v.y, -v.x), vec2f(-v.y, v.x), inverse);
}

fn stage2(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = FFT_N / 2u;
    let tstep = FFT_N / (m * 2u);
    for (var t = lid; t < FFT_BATCH * nb; t += FFT_WG) {
        let bf = butterfly_at(t, 2u, src, dst, m);
        let a = load_twiddled(bf, 0u, nb, tstep, inverse);
        let b = load_twiddled(bf, 1u, nb, tstep, inverse);
        sh[bf.dst] = a + b;
        sh[bf.dst + m] = a - b;
    }
}

fn stage3(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = FFT_N / 3u;
    let tstep = FFT_N / (m * 3u);
    for (var t = lid; t < FFT_BATCH * nb; t += FFT_WG) {
        let bf = butterfly_at(t, 3u, src, dst, m);
        let a = load_twiddled(bf, 0u, nb, tstep, inverse);
        let b = load_twiddled(bf, 1u, nb, tstep, inverse);
        let c = load_twiddled(bf, 2u, nb, tstep, inverse);
        let s = b + c;
        let mid = a - 0.5 * s;
        // -i sin(2 pi / 3) (b - c) forward.
        let r = 0.8660254037844386 * rot90(b - c, inverse);
        sh[bf.dst] = a + s;
        sh[bf.dst + m] = mid + r;
        sh[bf.dst + 2u * m] = mid - r;
    }
}

fn stage4(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = FFT_N / 4u;
    let tstep = FFT_N / (m * 4u);
    for (var t = lid; t < FFT_BATCH * nb; t += FFT_WG) {
        let bf = butterfly_at(t, 4u, src, dst, m);
        let x0 = load_twiddled(bf, 0u, nb, tstep, inverse);
        let x1 = load_twiddled(bf, 1u, nb, tstep, inverse);
        let x2 = load_twiddled(bf, 2u, nb, tstep, inverse);
        let x3 = load_twiddled(bf, 3u, nb, tstep, inverse);
        let a0 = x0 + x2;
        let a1 = x0 - x2;
        let b0 = x1 + x3;
        let b1 = rot90(x1 - x3, inverse);
        sh[bf.dst] = a0 + b0;
        sh[bf.dst + m] = a1 + b1;
        sh[bf.dst + 2u * m] = a0 - b0;
        sh[bf.dst + 3u * m] = a1 - b1;
    }
}

// Forward DFT_3 of (a, b, c) (inverse: conjugate roots), as in stage3.
fn dft3(a: vec2f, b: vec2f, c: vec2f, inverse: bool) -> array<vec2f, 3> {
    let s = b + c;
    let mid = a - 0.5 * s;
    let r = 0.8660254037844386 * rot90(b - c, inverse);
    return array<vec2f, 3>(a + s, mid + r, mid - r);
}

// x * w_9^k for k in {1, 2, 4} (forward w_9 = exp(-2 pi i / 9); inverse conjugate).
fn w9(x: vec2f, k: u32, inverse: bool) -> vec2f {
    var w: vec2f;
    switch k {
        case 1u: { w = vec2f(0.766044443118978, -0.6427876096865393); }
        case 2u: { w = vec2f(0.17364817766693033, -0.984807753012208); }
        default: { w = vec2f(-0.9396926207859083, -0.3420201433256687); }
    }
    return cmul(x, select(w, vec2f(w.x, -w.y), inverse));
}

// Radix 9 as 3 x 3 (one stage instead of two radix-3 ones: half the workgroup-memory round
// trips and barriers). With q = q1 + 3 q2 and r = r2 + 3 r1:
// X_r = sum_q1 w_3^(r1 q1) [w_9^(r2 q1) sum_q2 x_(q1 + 3 q2) w_3^(r2 q2)].
fn stage9(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = FFT_N / 9u;
    let tstep = FFT_N / (m * 9u);
    for (var t = lid; t < FFT_BATCH * nb; t += FFT_WG) {
        let bf = butterfly_at(t, 9u, src, dst, m);
        var x: array<vec2f, 9>;
        for (var q = 0u; q < 9u; q++) {
            x[q] = load_twiddled(bf, q, nb, tstep, inverse);
        }
        let y0 = dft3(x[0], x[3], x[6], inverse);
        let y1 = dft3(x[1], x[4], x[7], inverse);
        let y2 = dft3(x[2], x[5], x[8], inverse);
        let z0 = dft3(y0[0], y1[0], y2[0], inverse);
        let z1 = dft3(y0[1], w9(y1[1], 1u, inverse), w9(y2[1], 2u, inverse), inverse);
        let z2 = dft3(y0[2], w9(y1[2], 2u, inverse), w9(y2[2], 4u, inverse), inverse);
        for (var r1 = 0u; r1 < 3u; r1++) {
            sh[bf.dst + (3u * r1) * m] = z0[r1];
            sh[bf.dst + (3u * r1 + 1u) * m] = z1[r1];
            sh[bf.dst + (3u * r1 + 2u) * m] = z2[r1];
        }
    }
}

// Radix 5 and 7: the O(p^2) DFT with fixed trip counts; roots of order p come from the
// axis table (w_p = w_n^{n/p}).
fn stage5(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = FFT_N / 5u;
    let tstep = FFT_N / (m * 5u);
    for (var t = lid; t < FFT_BATCH * nb; t += FFT_WG) {
        let bf = butterfly_at(t, 5u, src, dst, m);
        var x: array<vec2f, 5>;
        for (var q = 0u; q < 5u; q++) {
            x[q] = load_twiddled(bf, q, nb, tstep, inverse);
        }
        for (var r = 0u; r < 5u; r++) {
            var acc = x[0];
            for (var q = 1u; q < 5u; q++) {
                acc += cmul(x[q], root(((r * q) % 5u) * nb, inverse));
            }
            sh[bf.dst + r * m] = acc;
        }
    }
}

fn stage7(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = FFT_N / 7u;
    let tstep = FFT_N / (m * 7u);
    for (var t = lid; t < FFT_BATCH * nb; t += FFT_WG) {
        let bf = butterfly_at(t, 7u, src, dst, m);
        var x: array<vec2f, 7>;
        for (var q = 0u; q < 7u; q++) {
            x[q] = load_twiddled(bf, q, nb, tstep, inverse);
        }
        for (var r = 0u; r < 7u; r++) {
            var acc = x[0];
            for (var q = 1u; q < 7u; q++) {
                acc += cmul(x[q], root(((r * q) % 7u) * nb, inverse));
            }
            sh[bf.dst + r * m] = acc;
        }
    }
}

// One stage of radix p (a constant once the pipeline is built) from sh[src] to the other tile.
fn fft_stage(p: u32, src: u32, m: u32, lid: u32, inverse: bool) {
    let dst = FFT_TILE - src;
    switch p {
        case 2u: { stage2(src, dst, m, lid, inverse); }
        case 3u: { stage3(src, dst, m, lid, inverse); }
        case 4u: { stage4(src, dst, m, lid, inverse); }
        case 5u: { stage5(src, dst, m, lid, inverse); }
        case 9u: { stage9(src, dst, m, lid, inverse); }
        default: { stage7(src, dst, m, lid, inverse); }
    }
    workgroupBarrier();
}

// Runs every stage on the tile that starts at sh[src0] (0 or FFT_TILE) and returns where the
// result lies. Written out stage by stage (not as a loop over a radix table) so that each
// stage's radix and sub-transform length m are compile-time constants.
fn fft_tile(src0: u32, lid: u32, inverse: bool) -> u32 {
    var src = src0;
    var m = 1u;
    if (FFT_STAGES > 0u) { fft_stage(FFT_R0, src, m, lid, inverse); src = FFT_TILE - src; m *= FFT_R0; }
    if (FFT_STAGES > 1u) { fft_stage(FFT_R1, src, m, lid, inverse); src = FFT_TILE - src; m *= FFT_R1; }
    if (FFT_STAGES > 2u) { fft_stage(FFT_R2, src, m, lid, inverse); src = FFT_TILE - src; m *= FFT_R2; }
    if (FFT_STAGES > 3u) { fft_stage(FFT_R3, src, m, lid, inverse); src = FFT_TILE - src; m *= FFT_R3; }
    if (FFT_STAGES > 4u) { fft_stage(FFT_R4, src, m, lid, inverse); src = FFT_TILE - src; m *= FFT_R4; }
    if (FFT_STAGES > 5u) { fft_stage(FFT_R5, src, m, lid, inverse); src = FFT_TILE - src; m *= FFT_R5; }
    if (FFT_STAGES > 6u) { fft_stage(FFT_R6, src, m, lid, inverse); src = FFT_TILE - src; m *= FFT_R6; }
    if (FFT_STAGES > 7u) { fft_stage(FFT_R7, src, m, lid, inverse); src = FFT_TILE - src; }
    return src;
}

fn fft_lines(wid: vec3u, nwg: vec3u, lid: u32, inverse: bool) {
    let l0 = fft_group(wid, nwg) * FFT_BATCH;
    if (l0 >= FFT_LINES) {
        return;
    }
    load_tile(l0, lid);
    workgroupBarrier();
    let r = fft_tile(0u, lid, inverse);
    store_tile(l0, lid, r);
}

@compute @workgroup_size(FFT_WG)
fn fft_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    fft_lines(wid, nwg, lid, false);
}

@compute @workgroup_size(FFT_WG)
fn fft_inverse(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    fft_lines(wid, nwg, lid, true);
}
