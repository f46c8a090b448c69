// Smooth particle-mesh Ewald, reciprocal part (Essmann et al. 1995). Driver and float64 twin:
// `forces::pme`. One step is eight dispatches:
//   pme_bin       per atom: which brick (a block of at most 8^3 grid points; the grid is cut
//                 into ceil(K/8) nearly equal slabs per axis) holds its first grid point; the
//                 atom's index goes into that brick's fixed-capacity list (one u32 atomic per
//                 atom), or into the overflow list when the brick is full;
//   pme_spread    one workgroup per brick GATHERS every atom whose support reaches the brick
//                 (its own list and those of the bricks just before it along each axis, plus
//                 the overflow list) into workgroup memory as 64-bit fixed point (two u32
//                 workgroup atomics: low word with carry, high word), then writes the brick's
//                 points once as f32 into the real charge grid `rho` - no global atomics, no
//                 float atomics, and no clearing pass (every point belongs to one brick);
//   pme_fft_first z-axis forward FFT of the real charge grid, two real lines per complex
//                 transform (and it clears the brick counts for the next step); only kz <= Kz/2 is kept (the rest is the complex conjugate),
//                 so the complex grid `grid` holds Kx * Ky * (Kz/2 + 1) values;
//   fft_forward   y axis of the half spectrum (fft.wgsl);
//   pme_convolve  x-axis forward FFT, multiply by the influence function, energy and virial
//                 partial sums per workgroup, x-axis inverse FFT - all in workgroup memory;
//   fft_inverse   y axis;
//   pme_fft_last  z-axis inverse FFT of the Hermitian-completed lines, two per complex
//                 transform, writes the real potential grid `phi`; its workgroup 0 first sums
//                 the convolve's partials into `result`;
//   pme_interp    one workgroup per brick: the potential around the brick into workgroup
//                 memory, then ORDER threads per atom of its list: force, energy share and
//                 virial share ADDED to force / atom_virial.
//
// Spline convention (OpenMM's): with u = K x / L, atom weights go to grid points
// floor(u) + j, j < ORDER, with weight M_p(frac(u) + p - 1 - j). The float64 reference uses
// Essmann's points floor(u) - j; the two grids differ by a whole-grid translation, which
// leaves energy and forces unchanged.
#import fft

// Mirrors `forces::pme::PmeUniform`.
struct PmeUniform {
    dims: vec4u,   // Kx, Ky, Kz, n_atoms
    scale: vec4f,  // K_a / L_a; w = 1 / n_atoms
    coef: vec4f,   // x = k / (pi V), y = pi^2 / alpha^2, z = -k pi / (V alpha^2), w unused
    n_partials: u32,
    nzh: u32,      // Kz / 2 + 1: z extent of the half spectrum
    _p1: u32,
    _p2: u32,
    bricks: vec4u, // bricks per axis (x, y, z), number of bricks
    visit: vec4u,  // bricks whose atoms reach a brick, per axis (itself and those before it); w = list capacity per brick
}

@group(0) @binding(3) var<uniform> P: PmeUniform;
@group(0) @binding(4) var<storage, read> pos: array<vec4f>;
@group(0) @binding(5) var<storage, read> charge: array<f32>;
@group(0) @binding(6) var<storage, read_write> force: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> atom_virial: array<vec2f>;
@group(0) @binding(8) var<storage, read_write> phi: array<f32>;
// Two vec4f per convolve workgroup: (E, Wxx, Wyy, Wzz), (Wxy, Wxz, Wyz, S(0)).
@group(0) @binding(9) var<storage, read_write> partials: array<vec4f>;
// E_rec (background included), Wxx, Wyy, Wzz, Wxy, Wxz, Wyz, net charge S(0).
@group(0) @binding(10) var<storage, read_write> result: array<f32>;
// Per axis (x then y then z): (m / L, exp(-pi^2 (m/L)^2 / alpha^2) |b(m)|^2) for grid index i.
@group(0) @binding(11) var<storage, read> infl: array<vec2f>;
// The real charge grid, Kx * Ky * Kz f32 (written by pme_spread, read by pme_fft_first).
@group(0) @binding(12) var<storage, read_write> rho: array<f32>;
// Atoms per brick (n_bricks values), then the overflow list's length.
@group(0) @binding(13) var<storage, read_write> bin_count: array<atomic<u32>>;
// Atom indices: brick b's list at [b * cap, (b + 1) * cap), then the overflow list (n_atoms).
@group(0) @binding(14) var<storage, read_write> bins: array<u32>;
// Lengths of the lists (n_bricks values, then the overflow list's) as pme_spread found them:
// pme_fft_first clears `bin_count` before pme_interp walks the lists again.
@group(0) @binding(15) var<storage, read_write> bin_len: array<u32>;

