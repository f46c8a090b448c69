// ANI atomic environment vectors (AEV) and their analytic derivatives (forces).
//
// Physics (ANI.md §3, §6): radial terms 0.25·exp(−η_R (r − R_k)²)·f_C(r; R_cr) per neighbor
// species, angular terms 2·((1 + cos(θ′ − θ_z))/2)^ζ · exp(−η_A ((r_j + r_k)/2 − R_a)²) ·
// f_C(r_j; R_ca) f_C(r_k; R_ca) per unordered neighbor-species pair, θ′ = arccos(0.95 cos θ).
// The Rust twin is `ani::reference` (float64); tests hold them together.
//
// One workgroup per central atom, a gather everywhere (no float atomics, deterministic):
// - `aev_compute`: radial outputs are owned by lanes (shift k, group g), each of up to 4
//   groups summing every 4th neighbor into its own copy; angular outputs by lanes
//   (a, z) = lane % 32 with two private copies (lane / 32 splits the triples), the angular
//   neighbors sorted by species so each species pair's triples are summed in registers.
// - `aev_force`: −∂E/∂r_a from (1) pairs (a, j) using dE/dG of both ends and (2) the triples
//   centred on a, each evaluated once; it also stores, per angular neighbor j of a, the sum
//   over those triples of ∂E_a/∂v_j (`ang_d`, with j), which is what moving j costs E_a.
// - `aev_force_sides`: one thread per atom a adds ∂E_c/∂v_a for each angular neighbor c, found
//   in c's stored list (angular neighbors are symmetric: same minimum-image distance). Before,
//   each triple was evaluated three times (at its centre and from each side) to stay a gather.
//   Each pair's virial is split between its two atoms; a triple's goes to its centre.
//
// Precision: AEV and dE/dAEV rows are `Store2` pairs (vec2f, or two halves in f16 mode) from the
// `prec_*` snippet composed in front of this file. Row of atom i is row_of[i] (atoms grouped by
// species so the dense layers see contiguous rows); dE/dAEV overwrites the AEV in place.
#import common

