// Smooth particle-mesh Ewald, reciprocal part (Essmann et al. 1995). Driver and float64 twin:
// `forces::pme`. One step is eight dispatches:
//   pme_splines   per atom: B-spline weights and derivatives along the three axes;
//   pme_spread    the order^3 charge contributions of each atom added to the charge grid,
//                 which is one of two composed snippets: pme_fixed.wgsl (64-bit fixed point
//                 from u32 atomics, core WebGPU) or pme_float.wgsl (f32 atomics, where the
//                 adapter has them; `forces::pme::PmeSpread`);
//   pme_fft_first z-axis forward FFT of the real charge grid, two real lines per complex
//                 transform (clearing the grid for the next step); only kz <= Kz/2 is kept (the
//                 rest is the complex conjugate), so the complex grid `grid` holds
//                 Kx * Ky * (Kz/2 + 1) values;
//   fft_forward   y axis of the half spectrum (fft.wgsl; fft2_forward, the two-level kernel,
//                 where Ky has a `forces::fft::RegPlan`, as for pme_convolve2 and fft2_inverse);
//   pme_convolve  x-axis forward FFT, multiply by the influence function, energy and virial
//                 partial sums per workgroup, x-axis inverse FFT - all in workgroup memory;
//   fft_inverse   y axis;
//   pme_fft_last  z-axis inverse FFT of the Hermitian-completed lines, two per complex
//                 transform, writes the real potential grid `phi`; its workgroup 0 first sums
//                 the convolve's partials into `result`;
//   pme_interp    ORDER threads per atom: force, energy share and virial share ADDED to
//                 force / atom_virial.
// The FFT kernels are built once per axis: fft.wgsl's override constants describe it.
//
// Spline convention (OpenMM's): with u = K x / L, atom weights go to grid points
// floor(u) + j, j < ORDER, with weight M_p(frac(u) + p - 1 - j). The float64 reference uses
// Essmann's points floor(u) - j; the two grids differ by a whole-grid translation, which
// leaves energy and forces unchanged.
#import fft
#import bspline
#import interp

// Mirrors `forces::pme::PmeUniform`.
struct PmeUniform {
    dims: vec4u,   // Kx, Ky, Kz, n_atoms
    scale: vec4f,  // K_a / L_a; w = 1 / n_atoms
    coef: vec4f,   // x = k / (pi V), y = pi^2 / alpha^2, z = -k pi / (V alpha^2), w unused
    n_partials: u32,
    nzh: u32,      // Kz / 2 + 1: z extent of the half spectrum
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
// Bindings 12 and 13: the charge grid, declared by the snippet (pme_fixed / pme_float.wgsl).
@group(0) @binding(14) var<storage, read_write> spl: array<f32>;

override ORDER: u32 = 5u;
// Kz / 2 + 1 (= P.nzh) as a pipeline constant, so that the FFT kernels' divisions by it
// compile to multiplies (a division by a uniform value costs ~20 instructions per element).
override NZH: u32 = 1u;
// The grid (Kx, Ky, Kz = P.dims.xyz) as pipeline constants: the spread and interpolation
// index the grid with them several times per thread, and wraps (`%`) by constants are cheap.
override GX: u32 = 1u;
override GY: u32 = 1u;
override GZ: u32 = 1u;
// Energy and virial too (the steps that read them: the last of each batch, `eval`). Without
// them the convolve only multiplies by the influence function (no per-point energy/virial
// sums, no workgroup reduction), pme_fft_last does not reduce the partials, and the
// interpolation adds forces alone (the energy shares in force.w and the virial shares are
// read only where they were computed, as for the real-space kernel's ENERGY).
override ENERGY: bool = true;
// Spline weights and derivatives are computed once per atom (`pme_splines`, 6·ORDER floats:
// w_x, d_x, w_y, d_y, w_z, d_z) and read by spread and interpolation. Every one of an atom's
// ORDER² spread threads and ORDER interpolation threads re-running `bspline` (whose
// runtime-indexed arrays live in local memory) cost 1.2–1.9x more on the H200. Evaluating
// them inside the spread instead (one thread per atom and axis into workgroup memory, a
// barrier, then the additions) made splines + spread 1.6–2.2x slower (BENCHMARKS.md, call 17).
const PME_WG: u32 = 64u;

// First grid index along each axis and the fractional offsets of atom position x.
fn grid_origin(x: vec3f) -> vec3u {
    let u = x * P.scale.xyz;
    let k = vec3i(floor(u));
    let dims = vec3i(i32(GX), i32(GY), i32(GZ));
    return vec3u(((k % dims) + dims) % dims);
}

// Weight (d = 0u) or derivative (d = 1u) j of atom i along axis a, from `pme_splines`.
// Stored component-major (6·ORDER rows of N atoms) so that pme_splines' writes coalesce.
fn spl_at(i: u32, a: u32, d: u32, j: u32) -> f32 {
    return spl[((2u * a + d) * ORDER + j) * P.dims.w + i];
}

@compute @workgroup_size(64)
fn pme_splines(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (i >= P.dims.w) {
        return;
    }
    atom_splines(i, pos[i].xyz * P.scale.xyz, P.dims.w);
}

// interp.wgsl reads pme_splines' stored splines.
const INTERP_FLY: bool = false;

fn put_spline(k: u32, v: f32) {
    spl[k] = v;
}

fn atom_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * PME_WG + lid;
}