override ORDER: u32 = 5u;
const PME_WG: u32 = 64u;
// 2^-32: the low word's weight.
const FX_LO: f32 = 2.3283064365386963e-10;

struct Spline {
    w: array<f32, 8>,
    d: array<f32, 8>,
}

// Cardinal B-spline weights M_p(t + p - 1 - j) and derivatives for j < ORDER, t in [0, 1).
fn bspline(t: f32) -> Spline {
    var s: Spline;
    for (var j = 0u; j < 8u; j++) {
        s.w[j] = 0.0;
        s.d[j] = 0.0;
    }
    s.w[1] = t;
    s.w[0] = 1.0 - t;
    for (var j = 3u; j < ORDER; j++) {
        let div = 1.0 / f32(j - 1u);
        s.w[j - 1u] = div * t * s.w[j - 2u];
        for (var k = 1u; k < j - 1u; k++) {
            s.w[j - k - 1u] = div * ((t + f32(k)) * s.w[j - k - 2u] + (f32(j - k) - t) * s.w[j - k - 1u]);
        }
        s.w[0] = div * (1.0 - t) * s.w[0];
    }
    // Derivatives from the order p - 1 weights: M_p'(x) = M_{p-1}(x) - M_{p-1}(x - 1).
    s.d[0] = -s.w[0];
    for (var j = 1u; j < ORDER; j++) {
        s.d[j] = s.w[j - 1u] - s.w[j];
    }
    let div = 1.0 / f32(ORDER - 1u);
    s.w[ORDER - 1u] = div * t * s.w[ORDER - 2u];
    for (var k = 1u; k < ORDER - 1u; k++) {
        s.w[ORDER - k - 1u] = div * ((t + f32(k)) * s.w[ORDER - k - 2u]
            + (f32(ORDER - k) - t) * s.w[ORDER - k - 1u]);
    }
    s.w[0] = div * (1.0 - t) * s.w[0];
    return s;
}

// First grid index along each axis and the fractional offsets of atom position x.
fn grid_origin(x: vec3f) -> vec3u {
    let u = x * P.scale.xyz;
    let k = vec3i(floor(u));
    let dims = vec3i(P.dims.xyz);
    return vec3u(((k % dims) + dims) % dims);
}

fn atom_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * PME_WG + lid;
}

// Wraps grid index g in [0, 2K) into [0, K) (cheaper than %).
fn wrap(g: u32, k: u32) -> u32 {
    return select(g, g - k, g >= k);
}

// Value of a 64-bit fixed-point word pair. Negative values are negated in integer arithmetic
// first: hi + lo 2^-32 with hi = -1 would cancel and lose the digits of small values.
fn fixed_to_f32(w: vec2u) -> f32 {
    if ((w.y & 0x80000000u) == 0u) {
        return f32(w.y) + f32(w.x) * FX_LO;
    }
    let lo = ~w.x + 1u;
    let hi = ~w.y + select(0u, 1u, lo == 0u);
    return -(f32(hi) + f32(lo) * FX_LO);
}