struct AniParams {
    rcr: f32,
    rca: f32,
    eta_r: f32,
    eta_a: f32,
    zeta: f32,
    n_species: u32,
    n_shf_r: u32,
    n_shf_a: u32,
    n_shf_z: u32,
    radial_len: u32,
    aev_len: u32,
    energy_scale: f32,    // Hartree -> engine energy unit (forces: Hartree/Å -> engine units)
    half_pi_rcr: f32,     // π / (2 R_cr): f_C = cos²(r·π/(2R_c))
    half_pi_rca: f32,
    max_ang: u32,         // angular neighbors that fit the workgroup cache
    _pad: u32,
    shf_r: array<vec4f, 8>,
    shf_a: array<vec4f, 4>,
    cos_z: array<vec4f, 2>,
    sin_z: array<vec4f, 2>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> A: AniParams;
@group(0) @binding(2) var<storage, read> pos: array<vec4f>;
@group(0) @binding(3) var<storage, read> nbr_list: array<u32>;
@group(0) @binding(4) var<storage, read> nbr_count: array<u32>;
@group(0) @binding(5) var<storage, read> species_of_type: array<u32>;
@group(0) @binding(6) var<storage, read> row_of: array<u32>;
@group(0) @binding(7) var<storage, read_write> aev: array<Store2>;
@group(0) @binding(8) var<storage, read> grad: array<Store2>;
@group(0) @binding(9) var<storage, read> atom_energy: array<f32>;
@group(0) @binding(10) var<storage, read_write> force: array<vec4f>;
@group(0) @binding(11) var<storage, read_write> atom_virial: array<vec2f>;
@group(0) @binding(12) var<storage, read_write> status: array<atomic<u32>>;
// Per atom a: MAX_ANG slots (bits of Σ over a's triples of ∂E_a/∂v_j, then j) and their
// count. u32 so the index never passes through a float register (small u32 are f32 denormals).
@group(0) @binding(13) var<storage, read_write> ang_d: array<vec4u>;
@group(0) @binding(14) var<storage, read_write> ang_n: array<u32>;

const LANES: u32 = 64u;
const MAX_ANG: u32 = 64u;   // = forces::ani::MAX_ANG_NEIGHBORS
const MAX_RAD_OUT: u32 = 128u;
const MAX_ANG_OUT: u32 = 896u;
// `aev_compute` sums radial terms in up to 4 private copies (lane groups take every 4th
// neighbor of a chunk), then the two angular copies (the workgroup's halves).
const RAD_COPIES: u32 = 4u;
const ANG_BASE: u32 = 512u;                    // RAD_COPIES * MAX_RAD_OUT
const OUT_ACC: u32 = 2304u;                    // ANG_BASE + 2 * MAX_ANG_OUT

var<workgroup> ang_v: array<vec3f, MAX_ANG>;   // centre -> side (minimum image)
var<workgroup> ang_r: array<f32, MAX_ANG>;
var<workgroup> ang_fc: array<f32, MAX_ANG>;   // f_C(r; R_ca)
var<workgroup> ang_s: array<u32, MAX_ANG>;
var<workgroup> ang_j: array<u32, MAX_ANG>;
var<workgroup> chunk_r: array<f32, LANES>;
var<workgroup> chunk_fc: array<f32, LANES>;  // 0.25 f_C(r; R_cr), once per neighbor
var<workgroup> chunk_s: array<u32, LANES>;
var<workgroup> blk: array<u32, 8>;            // species-sorted ang_*: species s at [blk[s], blk[s+1])
var<workgroup> scan: array<u32, LANES>;
var<workgroup> n_ang_wg: u32;
var<workgroup> overflow_wg: u32;
var<workgroup> out_acc: array<f32, OUT_ACC>;   // radial copies (4 × 128) | angular copy 0 (896) | copy 1
var<workgroup> red: array<vec4f, LANES>;
var<workgroup> tri_j: array<u32, LANES>;      // one round of triples: sides and ∂E/∂v of each
var<workgroup> tri_k: array<u32, LANES>;
var<workgroup> tri_gj: array<vec3f, LANES>;
var<workgroup> tri_gk: array<vec3f, LANES>;
var<workgroup> side_d: array<vec3f, MAX_ANG>; // Σ ∂E/∂v_j per angular neighbor j

// Lane groups (= private copies) of `aev_compute`'s radial sums: 64 lanes / n_shf_r, at most 4.
fn rad_groups() -> u32 { return min(LANES / A.n_shf_r, RAD_COPIES); }
fn shf_r(k: u32) -> f32 { return A.shf_r[k / 4u][k % 4u]; }
fn shf_a(a: u32) -> f32 { return A.shf_a[a / 4u][a % 4u]; }
fn cos_z(z: u32) -> f32 { return A.cos_z[z / 4u][z % 4u]; }
fn sin_z(z: u32) -> f32 { return A.sin_z[z / 4u][z % 4u]; }

// (f_C, f_C') at r with half_pi = π/(2 R_c); the cos² form avoids 1 + cos cancellation at R_c.
fn cutoff(r: f32, half_pi: f32) -> vec2f {
    let x = r * half_pi;
    let c = cos(x);
    let s = sin(x);
    return vec2f(c * c, -2.0 * half_pi * c * s);
}

// Upper-triangle index of an unordered species pair (ANI.md §3.6).
fn pair_index(sj: u32, sk: u32) -> u32 {
    let u = min(sj, sk);
    let v = max(sj, sk);
    return u * A.n_species - (u * (u - 1u)) / 2u + (v - u);
}

// b^ζ split as b^14 · b^(ζ−14): keeps log/exp error amplification at 0.1× instead of 14×.
fn pow_zeta(b: f32) -> f32 {
    let b2 = b * b;
    let b4 = b2 * b2;
    let b8 = b4 * b4;
    let b14 = b8 * b4 * b2;
    return b14 * exp2((A.zeta - 14.0) * log2(b));
}

// Exclusive scan of one flag per lane; returns this lane's offset, leaves the total in scan[63].
fn lane_scan(lid: u32, flag: u32) -> u32 {
    scan[lid] = flag;
    workgroupBarrier();
    for (var off = 1u; off < LANES; off = off * 2u) {
        var add = 0u;
        if (lid >= off) {
            add = scan[lid - off];
        }
        workgroupBarrier();
        scan[lid] = scan[lid] + add;
        workgroupBarrier();
    }
    return scan[lid] - flag;
}

fn atom_index(wid: vec3u, nwg: vec3u) -> u32 {
    return wid.y * nwg.x + wid.x;
}

fn species(t: vec4f) -> u32 {
    return species_of_type[bitcast<u32>(t.w)];
}

// Number of row entries of atom i (uniform). The rows are read 64 entries (LANES) at a time:
// `collect_begin`, then per chunk `collect_chunk` + the caller's work + `collect_next`.
fn row_len(i: u32) -> u32 {
    return min(nbr_count[i], P.nbr_capacity);
}

fn collect_begin(lid: u32) {
    if (lid == 0u) {
        n_ang_wg = 0u;
        overflow_wg = 0u;
    }
    workgroupBarrier();
}

// Lane lid's row entry of the chunk at `base`: squared distance (-1 past the row) and species.
struct Entry {
    r2: f32,
    s: u32,
}

// Appends the chunk's neighbors within R_ca to ang_* (row order: deterministic). The caller
// then does its per-chunk work and calls `collect_next`. (The radial sums live in
// `aev_compute`, not here: any workgroup array a helper touches counts against every entry
// point that calls it — measured: `aev_force` 40 % slower when it did.)
fn collect_chunk(i: u32, lid: u32, xi: vec3f, n_row: u32, base: u32) -> Entry {
    let e = base + lid;
    var flag = 0u;
    var d = vec3f(0.0);
    var r2 = -1.0;
    var j = 0u;
    var sj = 0u;
    if (e < n_row) {
        j = nbr_list[e * P.n_atoms + i];
        let xj = pos[j];
        d = min_image(xj.xyz - xi, P);
        r2 = dot(d, d);
        sj = species(xj);
        flag = select(0u, 1u, r2 <= A.rca * A.rca);
    }
    let at = n_ang_wg + lane_scan(lid, flag);
    if (flag == 1u) {
        if (at < MAX_ANG) {
            ang_v[at] = d;
            ang_r[at] = sqrt(r2);
            ang_fc[at] = cutoff(sqrt(r2), A.half_pi_rca).x;
            ang_s[at] = sj;
            ang_j[at] = j;
        } else {
            overflow_wg = 1u;
        }
    }
    return Entry(r2, sj);
}

fn collect_next(lid: u32) {
    workgroupBarrier();
    if (lid == 0u) {
        n_ang_wg = n_ang_wg + scan[LANES - 1u];
    }
    workgroupBarrier();
}

// Stable counting sort of the n_ang ≤ MAX_ANG = LANES angular neighbors by species (one lane
// per entry, through registers), with ang_v made a unit vector; fills blk. Species blocks let
// `aev_compute` sum each species pair's triples in registers and store each output once.
fn sort_angular(lid: u32, n_ang: u32) {
    let mine = lid < n_ang;
    var v = vec3f(0.0);
    var r = 0.0;
    var fc = 0.0;
    var s = 0u;
    var j = 0u;
    var dst = 0u;
    if (mine) {
        v = ang_v[lid];
        r = ang_r[lid];
        fc = ang_fc[lid];
        s = ang_s[lid];
        j = ang_j[lid];
        for (var t = 0u; t < n_ang; t++) {
            let st = ang_s[t];
            dst += select(0u, 1u, st < s || (st == s && t < lid));
        }
    }
    if (lid <= A.n_species) {
        var below = 0u;
        for (var t = 0u; t < n_ang; t++) {
            below += select(0u, 1u, ang_s[t] < lid);
        }
        blk[lid] = below;
    }
    workgroupBarrier();
    if (mine) {
        ang_v[dst] = v / max(r, 1e-10);
        ang_r[dst] = r;
        ang_fc[dst] = fc;
        ang_s[dst] = s;
        ang_j[dst] = j;
    }
    workgroupBarrier();
}

// Triple m of n angular neighbors in row-major order of (j < k).
fn decode_triple(m: u32, n: u32) -> vec2u {
    var j = 0u;
    var rem = m;
    while (j + 1u < n && rem >= n - 1u - j) {
        rem -= n - 1u - j;
        j++;
    }
    return vec2u(j, j + 1u + rem);
}

// Stops the run at atom i, as the other force kernels do for a non-finite or huge force
// (ST_BLOWUP |= 1, by atomicMax). `crowded`: more than MAX_ANG neighbors within R_ca — only a
// collapsed (overlapping) configuration gets there — sets bit 2 as well, so the host can say
// which limit was hit.
fn flag_blowup(i: u32, crowded: bool) {
    let old = atomicOr(&status[ST_BLOWUP], select(1u, 3u, crowded));
    if (old == 0u) {
        atomicStore(&status[ST_BLOWUP_STEP], atomicLoad(&status[ST_STEP]));
    }
    atomicMin(&status[ST_BLOWUP_ATOM], i);
}

// One angular term of output (a, z) for the triple (j, k): uj the unit vector centre -> j,
// fcj2 = 2 f_C(r_j), ra = R_a, (cz, sz) = (cos θ_z, sin θ_z).
fn angular_term(uj: vec3f, rj: f32, fcj2: f32, k: u32, ra: f32, cz: f32, sz: f32) -> f32 {
    let rk = ang_r[k];
    let al = 0.95 * dot(uj, ang_v[k]);
    let sg = sqrt(max((1.0 - al) * (1.0 + al), 0.0));
    let b = 0.5 * (1.0 + al * cz + sg * sz);
    let dm = 0.5 * (rj + rk) - ra;
    return pow_zeta(b) * exp(-A.eta_a * dm * dm) * fcj2 * ang_fc[k];
}

@compute @workgroup_size(64)
fn aev_compute(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let i = atom_index(wid, nwg);
    if (i >= P.n_atoms) {
        return;
    }
    for (var o = lid; o < OUT_ACC; o += LANES) {
        out_acc[o] = 0.0;
    }
    workgroupBarrier();
    let xi = pos[i].xyz;
    let n_row = row_len(i);
    let rcr2 = A.rcr * A.rcr;
    collect_begin(lid);
    for (var base = 0u; base < n_row; base += LANES) {
        let en = collect_chunk(i, lid, xi, n_row, base);
        // Pairs beyond R_cr (list skin) get r = -1 and are skipped by the radial loop.
        let near = en.r2 >= 0.0 && en.r2 <= rcr2;
        let r = sqrt(max(en.r2, 0.0));
        chunk_r[lid] = select(-1.0, r, near);
        chunk_fc[lid] = select(0.0, 0.25 * cutoff(r, A.half_pi_rcr).x, near);
        chunk_s[lid] = en.s;
        workgroupBarrier();
        // Lane (shift k, group g): group g takes every groups-th neighbor of the chunk into
        // its own copy of the radial outputs (no divergence on species, f_C once per pair).
        let nk = A.n_shf_r;
        let groups = rad_groups();
        let k = lid % nk;
        let g = lid / nk;
        if (g < groups) {
            let rk = shf_r(k);
            let ob = g * MAX_RAD_OUT + k;
            for (var q = g; q < LANES; q += groups) {
                let rq = chunk_r[q];
                if (rq >= 0.0) {
                    let dr = rq - rk;
                    let o = ob + chunk_s[q] * nk;
                    out_acc[o] = out_acc[o] + chunk_fc[q] * exp(-A.eta_r * dr * dr);
                }
            }
        }
        collect_next(lid);
    }
    let n_ang = min(workgroupUniformLoad(&n_ang_wg), MAX_ANG);
    if (lid == 0u && overflow_wg != 0u) {
        flag_blowup(i, true);
    }

    sort_angular(lid, n_ang);

    // Angular: lane owns output (a, z); the two halves of the workgroup take alternate j. With
    // the neighbors sorted by species, the triples of one species pair (j in block sa, k in
    // block sb) are summed in registers and stored once: no workgroup-memory read-modify-write
    // per term.
    let n_az = A.n_shf_a * A.n_shf_z;
    let az = lid % 32u;
    let half = lid / 32u;
    if (az < n_az) {
        let a = az / A.n_shf_z;
        let z = az % A.n_shf_z;
        let ra = shf_a(a);
        let cz = cos_z(z);
        let sz = sin_z(z);
        let copy = ANG_BASE + half * MAX_ANG_OUT;
        let ns = A.n_species;
        for (var sa = 0u; sa < ns; sa++) {
            let a_lo = blk[sa];
            let a_hi = blk[sa + 1u];
            for (var sb = sa; sb < ns && a_lo < a_hi; sb++) {
                let b_lo = blk[sb];
                let b_hi = blk[sb + 1u];
                // Two independent sums: two chains of loads and transcendentals in flight per
                // lane (the kernel is latency-bound).
                var acc1 = 0.0;
                var acc2 = 0.0;
                for (var j = a_lo + half; j < a_hi; j += 2u) {
                    let uj = ang_v[j];
                    let rj = ang_r[j];
                    let fcj2 = 2.0 * ang_fc[j];
                    var k = max(j + 1u, b_lo);
                    for (; k + 1u < b_hi; k += 2u) {
                        acc1 += angular_term(uj, rj, fcj2, k, ra, cz, sz);
                        acc2 += angular_term(uj, rj, fcj2, k + 1u, ra, cz, sz);
                    }
                    if (k < b_hi) {
                        acc1 += angular_term(uj, rj, fcj2, k, ra, cz, sz);
                    }
                }
                if (b_lo < b_hi) {
                    out_acc[copy + pair_index(sa, sb) * n_az + az] = acc1 + acc2;
                }
            }
        }
    }
    workgroupBarrier();

    // Write the row (pairs of features, so f16 mode can pack them).
    let row = row_of[i];
    let radial_len = A.radial_len;
    let groups = rad_groups();
    let n_pairs = A.aev_len / 2u;
    for (var q = lid; q < n_pairs; q += LANES) {
        var v = vec2f(0.0);
        for (var h = 0u; h < 2u; h++) {
            let o = 2u * q + h;
            var x = 0.0;
            if (o < radial_len) {
                for (var g = 0u; g < groups; g++) {
                    x += out_acc[g * MAX_RAD_OUT + o];
                }
            } else {
                let g = o - radial_len;
                x = out_acc[ANG_BASE + g] + out_acc[ANG_BASE + MAX_ANG_OUT + g];
            }
            v[h] = x;
        }
        aev[row * n_pairs + q] = from2(v);
    }
}

// dE/dG of row `row`, feature pair q.
fn g2(row: u32, q: u32) -> vec2f {
    return to2(grad[row * (A.aev_len / 2u) + q]);
}

// ∂E/∂v_j and ∂E/∂v_k (v = centre -> side) of the angular terms of one triple, given the
// centre's dE/dG block for this species pair starting at feature `gb` of row `row`
// (ANI.md §6.3: H_a = Σ_z Γ[a][z] F1_z and K_z = Σ_a Γ[a][z] F2_a factor the 8×4 sum).
fn triple_grad(vj: vec3f, rj: f32, vk: vec3f, rk: f32, row: u32, gb: u32) -> array<vec3f, 2> {
    let cj = cutoff(rj, A.half_pi_rca);
    let ck = cutoff(rk, A.half_pi_rca);
    let rjk = max(rj * rk, 1e-10);
    let c = dot(vj, vk) / rjk;
    let al = 0.95 * c;
    let sg = sqrt(max((1.0 - al) * (1.0 + al), 1e-12));
    // F1_z and dF1_z/dθ′ for up to 8 sections, in vectors rather than arrays: a variable index
    // into a private array sends it to local memory, a vector component stays in registers.
    var f1 = array<vec4f, 2>();
    var df1 = array<vec4f, 2>();
    for (var z = 0u; z < A.n_shf_z; z++) {
        let cz = al * cos_z(z) + sg * sin_z(z);
        let sz = sg * cos_z(z) - al * sin_z(z);
        let b = 0.5 * (1.0 + cz);
        let p = pow_zeta(b);
        if (z < 4u) {
            f1[0][z] = p;
            df1[0][z] = -0.5 * A.zeta * p * sz / b;
        } else {
            f1[1][z - 4u] = p;
            df1[1][z - 4u] = -0.5 * A.zeta * p * sz / b;
        }
    }
    let mbar = 0.5 * (rj + rk);
    var dA = 0.0;    // Σ_z K_z dF1_z
    var hf = 0.0;    // Σ_a H_a F2_a
    var hdf = 0.0;   // Σ_a H_a ∂F2_a/∂R
    let n_az = A.n_shf_a * A.n_shf_z;
    for (var a = 0u; a < A.n_shf_a; a++) {
        let dm = mbar - shf_a(a);
        let f2 = exp(-A.eta_a * dm * dm);
        let df2 = -A.eta_a * dm * f2;
        var h = 0.0;
        var kz = 0.0;
        for (var z = 0u; z < A.n_shf_z; z += 2u) {
            let g = g2(row, (gb + a * A.n_shf_z + z) / 2u);
            // Sections z, z+1 of the 8 held in f1[0..2] (selects, not a variable index).
            let fq = select(f1[1], f1[0], z < 4u);
            let dq = select(df1[1], df1[0], z < 4u);
            let first = z % 4u == 0u;
            h += dot(g, select(fq.zw, fq.xy, first));
            kz += dot(g, select(dq.zw, dq.xy, first));
        }
        hf += h * f2;
        hdf += h * df2;
        dA += kz * f2;
    }
    let fc = cj.x * ck.x;
    let a_theta = 2.0 * fc * dA;
    let bj = 2.0 * (hdf * fc + hf * cj.y * ck.x);
    let bk = 2.0 * (hdf * fc + hf * cj.x * ck.y);
    let dtheta = -0.95 / sg;
    let dcj = vk / rjk - c * vj / (rj * rj);
    let dck = vj / rjk - c * vk / (rk * rk);
    return array<vec3f, 2>(a_theta * dtheta * dcj + bj * vj / rj,
                           a_theta * dtheta * dck + bk * vk / rk);
}

@compute @workgroup_size(64)
fn aev_force(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
    let i = atom_index(wid, nwg);
    if (i >= P.n_atoms) {
        return;
    }
    let xi4 = pos[i];
    let xi = xi4.xyz;
    let si = species(xi4);
    let row_i = row_of[i];
    let n_row = row_len(i);
    collect_begin(lid);
    for (var base = 0u; base < n_row; base += LANES) {
        collect_chunk(i, lid, xi, n_row, base);
        collect_next(lid);
    }
    let n_ang = min(workgroupUniformLoad(&n_ang_wg), MAX_ANG);

    var f = vec3f(0.0);   // accumulates ∂E/∂r_i (negated at the end)
    var w = 0.0;          // virial share, Σ v·∂E/∂v (negated at the end)
    let rcr2 = A.rcr * A.rcr;
    let n_sr = A.n_shf_r;

    // (1) Radial pairs: s_ij uses dE/dG of both atoms.
    for (var e = lid; e < n_row; e += LANES) {
        let j = nbr_list[e * P.n_atoms + i];
        let xj4 = pos[j];
        let d = min_image(xi - xj4.xyz, P);     // r_i − r_j
        let r2 = dot(d, d);
        if (r2 <= rcr2) {
            let r = sqrt(r2);
            let sj = species(xj4);
            let cf = cutoff(r, A.half_pi_rcr);
            let row_j = row_of[j];
            var s = 0.0;
            for (var k = 0u; k < n_sr; k += 2u) {
                let gi = g2(row_i, (sj * n_sr + k) / 2u);
                let gj = g2(row_j, (si * n_sr + k) / 2u);
                for (var h = 0u; h < 2u; h++) {
                    let dr = r - shf_r(k + h);
                    let ex = 0.25 * exp(-A.eta_r * dr * dr);
                    s += (gi[h] + gj[h]) * ex * (-2.0 * A.eta_r * dr * cf.x + cf.y);
                }
            }
            f += s * d / r;
            w += 0.5 * s * r;
        }
    }

    let n_az = A.n_shf_a * A.n_shf_z;
    // (2) Triples centred on i, in rounds of one triple per lane: the lane keeps ∂E/∂r_i,
    // then each side's lane collects the round's ∂E/∂v_j from workgroup memory (fixed order:
    // deterministic, no float atomics).
    let n_tri = n_ang * (n_ang - 1u) / 2u;
    for (var s = lid; s < n_ang; s += LANES) {
        side_d[s] = vec3f(0.0);
    }
    for (var m0 = 0u; m0 < n_tri; m0 += LANES) {
        let m = m0 + lid;
        var j = MAX_ANG;
        var k = MAX_ANG;
        var gj = vec3f(0.0);
        var gk = vec3f(0.0);
        if (m < n_tri) {
            let jk = decode_triple(m, n_ang);
            j = jk.x;
            k = jk.y;
            let gb = A.radial_len + pair_index(ang_s[j], ang_s[k]) * n_az;
            let g = triple_grad(ang_v[j], ang_r[j], ang_v[k], ang_r[k], row_i, gb);
            gj = g[0];
            gk = g[1];
            f -= gj + gk;
            w += dot(ang_v[j], gj) + dot(ang_v[k], gk);
        }
        tri_j[lid] = j;
        tri_k[lid] = k;
        tri_gj[lid] = gj;
        tri_gk[lid] = gk;
        workgroupBarrier();
        for (var s = lid; s < n_ang; s += LANES) {
            var d = side_d[s];
            for (var q = 0u; q < LANES; q++) {
                if (tri_j[q] == s) {
                    d += tri_gj[q];
                }
                if (tri_k[q] == s) {
                    d += tri_gk[q];
                }
            }
            side_d[s] = d;
        }
        workgroupBarrier();
    }
    for (var s = lid; s < n_ang; s += LANES) {
        ang_d[i * MAX_ANG + s] = vec4u(bitcast<vec3u>(side_d[s]), ang_j[s]);
    }
    if (lid == 0u) {
        ang_n[i] = n_ang;
    }

    red[lid] = vec4f(f, w);
    workgroupBarrier();
    for (var off = LANES / 2u; off > 0u; off = off / 2u) {
        if (lid < off) {
            red[lid] = red[lid] + red[lid + off];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        // Partial: `aev_force_sides` adds the terms where i is a side and checks the total.
        let t = red[0];
        force[i] = vec4f(-t.xyz * A.energy_scale, atom_energy[i] * A.energy_scale);
        atom_virial[i] = vec2f(-t.w * A.energy_scale, 0.0);
    }
}

@compute @workgroup_size(64)
fn aev_force_sides(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
    let a = atom_index(wid, nwg) * LANES + lid;
    if (a >= P.n_atoms) {
        return;
    }
    var f = vec3f(0.0);
    let n_a = ang_n[a];
    for (var s = 0u; s < n_a; s++) {
        let c = ang_d[a * MAX_ANG + s].w;
        let n_c = ang_n[c];
        for (var t = 0u; t < n_c; t++) {
            let d = ang_d[c * MAX_ANG + t];
            if (d.w == a) {
                f += bitcast<vec3f>(d.xyz);
                break;
            }
        }
    }
    let fe = force[a];
    let fi = fe.xyz - f * A.energy_scale;
    force[a] = vec4f(fi, fe.w);
    let f2 = dot(fi, fi);
    if (not_finite(f2) || not_finite(fe.w) || f2 > P.max_force2) {
        flag_blowup(a, false);
    }
}