// z-axis forward transform of the charge grid (full-length z lines), which it clears for the
// next step's spread (`charge_at`, `clear_charge`: the grid's snippet). Two real lines a, b go into
// one complex line z = a + i b (so a tile holds 2 FFT_BATCH real lines and the transform work
// halves); their spectra are A[k] = (Z[k] + conj Z[-k]) / 2 and B[k] = (Z[k] - conj Z[-k]) / (2i).
@compute @workgroup_size(FFT_WG)
fn pme_fft_first(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
    let gid = fft_group(wid, nwg);
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
            v.x = charge_at(la * n + i);
        }
        if (la + 1u < FFT_LINES) {
            v.y = charge_at((la + 1u) * n + i);
        }
        sh[e] = v;
    }
    workgroupBarrier();
    // The workgroup's lines are one contiguous run, cleared only now that every load of it
    // has returned: with a store right behind a load of the same word (clearing as it read)
    // this pass took 1,605 us at 324^3 on the H200, 381 us this way (BENCHMARKS.md, calls
    // 16-17).
    let g_end = min(l0 + 2u * FFT_BATCH, FFT_LINES) * n;
    for (var g = l0 * n + lid; g < g_end; g += FFT_WG) {
        clear_charge(g);
    }
    let r = fft_tile(0u, lid, false);
    let h = NZH;
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