// Weight j of a spline without indexing an array by a run-time value (which would put the
// array in slow local memory): the loop has ORDER constant trips and unrolls.
fn pick(w: array<f32, 8>, j: u32) -> f32 {
    var r = 0.0;
    for (var k = 0u; k < ORDER; k++) {
        if (k == j) {
            r = w[k];
        }
    }
    return r;
}

// ---- Bricks ----------------------------------------------------------------------------
// Brick i of nb along an axis of k points starts at floor(i k / nb); edges differ by at most
// one point and are at most BRICK.
const BRICK: u32 = 8u;
const SPREAD_WG: u32 = 128u;

fn brick_lo(i: u32, k: u32, nb: u32) -> u32 {
    return (i * k) / nb;
}

// The brick that holds grid index g: the largest i with floor(i k / nb) <= g.
fn brick_of(g: u32, k: u32, nb: u32) -> u32 {
    return ((g + 1u) * nb - 1u) / k;
}

fn brick_index(b: vec3u) -> u32 {
    return (b.x * P.bricks.y + b.y) * P.bricks.z + b.z;
}

// One thread per atom: its index into the list of the brick holding its first grid point.
// The order inside a list depends on the GPU's scheduling; the spread's fixed-point sums do
// not, so the charge grid is still deterministic.
@compute @workgroup_size(64)
fn pme_bin(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
    let i = atom_id(wid, nwg, lid);
    if (i >= P.dims.w) {
        return;
    }
    // Uncharged atoms are binned too: pme_interp walks the lists to give every atom its
    // virial share.
    let o = grid_origin(pos[i].xyz);
    let b = brick_index(vec3u(brick_of(o.x, P.dims.x, P.bricks.x),
                              brick_of(o.y, P.dims.y, P.bricks.y),
                              brick_of(o.z, P.dims.z, P.bricks.z)));
    let cap = P.visit.w;
    let slot = atomicAdd(&bin_count[b], 1u);
    if (slot < cap) {
        bins[b * cap + slot] = i;
    } else {
        // A full brick (a dense cluster): every brick's spread also reads this list, so the
        // result is the same, only slower. At most n_atoms entries ever.
        let k = atomicAdd(&bin_count[P.bricks.w], 1u);
        bins[P.bricks.w * cap + k] = i;
    }
}

// The brick's charge as 64-bit fixed point (low, high word per point), at most BRICK^3 points.
var<workgroup> acc: array<atomic<u32>, 1024>;

// Adds c to the 64-bit fixed-point value (32 fractional bits) of brick point p. The sum is
// exact modulo 2^64 whatever the order of the additions, so the spread is deterministic.
fn add_fixed(p: u32, c: f32) {
    let fl = floor(c);
    let lo = u32((c - fl) * 4294967296.0);
    var hi = bitcast<u32>(i32(fl));
    let old = atomicAdd(&acc[2u * p], lo);
    if (old > 0xffffffffu - lo) {
        hi += 1u;
    }
    if (hi != 0u) {
        atomicAdd(&acc[2u * p + 1u], hi);
    }
}

