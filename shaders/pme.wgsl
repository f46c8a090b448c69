// Smooth particle-mesh Ewald, reciprocal part (Essmann et al. 1995). Driver and float64 twin:
// `forces::pme`. One step is eight dispatches:
//   pme_spread    per atom: order^3 B-spline weights added to the grid as 64-bit fixed point
//                 (two u32 atomics: low word with carry, high word) - no float atomics;
//   pme_fft_first z-axis forward FFT reading the fixed-point grid;
//   fft_forward   y axis (fft.wgsl);
//   pme_convolve  x-axis forward FFT, multiply by the influence function, energy and virial
//                 partial sums per workgroup, x-axis inverse FFT - all in workgroup memory;
//   fft_inverse   y axis;
//   pme_fft_last  z-axis inverse FFT, writes the real potential grid `phi` and clears the grid
//                 for the next step's spreading;
//   pme_reduce    one workgroup sums the partials into `result`;
//   pme_interp    per atom: force, energy share and virial share ADDED to force / atom_virial.
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
    _p0: u32,
    _p1: u32,
    _p2: u32,
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
// The same buffer as `grid`, seen as fixed-point words (low, high) during spreading.
@group(0) @binding(12) var<storage, read_write> grid_fx: array<atomic<u32>>;

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

// Adds c to the 64-bit fixed-point value (32 fractional bits) at grid point g. The sum is
// exact modulo 2^64 whatever the order of the additions, so the spread is deterministic.
fn add_fixed(g: u32, c: f32) {
    let fl = floor(c);
    let lo = u32((c - fl) * 4294967296.0);
    var hi = bitcast<u32>(i32(fl));
    let old = atomicAdd(&grid_fx[2u * g], lo);
    if (old > 0xffffffffu - lo) {
        hi += 1u;
    }
    if (hi != 0u) {
        atomicAdd(&grid_fx[2u * g + 1u], hi);
    }
}

@compute @workgroup_size(64)
fn pme_spread(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let i = atom_id(wid, nwg, lid);
    if (i >= P.dims.w) {
        return;
    }
    let q = charge[i];
    if (q == 0.0) {
        return;
    }
    let x = pos[i].xyz;
    let u = x * P.scale.xyz;
    let t = u - floor(u);
    let o = grid_origin(x);
    let sx = bspline(t.x);
    let sy = bspline(t.y);
    let sz = bspline(t.z);
    for (var jx = 0u; jx < ORDER; jx++) {
        let ix = (o.x + jx) % P.dims.x;
        let qx = q * sx.w[jx];
        for (var jy = 0u; jy < ORDER; jy++) {
            let iy = (o.y + jy) % P.dims.y;
            let qxy = qx * sy.w[jy];
            let row = (ix * P.dims.y + iy) * P.dims.z;
            for (var jz = 0u; jz < ORDER; jz++) {
                let iz = (o.z + jz) % P.dims.z;
                add_fixed(row + iz, qxy * sz.w[jz]);
            }
        }
    }
}

// z-axis forward transform of the fixed-point charge grid.
@compute @workgroup_size(128)
fn pme_fft_first(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
    let l0 = fft_group(wid, nwg) * A.batch;
    if (l0 >= A.n_lines) {
        return;
    }
    let count = A.batch * A.n;
    for (var e = lid; e < count; e += FFT_WG) {
        let bp = tile_line_pos(e);
        let l = l0 + bp.x;
        var v = vec2f(0.0);
        if (l < A.n_lines) {
            let w = grid[global_index(l, bp.y)];
            v = vec2f(f32(bitcast<i32>(w.y)) + f32(w.x) * FX_LO, 0.0);
        }
        sh[bp.x * A.n + bp.y] = v;
    }
    workgroupBarrier();
    let r = fft_tile(0u, lid, false);
    store_tile(l0, lid, r);
}