// One point of the half spectrum on an x line (line l = ky * NZH + kz, position kx along it:
// `forces::fft::axis`, x): returns it times the influence function and, with ENERGY, adds its
// energy and virial terms to acc0 = (E, Wxx, Wyy, Wzz) and acc1 = (Wxy, Wxz, Wyz, S(0)).
fn convolve_point(l: u32, kx: u32, v: vec2f, acc0: ptr<function, vec4f>,
                  acc1: ptr<function, vec4f>) -> vec2f {
    let ky = l / NZH;
    let kz = l % NZH;
    if (l == 0u && kx == 0u) {
        // m = 0: tin-foil, no term; S(0) is the net charge (background term).
        (*acc1).w += v.x;
        return vec2f(0.0);
    }
    let tx = infl[kx];
    let ty = infl[GX + ky];
    let tz = infl[GX + GY + kz];
    let mv = vec3f(tx.x, ty.x, tz.x);
    let m2 = dot(mv, mv);
    let theta = P.coef.x * (tx.y * ty.y * tz.y) / m2;
    if (!ENERGY) {
        return theta * v;
    }
    // Each kz in (0, Kz/2) stands for itself and its conjugate partner Kz - kz.
    var weight = 2.0;
    if (kz == 0u || 2u * kz == GZ) {
        weight = 1.0;
    }
    let em = 0.5 * weight * theta * dot(v, v);
    // Essmann eq. (2.48): Pi_ab = sum E(m) [delta_ab - 2 (1 + pi^2 m^2 / alpha^2) m_a m_b / m^2].
    let c = em * 2.0 * (1.0 + P.coef.y * m2) / m2;
    *acc0 += vec4f(em, em - c * mv.x * mv.x, em - c * mv.y * mv.y, em - c * mv.z * mv.z);
    // The partner (-kx, -ky, -kz) has m = -m, except along an axis at its Nyquist index
    // (2k = K), whose frequency -K/2 is its own partner's. A product m_a m_b then flips
    // sign in the partner when exactly one of a, b is at Nyquist, and the two terms cancel
    // (z is never at Nyquist in a doubled term).
    var off = vec3f(1.0);
    if (weight == 2.0) {
        let nx = 2u * kx == GX;
        let ny = 2u * ky == GY;
        off = vec3f(select(0.0, 1.0, nx == ny), select(1.0, 0.0, nx), select(1.0, 0.0, ny));
    }
    *acc1 += vec4f(-c * mv.x * mv.y * off.x, -c * mv.x * mv.z * off.y,
                   -c * mv.y * mv.z * off.z, 0.0);
    return theta * v;
}

// x-axis forward FFT, influence function, energy/virial partial sums, x-axis inverse FFT.
@compute @workgroup_size(FFT_WG)
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
    for (var e = lid; e < count; e += FFT_WG) {
        let l = l0 + e / FFT_N;
        if (l < FFT_LINES) {
            sh[s + e] = convolve_point(l, e % FFT_N, sh[s + e], &acc0, &acc1);
        }
    }
    workgroupBarrier();
    let r = fft_tile(s, lid, true);
    store_tile(l0, lid, r);
    if (!ENERGY) {
        return;
    }
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

// Workgroup sum of every thread's (acc0, acc1) into shr[0..4) (4 FFT2_WG values of shr: the
// PME driver runs the two-level kernels only where they fit). Halving from the power of two
// at or above FFT2_WG, which need not be one.
fn shr_sum4(lid: u32, acc0: vec4f, acc1: vec4f) {
    shr[lid * 4u] = acc0.xy;
    shr[lid * 4u + 1u] = acc0.zw;
    shr[lid * 4u + 2u] = acc1.xy;
    shr[lid * 4u + 3u] = acc1.zw;
    workgroupBarrier();
    var h = 1u;
    while (h < FFT2_WG) {
        h <<= 1u;
    }
    for (h >>= 1u; h > 0u; h >>= 1u) {
        if (lid < h && lid + h < FFT2_WG) {
            for (var k = 0u; k < 4u; k++) {
                shr[lid * 4u + k] += shr[(lid + h) * 4u + k];
            }
        }
        workgroupBarrier();
    }
}