// Adds atom i's plane jx (ORDER^2 points) where it lies inside the brick [lo, lo + e).
fn spread_plane(i: u32, jx: u32, lo: vec3u, e: vec3u) {
    let q = charge[i];
    if (q == 0.0) {
        return;
    }
    let x = pos[i].xyz;
    let o = grid_origin(x);
    let ix = wrap(o.x + jx, P.dims.x);
    if (ix < lo.x || ix >= lo.x + e.x) {
        return;
    }
    // About half the atoms of a list before this brick along y or z do not reach it: skip
    // them before computing their splines.
    var reach = vec2<bool>(false);
    for (var j = 0u; j < ORDER; j++) {
        let iy = wrap(o.y + j, P.dims.y);
        let iz = wrap(o.z + j, P.dims.z);
        let in_y = (iy >= lo.y) && (iy < lo.y + e.y);
        let in_z = (iz >= lo.z) && (iz < lo.z + e.z);
        reach = reach | vec2<bool>(in_y, in_z);
    }
    if (!all(reach)) {
        return;
    }
    let u = x * P.scale.xyz;
    let f = u - floor(u);
    let sx = bspline(f.x);
    let sy = bspline(f.y);
    let sz = bspline(f.z);
    let qx = q * pick(sx.w, jx);
    for (var jy = 0u; jy < ORDER; jy++) {
        let iy = wrap(o.y + jy, P.dims.y);
        if (iy < lo.y || iy >= lo.y + e.y) {
            continue;
        }
        // Same products as the atom-parallel spread had: q wx wy, then times wz.
        let qxy = qx * sy.w[jy];
        let row = ((ix - lo.x) * e.y + iy - lo.y) * e.z;
        for (var jz = 0u; jz < ORDER; jz++) {
            let iz = wrap(o.z + jz, P.dims.z);
            if (iz >= lo.z && iz < lo.z + e.z) {
                add_fixed(row + iz - lo.z, qxy * sz.w[jz]);
            }
        }
    }
}

// One workgroup per brick: (atom, jx plane) pairs of every list that can reach the brick.
@compute @workgroup_size(128)
fn pme_spread(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let b = wid.y * nwg.x + wid.x;
    if (b >= P.bricks.w) {
        return;
    }
    let nb = P.bricks.xyz;
    let bc = vec3u(b / (nb.y * nb.z), (b / nb.z) % nb.y, b % nb.z);
    let lo = vec3u(brick_lo(bc.x, P.dims.x, nb.x), brick_lo(bc.y, P.dims.y, nb.y),
                   brick_lo(bc.z, P.dims.z, nb.z));
    let hi = vec3u(brick_lo(bc.x + 1u, P.dims.x, nb.x), brick_lo(bc.y + 1u, P.dims.y, nb.y),
                   brick_lo(bc.z + 1u, P.dims.z, nb.z));
    let e = hi - lo;
    let npts = e.x * e.y * e.z;
    for (var p = lid; p < 2u * npts; p += SPREAD_WG) {
        atomicStore(&acc[p], 0u);
    }
    workgroupBarrier();
    let cap = P.visit.w;
    if (lid == 0u) {
        bin_len[b] = min(atomicLoad(&bin_count[b]), cap);
        if (b == 0u) {
            bin_len[P.bricks.w] = min(atomicLoad(&bin_count[P.bricks.w]), P.dims.w);
        }
    }
    let visits = P.visit.x * P.visit.y * P.visit.z;
    // Lists v < visits: bricks bc - d, d < visit per axis (distinct: visit <= bricks per
    // axis); v = visits: the overflow list.
    for (var v = 0u; v <= visits; v++) {
        var src = P.bricks.w * cap;
        var cnt = min(atomicLoad(&bin_count[P.bricks.w]), P.dims.w);
        if (v < visits) {
            let d = vec3u(v / (P.visit.y * P.visit.z), (v / P.visit.z) % P.visit.y,
                          v % P.visit.z);
            let nbi = brick_index((bc + nb - d) % nb);
            src = nbi * cap;
            cnt = min(atomicLoad(&bin_count[nbi]), cap);
        }
        for (var t = lid; t < cnt * ORDER; t += SPREAD_WG) {
            spread_plane(bins[src + t / ORDER], t % ORDER, lo, e);
        }
    }
    workgroupBarrier();
    for (var p = lid; p < npts; p += SPREAD_WG) {
        let w = vec2u(atomicLoad(&acc[2u * p]), atomicLoad(&acc[2u * p + 1u]));
        let z = p % e.z;
        let y = (p / e.z) % e.y;
        let x = p / (e.y * e.z);
        rho[((lo.x + x) * P.dims.y + lo.y + y) * P.dims.z + lo.z + z] = fixed_to_f32(w);
    }
}

