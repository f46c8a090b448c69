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

// ---------------------------------------------------------------------------------------------
// Two-level register FFT (`forces::fft::RegPlan`): lines of n = FFT2_N1 · FFT2_N2 points, each
// factor a length the register codelets below handle (a product p · q of 1, 2, 3, 4, 5, 7, 9,
// at most RMAX). The Stockham kernels above are bound by each thread's chain of dependent
// workgroup-memory stages and, on strided axes, by reading runs of 3 lines (24 B at 324
// points); here each thread loads all of its N1 values before using any (N1 independent loads
// in flight), transforms them in registers, and the workgroup exchanges values through
// workgroup memory once. With j = j1 N2 + j2 and k = k1 + N1 k2 (Van Loan's four-step split):
//   X[k1 + N1 k2] = sum_j2 w_N2^(j2 k2) [ w_n^(j2 k1) sum_j1 x[j1 N2 + j2] w_N1^(j1 k1) ].
// Phase 1: thread (line b, j2) loads x[j1 N2 + j2] for j1 < N1, runs the N1-point DFT, twiddles
// by w_n^(j2 k1) and writes Y[k1] to shr[b LS + k1 N2 + j2]. Phase 2 (after a barrier):
// thread (b, k1) reads that row, runs the N2-point DFT and writes X[k1 + N1 k2]. FFT2_B lines
// go to each workgroup, adjacent lines to adjacent threads on strided axes (runs of FFT2_B
// values, 128 B at 16 lines), adjacent elements on contiguous ones.
override FFT2_N1: u32 = 1u;
override FFT2_N2: u32 = 1u;
// N1 = P1 · Q1 and N2 = P2 · Q2, each factor in {1, 2, 3, 4, 5, 7, 9} (`dft_reg`).
override FFT2_P1: u32 = 1u;
override FFT2_Q1: u32 = 1u;
override FFT2_P2: u32 = 1u;
override FFT2_Q2: u32 = 1u;
override FFT2_B: u32 = 1u;    // lines per workgroup
override FFT2_LS: u32 = 1u;   // workgroup-memory values per line (FFT_N + 1: fewer bank conflicts)
override FFT2_TILE: u32 = 1u; // FFT2_B · FFT2_LS
override FFT2_WG: u32 = 1u;   // FFT2_B · max(N1, N2) threads
// Values a thread holds: up to 18 (`forces::fft::REG_MAX`).
alias Reg = array<vec2f, 18>;
alias Small = array<vec2f, 9>;
var<workgroup> shr: array<vec2f, FFT2_TILE>;

// DFT of length p in {1, 2, 3, 4, 5, 7, 9} of s[0..p) (roots of order 5 and 7 from the axis
// table: p divides FFT_N). All trip counts are constants once the pipeline is built, so
// every index is static and the values stay in registers.
fn dft_small(s: Small, p: u32, inverse: bool) -> Small {
    var y = s;
    switch p {
        case 2u: {
            y[0] = s[0] + s[1];
            y[1] = s[0] - s[1];
        }
        case 3u: {
            let d = dft3(s[0], s[1], s[2], inverse);
            y[0] = d[0];
            y[1] = d[1];
            y[2] = d[2];
        }
        case 4u: {
            let a0 = s[0] + s[2];
            let a1 = s[0] - s[2];
            let b0 = s[1] + s[3];
            let b1 = rot90(s[1] - s[3], inverse);
            y[0] = a0 + b0;
            y[1] = a1 + b1;
            y[2] = a0 - b0;
            y[3] = a1 - b1;
        }
        case 9u: {
            let y0 = dft3(s[0], s[3], s[6], inverse);
            let y1 = dft3(s[1], s[4], s[7], inverse);
            let y2 = dft3(s[2], s[5], s[8], inverse);
            let z0 = dft3(y0[0], y1[0], y2[0], inverse);
            let z1 = dft3(y0[1], w9(y1[1], 1u, inverse), w9(y2[1], 2u, inverse), inverse);
            let z2 = dft3(y0[2], w9(y1[2], 2u, inverse), w9(y2[2], 4u, inverse), inverse);
            for (var r1 = 0u; r1 < 3u; r1++) {
                y[3u * r1] = z0[r1];
                y[3u * r1 + 1u] = z1[r1];
                y[3u * r1 + 2u] = z2[r1];
            }
        }
        case 5u, 7u: {
            for (var r = 0u; r < p; r++) {
                var acc = s[0];
                for (var q = 1u; q < p; q++) {
                    acc += cmul(s[q], root(((r * q) % p) * (FFT_N / p), inverse));
                }
                y[r] = acc;
            }
        }
        default: {}
    }
    return y;
}