// pme_convolve with the two-level register FFT (fft.wgsl `fft2_*`; where the x length has a
// `forces::fft::RegPlan`). Phases 1-2 as fft2_lines leave thread (b, k1) holding
// X[k1 + N1 k2], k2 < N2, of line l0 + b; it multiplies them by the influence function, runs
// the inverse transform's first half on them at once (the split with k = k1 + N1 k2 and
// j = j2 + N2 j1: Z[k1][j2] = w_n^(-k1 j2) sum_k2 X[k1 + N1 k2] w_N2^(-k2 j2)), and writes
// Z to its own row of workgroup memory (the row it read, so no barrier in between); after a
// barrier thread (b, j2) sums over k1 and stores x[j2 + N2 j1], where it loaded.
@compute @workgroup_size(FFT2_WG)
fn pme_convolve2(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
    let gid = fft_group(wid, nwg);
    let l0 = gid * FFT2_B;
    if (l0 >= FFT_LINES) {
        return;
    }
    fft2_first_phase(l0, lid, false);
    workgroupBarrier();
    var acc0 = vec4f(0.0);
    var acc1 = vec4f(0.0);
    let r = fft2_thread(lid, FFT2_N1);
    if (r.x < FFT2_B) {
        let l = l0 + r.x;
        var x = fft2_rows(r.x, r.y, false);
        if (l < FFT_LINES) {
            for (var k2 = 0u; k2 < FFT2_N2; k2++) {
                x[k2] = convolve_point(l, r.y + FFT2_N1 * k2, x[k2], &acc0, &acc1);
            }
        }
        let z = fft2_twiddle(dft_reg(x, FFT2_P2, FFT2_Q2, true), r.y, FFT2_N2, true);
        let row = shr_row(r.x, r.y);
        for (var j2 = 0u; j2 < FFT2_N2; j2++) {
            shr[row + j2] = z[j2];
        }
    }
    workgroupBarrier();
    let c = fft2_thread(lid, FFT2_N2);
    if (c.x < FFT2_B) {
        var z: Reg;
        for (var k1 = 0u; k1 < FFT2_N1; k1++) {
            z[k1] = shr[shr_row(c.x, k1) + c.y];
        }
        fft2_store(l0 + c.x, c.y, FFT2_N2, FFT2_N1, dft_reg(z, FFT2_P1, FFT2_Q1, true));
    }
    if (!ENERGY) {
        return;
    }
    workgroupBarrier();
    shr_sum4(lid, acc0, acc1);
    if (lid == 0u) {
        partials[2u * gid] = vec4f(shr[0], shr[1]);
        partials[2u * gid + 1u] = vec4f(shr[2], shr[3]);
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
        write_result(vec4f(sh[0], sh[1]), vec4f(sh[2], sh[3]));
    }
    workgroupBarrier();
}

// The summed partials (E, Wxx, Wyy, Wzz), (Wxy, Wxz, Wyz, S(0)) into `result`.
fn write_result(s0: vec4f, s1: vec4f) {
    let q = s1.w;
    // Neutralising background -k pi Q^2 / (2 V alpha^2); zero for a neutral system. Its
    // virial is E_bg on each diagonal component (E_bg scales as 1/V).
    let ebg = 0.5 * P.coef.z * q * q;
    result[0] = s0.x + ebg;
    result[1] = s0.y + ebg;
    result[2] = s0.z + ebg;
    result[3] = s0.w + ebg;
    result[4] = s1.x;
    result[5] = s1.y;
    result[6] = s1.z;
    result[7] = q;
}


// z-axis inverse transform of lines completed by Hermitian symmetry (X[Kz - k] = conj X[k]);
// keeps the real potential. Two lines a, b go into one complex line: Z = A + i B transforms
// to a + i b, both real. Workgroup 0 first sums the convolve partials into `result` (the
// convolve has finished; pme_interp reads it), which saves a one-workgroup dispatch.
@compute @workgroup_size(FFT_WG)
fn pme_fft_last(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    let gid = fft_group(wid, nwg);
    if (ENERGY && gid == 0u) {
        reduce_partials(lid);
    }
    let l0 = gid * 2u * FFT_BATCH;
    if (l0 >= FFT_LINES) {
        return;
    }
    let n = FFT_N;
    let h = NZH;
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

@compute @workgroup_size(64)
fn pme_interp(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let per_group = PME_WG / ORDER;
    let i = (wid.y * nwg.x + wid.x) * per_group + lid / ORDER;
    let live = lid / ORDER < per_group && i < P.dims.w;
    var q = 0.0;
    var x = vec3f(0.0);
    if (live) {
        q = charge[i];
        x = pos[i].xyz;
    }
    interp_atom(lid, lid % ORDER, live, i, q, x, i, P.scale, P.coef.z);
}