// x-axis forward FFT, influence function, energy/virial partial sums, x-axis inverse FFT.
@compute @workgroup_size(128)
fn pme_convolve(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    let gid = fft_group(wid, nwg);
    let l0 = gid * A.batch;
    if (l0 >= A.n_lines) {
        return;
    }
    load_tile(l0, lid);
    workgroupBarrier();
    let s = fft_tile(0u, lid, false);
    var acc0 = vec4f(0.0);
    var acc1 = vec4f(0.0);
    let count = A.batch * A.n;
    let nyz = P.dims.y * P.dims.z;
    for (var e = lid; e < count; e += FFT_WG) {
        let l = l0 + e / A.n;
        if (l >= A.n_lines) {
            continue;
        }
        let g = global_index(l, e % A.n);
        let kx = g / nyz;
        let ky = (g / P.dims.z) % P.dims.y;
        let kz = g % P.dims.z;
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
        let em = 0.5 * theta * dot(v, v);
        // Essmann eq. (2.48): Pi_ab = sum E(m) [delta_ab - 2 (1 + pi^2 m^2 / alpha^2) m_a m_b / m^2].
        let c = em * 2.0 * (1.0 + P.coef.y * m2) / m2;
        acc0 += vec4f(em, em - c * mv.x * mv.x, em - c * mv.y * mv.y, em - c * mv.z * mv.z);
        acc1 += vec4f(-c * mv.x * mv.y, -c * mv.x * mv.z, -c * mv.y * mv.z, 0.0);
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

// z-axis inverse transform: keeps the real potential, clears the grid for the next spread.
@compute @workgroup_size(128)
fn pme_fft_last(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    let l0 = fft_group(wid, nwg) * A.batch;
    if (l0 >= A.n_lines) {
        return;
    }
    load_tile(l0, lid);
    workgroupBarrier();
    let r = fft_tile(0u, lid, true);
    let count = A.batch * A.n;
    for (var e = lid; e < count; e += FFT_WG) {
        let bp = tile_line_pos(e);
        let l = l0 + bp.x;
        if (l < A.n_lines) {
            let g = global_index(l, bp.y);
            phi[g] = sh[r + bp.x * A.n + bp.y].x;
            grid[g] = vec2u(0u);
        }
    }
}

@compute @workgroup_size(128)
fn pme_reduce(@builtin(local_invocation_index) lid: u32) {
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
}

@compute @workgroup_size(64)
fn pme_interp(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let i = atom_id(wid, nwg, lid);
    if (i >= P.dims.w) {
        return;
    }
    let q = charge[i];
    var pot = 0.0;
    var grad = vec3f(0.0);
    if (q != 0.0) {
        let x = pos[i].xyz;
        let u = x * P.scale.xyz;
        let t = u - floor(u);
        let o = grid_origin(x);
        let sx = bspline(t.x);
        let sy = bspline(t.y);
        let sz = bspline(t.z);
        for (var jx = 0u; jx < ORDER; jx++) {
            let ix = (o.x + jx) % P.dims.x;
            for (var jy = 0u; jy < ORDER; jy++) {
                let iy = (o.y + jy) % P.dims.y;
                let row = (ix * P.dims.y + iy) * P.dims.z;
                var p0 = 0.0;
                var pz = 0.0;
                for (var jz = 0u; jz < ORDER; jz++) {
                    let v = phi[row + (o.z + jz) % P.dims.z];
                    p0 += sz.w[jz] * v;
                    pz += sz.d[jz] * v;
                }
                pot += sx.w[jx] * sy.w[jy] * p0;
                grad += vec3f(sx.d[jx] * sy.w[jy] * p0, sx.w[jx] * sy.d[jy] * p0,
                              sx.w[jx] * sy.w[jy] * pz);
            }
        }
    }
    let f = -q * grad * P.scale.xyz;
    let e = 0.5 * q * (pot + P.coef.z * result[7]);
    force[i] += vec4f(f, e);
    atom_virial[i].x += (result[1] + result[2] + result[3]) * P.scale.w;
}