// z-axis forward transform of the real charge grid (A describes full-length z lines). Two
// real lines a, b go into one complex line z = a + i b (so a tile holds 2 FFT_BATCH real
// lines and the transform work halves); their spectra are A[k] = (Z[k] + conj Z[-k]) / 2 and
// B[k] = (Z[k] - conj Z[-k]) / (2i). It also zeroes the brick counts for the next step's
// pme_bin (pme_spread, the last reader, has finished).
@compute @workgroup_size(128)
fn pme_fft_first(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
    let gid = fft_group(wid, nwg);
    for (var b = gid * FFT_WG + lid; b <= P.bricks.w; b += nwg.x * nwg.y * FFT_WG) {
        atomicStore(&bin_count[b], 0u);
    }
    let l0 = gid * 2u * FFT_BATCH;
    if (l0 >= FFT_LINES) {
        return;
    }
    let n = FFT_N;
    for (var e = lid; e < FFT_BATCH * n; e += FFT_WG) {
        let la = l0 + 2u * (e / n);
        let i = e % n;
        var v = vec2f(0.0);
        if (la < FFT_LINES) {
            v.x = rho[la * n + i];
        }
        if (la + 1u < FFT_LINES) {
            v.y = rho[(la + 1u) * n + i];
        }
        sh[e] = v;
    }
    workgroupBarrier();
    let r = fft_tile(0u, lid, false);
    let h = P.nzh;
    for (var e = lid; e < FFT_BATCH * h; e += FFT_WG) {
        let b = e / h;
        let k = e % h;
        let la = l0 + 2u * b;
        let z = sh[r + b * n + k];
        let zm = sh[r + b * n + select(n - k, 0u, k == 0u)];
        let c = vec2f(zm.x, -zm.y);
        let d = 0.5 * (z - c);
        if (la < FFT_LINES) {
            store_value(la * h + k, 0.5 * (z + c));
        }
        if (la + 1u < FFT_LINES) {
            // d / i = -i d
            store_value((la + 1u) * h + k, vec2f(d.y, -d.x));
        }
    }
}

