// Batched 1-D complex FFTs along one axis of a 3-D grid: mixed-radix Stockham (radices 2, 3,
// 4, 5, 7), one dispatch per axis. Driver and float64 twin: `forces::fft`.
//
// Grid layout: element (ix, iy, iz) of an (nx, ny, nz) grid sits at (ix * ny + iy) * nz + iz.
// Complex values are stored as the bits of vec2f in vec2u so that kernels which reuse the same
// buffer for integer data (PME's fixed-point charge spreading) never load an integer pattern
// as a float.
//
// Each workgroup loads `batch` whole lines into workgroup memory (lines adjacent in memory go
// to adjacent threads, so strided axes still read contiguous runs), runs every stage there
// with a barrier between stages, and writes the lines back in natural order (Stockham sorts
// as it goes, so there is no bit reversal). Forward is exp(-2 pi i jk / n); the inverse is
// exp(+2 pi i jk / n) and unnormalised.

// Mirrors `forces::fft::FftAxis`.
struct FftAxis {
    n: u32,          // line length
    stride: u32,     // distance between consecutive elements of a line
    c1: u32,         // line l starts at (l / c1) * s1 + (l % c1) * s2
    s1: u32,
    s2: u32,
    n_lines: u32,
    batch: u32,      // lines per workgroup (batch * n <= FFT_TILE)
    n_stages: u32,
    tw_off: u32,     // offset of this axis' n roots of unity in `twiddle`
    contiguous: u32, // 1 when a batch of lines is one contiguous run of memory
    _pad0: u32,
    _pad1: u32,
    radix: array<vec4u, 4>, // radix of stage s at radix[s / 4][s % 4]
}

@group(0) @binding(0) var<uniform> A: FftAxis;
@group(0) @binding(1) var<storage, read_write> grid: array<vec2u>;
// exp(-2 pi i t / n) for t < n, computed in float64 on the host, one table per axis.
@group(0) @binding(2) var<storage, read> twiddle: array<vec2f>;

const FFT_WG: u32 = 128u;
const FFT_TILE: u32 = 1024u;
// Two tiles (source and destination of a stage): 16 KiB, WebGPU's default limit.
var<workgroup> sh: array<vec2f, 2048>;

fn cmul(a: vec2f, b: vec2f) -> vec2f {
    return vec2f(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn root(t: u32, inverse: bool) -> vec2f {
    let w = twiddle[A.tw_off + t];
    return select(w, vec2f(w.x, -w.y), inverse);
}

fn fft_group(wid: vec3u, nwg: vec3u) -> u32 {
    return wid.y * nwg.x + wid.x;
}

fn line_base(l: u32) -> u32 {
    return (l / A.c1) * A.s1 + (l % A.c1) * A.s2;
}

fn global_index(l: u32, i: u32) -> u32 {
    return line_base(l) + i * A.stride;
}

// Tile slot e -> (line within the batch, position along the line); the tile itself is stored
// line after line (slot b * n + i).
fn tile_line_pos(e: u32) -> vec2u {
    if (A.contiguous != 0u) {
        return vec2u(e / A.n, e % A.n);
    }
    return vec2u(e % A.batch, e / A.batch);
}

fn load_value(g: u32) -> vec2f {
    return bitcast<vec2f>(grid[g]);
}

fn store_value(g: u32, v: vec2f) {
    grid[g] = bitcast<vec2u>(v);
}

fn load_tile(l0: u32, lid: u32) {
    let count = A.batch * A.n;
    for (var e = lid; e < count; e += FFT_WG) {
        let bp = tile_line_pos(e);
        let l = l0 + bp.x;
        var v = vec2f(0.0);
        if (l < A.n_lines) {
            v = load_value(global_index(l, bp.y));
        }
        sh[bp.x * A.n + bp.y] = v;
    }
}

fn store_tile(l0: u32, lid: u32, src: u32) {
    let count = A.batch * A.n;
    for (var e = lid; e < count; e += FFT_WG) {
        let bp = tile_line_pos(e);
        let l = l0 + bp.x;
        if (l < A.n_lines) {
            store_value(global_index(l, bp.y), sh[src + bp.x * A.n + bp.y]);
        }
    }
}

fn radix_of(s: u32) -> u32 {
    return A.radix[s / 4u][s % 4u];
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
    let nb = A.n / p;
    let b = t / nb;
    let j = t - b * nb;
    let lb = b * A.n;
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
    let nb = A.n / 2u;
    let tstep = A.n / (m * 2u);
    for (var t = lid; t < A.batch * nb; t += FFT_WG) {
        let bf = butterfly_at(t, 2u, src, dst, m);
        let a = load_twiddled(bf, 0u, nb, tstep, inverse);
        let b = load_twiddled(bf, 1u, nb, tstep, inverse);
        sh[bf.dst] = a + b;
        sh[bf.dst + m] = a - b;
    }
}

fn stage3(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = A.n / 3u;
    let tstep = A.n / (m * 3u);
    for (var t = lid; t < A.batch * nb; t += FFT_WG) {
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
    let nb = A.n / 4u;
    let tstep = A.n / (m * 4u);
    for (var t = lid; t < A.batch * nb; t += FFT_WG) {
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

// Radix 5 and 7: the O(p^2) DFT with fixed trip counts; roots of order p come from the
// axis table (w_p = w_n^{n/p}).
fn stage5(src: u32, dst: u32, m: u32, lid: u32, inverse: bool) {
    let nb = A.n / 5u;
    let tstep = A.n / (m * 5u);
    for (var t = lid; t < A.batch * nb; t += FFT_WG) {
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
    let nb = A.n / 7u;
    let tstep = A.n / (m * 7u);
    for (var t = lid; t < A.batch * nb; t += FFT_WG) {
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

// Runs every stage on the tile that starts at sh[src0] (0 or FFT_TILE) and returns where the
// result lies.
fn fft_tile(src0: u32, lid: u32, inverse: bool) -> u32 {
    var src = src0;
    var m = 1u;
    for (var s = 0u; s < A.n_stages; s++) {
        let p = radix_of(s);
        let dst = FFT_TILE - src;
        switch p {
            case 2u: { stage2(src, dst, m, lid, inverse); }
            case 3u: { stage3(src, dst, m, lid, inverse); }
            case 4u: { stage4(src, dst, m, lid, inverse); }
            case 5u: { stage5(src, dst, m, lid, inverse); }
            default: { stage7(src, dst, m, lid, inverse); }
        }
        workgroupBarrier();
        src = dst;
        m *= p;
    }
    return src;
}

fn fft_lines(wid: vec3u, nwg: vec3u, lid: u32, inverse: bool) {
    let l0 = fft_group(wid, nwg) * A.batch;
    if (l0 >= A.n_lines) {
        return;
    }
    load_tile(l0, lid);
    workgroupBarrier();
    let r = fft_tile(0u, lid, inverse);
    store_tile(l0, lid, r);
}

@compute @workgroup_size(128)
fn fft_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    fft_lines(wid, nwg, lid, false);
}

@compute @workgroup_size(128)
fn fft_inverse(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    fft_lines(wid, nwg, lid, true);
}
