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

// Small DFTs written out for the common radices; the generic loop serves 5 and 7.
fn butterfly(p: u32, x: ptr<function, array<vec2f, 7>>, inverse: bool, rstep: u32) {
    if (p == 2u) {
        let a = (*x)[0];
        let b = (*x)[1];
        (*x)[0] = a + b;
        (*x)[1] = a - b;
        return;
    }
    if (p == 4u) {
        let a0 = (*x)[0] + (*x)[2];
        let a1 = (*x)[0] - (*x)[2];
        let b0 = (*x)[1] + (*x)[3];
        let d = (*x)[1] - (*x)[3];
        // -i * d forward, +i * d inverse.
        var b1 = vec2f(d.y, -d.x);
        if (inverse) {
            b1 = -b1;
        }
        (*x)[0] = a0 + b0;
        (*x)[2] = a0 - b0;
        (*x)[1] = a1 + b1;
        (*x)[3] = a1 - b1;
        return;
    }
    if (p == 3u) {
        let a = (*x)[0];
        let s = (*x)[1] + (*x)[2];
        let d = (*x)[1] - (*x)[2];
        // sin(2 pi / 3) with the direction's sign.
        var c = -0.8660254037844386;
        if (inverse) {
            c = -c;
        }
        let m = a - 0.5 * s;
        let r = vec2f(-d.y, d.x) * c;
        (*x)[0] = a + s;
        (*x)[1] = m + r;
        (*x)[2] = m - r;
        return;
    }
    var y: array<vec2f, 7>;
    for (var r = 0u; r < p; r++) {
        var acc = (*x)[0];
        for (var q = 1u; q < p; q++) {
            acc += cmul((*x)[q], root(((r * q) % p) * rstep, inverse));
        }
        y[r] = acc;
    }
    for (var r = 0u; r < p; r++) {
        (*x)[r] = y[r];
    }
}

// Runs every stage on the tile that starts at sh[src0] (0 or FFT_TILE) and returns where the
// result lies. Stage with radix p after sub-transforms of length m: butterfly j reads
// x_q = src[j + q n/p], twiddles x_q by w_{mp}^{qk} (k = j mod m), and writes its DFT_p to
// dst[(j / m) m p + k + r m].
fn fft_tile(src0: u32, lid: u32, inverse: bool) -> u32 {
    var src = src0;
    var m = 1u;
    let n = A.n;
    for (var s = 0u; s < A.n_stages; s++) {
        let p = radix_of(s);
        let nb = n / p;
        let dst = FFT_TILE - src;
        let tstep = n / (m * p);
        let total = A.batch * nb;
        for (var t = lid; t < total; t += FFT_WG) {
            let b = t / nb;
            let j = t - b * nb;
            let k = j % m;
            let lb = b * n;
            var x: array<vec2f, 7>;
            x[0] = sh[src + lb + j];
            for (var q = 1u; q < p; q++) {
                x[q] = cmul(sh[src + lb + j + q * nb], root(k * q * tstep, inverse));
            }
            butterfly(p, &x, inverse, nb);
            let ob = dst + lb + (j / m) * m * p + k;
            for (var r = 0u; r < p; r++) {
                sh[ob + r * m] = x[r];
            }
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