// DFT of length r = p · q of x[0..r) in registers (input j = j1 q + j2, output k = k1 + p k2,
// the same split as the two phases, with twiddles w_r^(j2 k1) = w_n^(j2 k1 n / r)).
fn dft_reg(x: Reg, p: u32, q: u32, inverse: bool) -> Reg {
    let tstep = FFT_N / (p * q);
    var y: Reg;
    for (var j2 = 0u; j2 < q; j2++) {
        var s: Small;
        for (var j1 = 0u; j1 < p; j1++) {
            s[j1] = x[j1 * q + j2];
        }
        s = dft_small(s, p, inverse);
        for (var k1 = 0u; k1 < p; k1++) {
            var v = s[k1];
            if (j2 * k1 != 0u) {
                v = cmul(v, root(j2 * k1 * tstep, inverse));
            }
            y[j2 * p + k1] = v;
        }
    }
    var out: Reg;
    for (var k1 = 0u; k1 < p; k1++) {
        var s: Small;
        for (var j2 = 0u; j2 < q; j2++) {
            s[j2] = y[j2 * p + k1];
        }
        s = dft_small(s, q, inverse);
        for (var k2 = 0u; k2 < q; k2++) {
            out[k1 + p * k2] = s[k2];
        }
    }
    return out;
}

// Thread t as (line within the workgroup, index within the line) for a phase with `per_line`
// threads per line; .x >= FFT2_B marks an idle thread.
fn fft2_thread(t: u32, per_line: u32) -> vec2u {
    if (FFT_CONTIG != 0u) {
        return vec2u(t / per_line, t % per_line);
    }
    let b = t % FFT2_B;
    let i = t / FFT2_B;
    return vec2u(select(FFT2_B, b, i < per_line), i);
}

// Loads element i0 + c · step (c < count) of line l (zeros past the last line).
fn fft2_load(l: u32, i0: u32, step: u32, count: u32) -> Reg {
    var x: Reg;
    if (l < FFT_LINES) {
        let g0 = global_index(l, i0);
        for (var c = 0u; c < count; c++) {
            x[c] = load_value(g0 + c * step * FFT_STRIDE);
        }
    }
    return x;
}

fn fft2_store(l: u32, i0: u32, step: u32, count: u32, x: Reg) {
    if (l < FFT_LINES) {
        let g0 = global_index(l, i0);
        for (var c = 0u; c < count; c++) {
            store_value(g0 + c * step * FFT_STRIDE, x[c]);
        }
    }
}

// x[c] · w_n^(a c) for c < count (a c < n for the phases' a and count).
fn fft2_twiddle(x: Reg, a: u32, count: u32, inverse: bool) -> Reg {
    var y = x;
    for (var c = 1u; c < count; c++) {
        y[c] = cmul(x[c], root(a * c, inverse));
    }
    return y;
}

// Row k1 of line b in workgroup memory: values j2 < N2 at b LS + k1 N2 + j2.
fn shr_row(b: u32, k1: u32) -> u32 {
    return b * FFT2_LS + k1 * FFT2_N2;
}

// Phase 1 of a transform whose input is in natural order: from thread (b, j2)'s loaded
// values x[j1 N2 + j2] to the workgroup-memory rows.
fn fft2_columns(x: Reg, b: u32, j2: u32, inverse: bool) {
    let y = fft2_twiddle(dft_reg(x, FFT2_P1, FFT2_Q1, inverse), j2, FFT2_N1, inverse);
    for (var k1 = 0u; k1 < FFT2_N1; k1++) {
        shr[shr_row(b, k1) + j2] = y[k1];
    }
}

// Phase 2: row k1 of line b through the N2-point DFT: X[k1 + N1 k2] at index k2.
fn fft2_rows(b: u32, k1: u32, inverse: bool) -> Reg {
    var x: Reg;
    let r = shr_row(b, k1);
    for (var j2 = 0u; j2 < FFT2_N2; j2++) {
        x[j2] = shr[r + j2];
    }
    return dft_reg(x, FFT2_P2, FFT2_Q2, inverse);
}

// Phase 1 for the workgroup's lines from l0 on, loaded in natural order.
fn fft2_first_phase(l0: u32, lid: u32, inverse: bool) {
    let c = fft2_thread(lid, FFT2_N2);
    if (c.x < FFT2_B) {
        fft2_columns(fft2_load(l0 + c.x, c.y, FFT2_N2, FFT2_N1), c.x, c.y, inverse);
    }
}

fn fft2_lines(wid: vec3u, nwg: vec3u, lid: u32, inverse: bool) {
    let l0 = fft_group(wid, nwg) * FFT2_B;
    if (l0 >= FFT_LINES) {
        return;
    }
    fft2_first_phase(l0, lid, inverse);
    workgroupBarrier();
    let r = fft2_thread(lid, FFT2_N1);
    if (r.x < FFT2_B) {
        fft2_store(l0 + r.x, r.y, FFT2_N1, FFT2_N2, fft2_rows(r.x, r.y, inverse));
    }
}

@compute @workgroup_size(FFT2_WG)
fn fft2_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    fft2_lines(wid, nwg, lid, false);
}

@compute @workgroup_size(FFT2_WG)
fn fft2_inverse(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    fft2_lines(wid, nwg, lid, true);
}