// x-axis forward FFT, influence function, energy/virial partial sums, x-axis inverse FFT.
@compute @workgroup_size(128)
fn pme_convolve(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    let gid = fft_group(wid, nwg);
    let l0 = gid * FFT_BATCH;
    if (l0 >= FFT_LINES) {
        return;
    }
    load_tile(l0, lid);
    workgroupBarrier();
    let s = fft_tile(0u, lid, false);
    var acc0 = vec4f(0.0);
    var acc1 = vec4f(0.0);
    let count = FFT_BATCH * FFT_N;
    let h = P.nzh;
    for (var e = lid; e < count; e += FFT_WG) {
        let l = l0 + e / FFT_N;
        if (l >= FFT_LINES) {
            continue;
        }
        let g = global_index(l, e % FFT_N);
        let kx = g / (P.dims.y * h);
        let ky = (g / h) % P.dims.y;
        let kz = g % h;
        let v = sh[s + e];
        if (g == 0u) {
            // m = 0: tin-foil, no term; S(0) is the net charge (background term).
            acc1.w += v.x;
            sh[s + e] = vec2f(0.0);
            continue;
        }
        let tx = infl[kx];
        let ty = infl[P.dims.x + ky];
        let tz = infl[P.dims.x + P.dims.y + kz];
        let mv = vec3f(tx.x, ty.x, tz.x);
        let m2 = dot(mv, mv);
        let theta = P.coef.x * (tx.y * ty.y * tz.y) / m2;
        // Each kz in (0, Kz/2) stands for itself and its conjugate partner Kz - kz.
        var weight = 2.0;
        if (kz == 0u || 2u * kz == P.dims.z) {
            weight = 1.0;
        }
        let em = 0.5 * weight * theta * dot(v, v);
        // Essmann eq. (2.48): Pi_ab = sum E(m) [delta_ab - 2 (1 + pi^2 m^2 / alpha^2) m_a m_b / m^2].
        let c = em * 2.0 * (1.0 + P.coef.y * m2) / m2;
        acc0 += vec4f(em, em - c * mv.x * mv.x, em - c * mv.y * mv.y, em - c * mv.z * mv.z);
        // The partner (-kx, -ky, -kz) has m = -m, except along an axis at its Nyquist index
        // (2k = K), whose frequency -K/2 is its own partner's. A product m_a m_b then flips
        // sign in the partner when exactly one of a, b is at Nyquist, and the two terms cancel
        // (z is never at Nyquist in a doubled term).
        var off = vec3f(1.0);
        if (weight == 2.0) {
            let nx = 2u * kx == P.dims.x;
            let ny = 2u * ky == P.dims.y;
            off = vec3f(select(0.0, 1.0, nx == ny), select(1.0, 0.0, nx), select(1.0, 0.0, ny));
        }
        acc1 += vec4f(-c * mv.x * mv.y * off.x, -c * mv.x * mv.z * off.y,
                      -c * mv.y * mv.z * off.z, 0.0);
        sh[s + e] = theta * v;
    }
    workgroupBarrier();
    let r = fft_tile(s, lid, true);
    store_tile(l0, lid, r);
    workgroupBarrier();
    sh[lid * 4u] = acc0.xy;
    sh[lid * 4u + 1u] = acc0.zw;
    sh[lid * 4u + 2u] = acc1.xy;
    sh[lid * 4u + 3u] = acc1.zw;
    workgroupBarrier();
    for (var h = FFT_WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            for (var c = 0u; c < 4u; c++) {
                sh[lid * 4u + c] += sh[(lid + h) * 4u + c];
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partials[2u * gid] = vec4f(sh[0], sh[1]);
        partials[2u * gid + 1u] = vec4f(sh[2], sh[3]);
    }
}

// Sums the convolve partials into `result` (one workgroup; uses `sh`).
fn reduce_partials(lid: u32) {
    var a0 = vec4f(0.0);
    var a1 = vec4f(0.0);
    for (var k = lid; k < P.n_partials; k += FFT_WG) {
        a0 += partials[2u * k];
        a1 += partials[2u * k + 1u];
    }
    sh[lid * 4u] = a0.xy;
    sh[lid * 4u + 1u] = a0.zw;
    sh[lid * 4u + 2u] = a1.xy;
    sh[lid * 4u + 3u] = a1.zw;
    workgroupBarrier();
    for (var h = FFT_WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            for (var c = 0u; c < 4u; c++) {
                sh[lid * 4u + c] += sh[(lid + h) * 4u + c];
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let q = sh[3].y;
        // Neutralising background -k pi Q^2 / (2 V alpha^2); zero for a neutral system. Its
        // virial is E_bg on each diagonal component (E_bg scales as 1/V).
        let ebg = 0.5 * P.coef.z * q * q;
        result[0] = sh[0].x + ebg;
        result[1] = sh[0].y + ebg;
        result[2] = sh[1].x + ebg;
        result[3] = sh[1].y + ebg;
        result[4] = sh[2].x;
        result[5] = sh[2].y;
        result[6] = sh[3].x;
        result[7] = q;
    }
    workgroupBarrier();
}

// z-axis inverse transform of lines completed by Hermitian symmetry (X[Kz - k] = conj X[k]);
// keeps the real potential. Two lines a, b go into one complex line: Z = A + i B transforms
// to a + i b, both real. Workgroup 0 first sums the convolve partials into `result` (the
// convolve has finished; pme_interp reads it), which saves a one-workgroup dispatch.
@compute @workgroup_size(128)
fn pme_fft_last(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    let gid = fft_group(wid, nwg);
    if (gid == 0u) {
        reduce_partials(lid);
    }
    let l0 = gid * 2u * FFT_BATCH;
    if (l0 >= FFT_LINES) {
        return;
    }
    let n = FFT_N;
    let h = P.nzh;
    for (var e = lid; e < FFT_BATCH * n; e += FFT_WG) {
        let la = l0 + 2u * (e / n);
        let i = e % n;
        let k = select(n - i, i, i < h);
        var a = vec2f(0.0);
        var b = vec2f(0.0);
        if (la < FFT_LINES) {
            a = load_value(la * h + k);
        }
        if (la + 1u < FFT_LINES) {
            b = load_value((la + 1u) * h + k);
        }
        if (i >= h) {
            a.y = -a.y;
            b.y = -b.y;
        }
        sh[e] = vec2f(a.x - b.y, a.y + b.x);
    }
    workgroupBarrier();
    let r = fft_tile(0u, lid, true);
    for (var e = lid; e < FFT_BATCH * n; e += FFT_WG) {
        let la = l0 + 2u * (e / n);
        let i = e % n;
        let z = sh[r + e];
        if (la < FFT_LINES) {
            phi[la * n + i] = z.x;
        }
        if (la + 1u < FFT_LINES) {
            phi[(la + 1u) * n + i] = z.y;
        }
    }
}

// ---- Interpolation by bricks ----------------------------------------------------------
// One workgroup per brick: it loads the potential around the brick (the brick plus ORDER - 1
// points past its far faces, at most 13^3 values) into workgroup memory with coalesced
// reads, then ORDER threads per atom of the brick's own list (one per jx plane) read the
// ORDER^2 values of their plane from there. Each atom is in exactly one list (its brick's or
// the overflow list, whose atoms the workgroups share out and read `phi` directly).
const INTERP_WG: u32 = 128u;
const TILE_MAX: u32 = 2197u; // (BRICK + 6 - 1)^3
var<workgroup> tile: array<f32, TILE_MAX>;
var<workgroup> interp_part: array<vec4f, INTERP_WG>;
var<workgroup> interp_count: u32;

struct AtomSpline {
    x: vec3f,
    o: vec3u,
    sx: Spline,
    sy: Spline,
    sz: Spline,
}

fn atom_spline(i: u32) -> AtomSpline {
    let x = pos[i].xyz;
    let u = x * P.scale.xyz;
    let t = u - floor(u);
    return AtomSpline(x, grid_origin(x), bspline(t.x), bspline(t.y), bspline(t.z));
}

// (potential, dphi/du_x, dphi/du_y, dphi/du_z) of plane jx of atom i from the tile whose
// corner is grid point lo (the atom's first grid point lies in the brick).
fn plane_from_tile(i: u32, jx: u32, lo: vec3u, t: vec3u) -> vec4f {
    let a = atom_spline(i);
    let l = a.o - lo;
    let wx = pick(a.sx.w, jx);
    let dx = pick(a.sx.d, jx);
    var acc = vec4f(0.0);
    for (var jy = 0u; jy < ORDER; jy++) {
        let row = ((l.x + jx) * t.y + l.y + jy) * t.z + l.z;
        var p0 = 0.0;
        var pz = 0.0;
        for (var jz = 0u; jz < ORDER; jz++) {
            let v = tile[row + jz];
            p0 += a.sz.w[jz] * v;
            pz += a.sz.d[jz] * v;
        }
        acc += vec4f(wx * a.sy.w[jy] * p0, dx * a.sy.w[jy] * p0,
                     wx * a.sy.d[jy] * p0, wx * a.sy.w[jy] * pz);
    }
    return acc;
}

// The same from `phi` in global memory (overflow atoms).
fn plane_from_phi(i: u32, jx: u32) -> vec4f {
    let a = atom_spline(i);
    let ix = wrap(a.o.x + jx, P.dims.x);
    let wx = pick(a.sx.w, jx);
    let dx = pick(a.sx.d, jx);
    var acc = vec4f(0.0);
    for (var jy = 0u; jy < ORDER; jy++) {
        let row = (ix * P.dims.y + wrap(a.o.y + jy, P.dims.y)) * P.dims.z;
        var p0 = 0.0;
        var pz = 0.0;
        for (var jz = 0u; jz < ORDER; jz++) {
            let v = phi[row + wrap(a.o.z + jz, P.dims.z)];
            p0 += a.sz.w[jz] * v;
            pz += a.sz.d[jz] * v;
        }
        acc += vec4f(wx * a.sy.w[jy] * p0, dx * a.sy.w[jy] * p0,
                     wx * a.sy.d[jy] * p0, wx * a.sy.w[jy] * pz);
    }
    return acc;
}

// Sums the ORDER planes of each atom of a round (threads t < per_round, atom t / ORDER) and
// ADDS force, energy share and virial share. `i` is the thread's atom (or n_atoms: none).
fn finish_round(lid: u32, i: u32, acc: vec4f) {
    interp_part[lid] = acc;
    workgroupBarrier();
    if (i < P.dims.w && lid % ORDER == 0u) {
        var sum = acc;
        for (var k = 1u; k < ORDER; k++) {
            sum += interp_part[lid + k];
        }
        let q = charge[i];
        let f = -q * sum.yzw * P.scale.xyz;
        let e = 0.5 * q * (sum.x + P.coef.z * result[7]);
        force[i] += vec4f(f, e);
        atom_virial[i].x += (result[1] + result[2] + result[3]) * P.scale.w;
    }
    workgroupBarrier();
}

@compute @workgroup_size(128)
fn pme_interp(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let b = wid.y * nwg.x + wid.x;
    if (b >= P.bricks.w) {
        return;
    }
    let nb = P.bricks.xyz;
    let bc = vec3u(b / (nb.y * nb.z), (b / nb.z) % nb.y, b % nb.z);
    let lo = vec3u(brick_lo(bc.x, P.dims.x, nb.x), brick_lo(bc.y, P.dims.y, nb.y),
                   brick_lo(bc.z, P.dims.z, nb.z));
    let hi = vec3u(brick_lo(bc.x + 1u, P.dims.x, nb.x), brick_lo(bc.y + 1u, P.dims.y, nb.y),
                   brick_lo(bc.z + 1u, P.dims.z, nb.z));
    let t = hi - lo + vec3u(ORDER - 1u);
    for (var p = lid; p < t.x * t.y * t.z; p += INTERP_WG) {
        let z = p % t.z;
        let y = (p / t.z) % t.y;
        let x = p / (t.y * t.z);
        tile[p] = phi[(((lo.x + x) % P.dims.x) * P.dims.y + (lo.y + y) % P.dims.y) * P.dims.z
                      + (lo.z + z) % P.dims.z];
    }
    if (lid == 0u) {
        interp_count = bin_len[b];
    }
    workgroupBarrier();
    let per_round = (INTERP_WG / ORDER) * ORDER;
    let slot = lid / ORDER;
    let jx = lid % ORDER;
    let cnt = workgroupUniformLoad(&interp_count);
    let cap = P.visit.w;
    for (var r0 = 0u; r0 < cnt; r0 += INTERP_WG / ORDER) {
        var i = P.dims.w;
        var acc = vec4f(0.0);
        if (lid < per_round && r0 + slot < cnt) {
            i = bins[b * cap + r0 + slot];
            acc = plane_from_tile(i, jx, lo, t);
        }
        finish_round(lid, i, acc);
    }
    // Overflow atoms k = b, b + n_bricks, ... (none unless a brick's list was full).
    if (lid == 0u) {
        interp_count = bin_len[P.bricks.w];
    }
    let n_ovf = workgroupUniformLoad(&interp_count);
    let stride = P.bricks.w * (INTERP_WG / ORDER);
    for (var r0 = b * (INTERP_WG / ORDER); r0 < n_ovf; r0 += stride) {
        var i = P.dims.w;
        var acc = vec4f(0.0);
        if (lid < per_round && r0 + slot < n_ovf) {
            i = bins[P.bricks.w * cap + r0 + slot];
            acc = plane_from_phi(i, jx);
        }
        finish_round(lid, i, acc);
    }
}
