// LJ + real-space Coulomb in ONE neighbor loop (charged systems), plus the excluded-pair
// correction of Ewald/PME. lj.wgsl stays the pure-LJ fast path; both import `lj_pair`.
//
// Physics once: `coul_pair` returns (energy, force/r) per unit k*qi*qj from r^2; its Rust
// twin is `forces::coulomb::RealSpace::pair`. METHOD (override): 1 plain cutoff, 2 reaction
// field, 3 damped shifted force, 4 Ewald/PME real space (erfc). Pairs listed in `excl` (the
// few intramolecular partners of each atom, row-major, NO_EXCL-padded) are skipped in the
// loop; for METHOD 4 their reciprocal-space interaction is removed again by -k qi qj erf(a r)/r.
// Each atom gathers its full row and keeps half of each pair energy/virial (no atomics).
#import common
#import lj_pair
#import split_rows

// Mirrors `forces::coulomb::CoulombParams`.
struct CoulombParams {
    n_excl: u32,     // exclusion slots per atom
    n_kvec: u32,     // Ewald wave vectors (half space)
    rc2: f32,        // Coulomb cutoff^2
    alpha: f32,      // Ewald / DSF damping
    coulomb_k: f32,  // e^2/(4 pi eps0) in the run's units
    krf: f32,        // reaction field k_rf
    crf: f32,        // reaction field c_rf
    dsf_e: f32,      // DSF erfc(a rc)/rc
    dsf_f: f32,      // DSF force shift
    e_rc: f32,       // unshifted pair energy at rc per unit qq (cutoff-jump bookkeeping)
    rc: f32,
    ex2_c: f32,      // alpha^2 log2(e): exp(-(alpha r)^2) = exp2(-ex2_c r^2)
    t_c: f32,        // 0.38 alpha: erfc's t = 1 / (1 + t_c r)
    g_c: f32,        // 2 alpha / sqrt(pi)
    _pad0: u32,
    _pad1: u32,
}

override METHOD: u32 = 4u;
// Energies and virial too (the last step of each batch, `eval`); without them (the other
// steps of a batch) the loop only sums forces and writes zero shares, to which PME adds its
// own (the step's energy is read only where it was computed).
override ENERGY: bool = true;
// Threads per atom (as in lj.wgsl): TPA threads share one atom's neighbor row (strided) and add
// their partial sums in workgroup memory, so small systems still fill a large GPU.
override TPA: u32 = 1u;

var<workgroup> part_a: array<vec4f, 64>;
var<workgroup> part_b: array<vec4f, 64>;
const NO_EXCL: u32 = 0xffffffffu;
const TWO_OVER_SQRT_PI: f32 = 1.1283791670955126;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
// Word w of the list is nbr_list[w >> 2][w & 3]; see `list_word` (common.wgsl).
@group(0) @binding(2) var<storage, read> nbr_list: array<vec4u>;
@group(0) @binding(3) var<storage, read> nbr_count: array<u32>;
@group(0) @binding(4) var<storage, read> lj_pairs: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> force: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> atom_virial: array<vec2f>;
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read> lj_rc: array<f32>;
@group(0) @binding(9) var<uniform> C: CoulombParams;
@group(0) @binding(10) var<storage, read> charge: array<f32>;
@group(0) @binding(11) var<storage, read> excl: array<u32>;
@group(0) @binding(12) var<storage, read_write> atom_terms: array<vec4f>;
// With SLOT_ROWS the list's row t belongs to atom cell_atoms[t] and holds its neighbors'
// cell slots (see neighbor.wgsl): thread t takes that atom and reads positions from the
// slot-ordered copy, so a warp's atoms are neighbors in space and their gathers fall on
// nearby words.
@group(0) @binding(13) var<storage, read> cell_atoms: array<u32>;
@group(0) @binding(15) var<storage, read> slot_pos: array<vec4f>;
override SLOT_ROWS: bool = false;
// The list's groups of eight (`list_word`): each lane reads whole groups as two vec4u.
override PACKED: bool = false;

// Position (type in w) of list entry e, and the atom it names.
fn entry_pos(e: u32) -> vec4f {
    if (SLOT_ROWS) {
        return slot_pos[e];
    }
    return pos[e];
}

fn entry_atom(e: u32) -> u32 {
    if (SLOT_ROWS) {
        return cell_atoms[e];
    }
    return e;
}
// With QQ_TABLE every atom of a type has the same charge and pair_qq[ti * n_types + tj] holds
// k q_i q_j (computed in float64): the loop reads it from a few cached words instead of
// gathering charge[j] for every neighbor.
@group(0) @binding(14) var<storage, read> pair_qq: array<f32>;
override QQ_TABLE: bool = false;

// erfc(x) for x >= 0 given ex = exp(-x^2), which the force needs anyway: erfc = ex t Q(t),
// t = 1 / (1 + 0.38 x), Q a degree-8 polynomial fitted (least maximum relative error, Lawson
// iterations) to exp(x^2) erfc(x) / t on 0 <= x <= 10 (f32's exp(-x^2) underflows beyond).
// Relative error 2.2e-8 in exact arithmetic, 3.4e-7 evaluated in f32 - as good as the
// Numerical Recipes erfcc (t exp(-x^2 + P(t)), 3.8e-7 in f32) that cost a second exp per
// pair. Abramowitz-Stegun 7.1.26 (OpenMM's) is 1.5e-7 absolute: 3e-4 relative at
// x = 2.63 (alpha rc at tolerance 5e-4), 4e-2 at x = 10.
fn erfc_ex(x: f32, ex: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.38 * x);
    return t * erfc_q(t) * ex;
}

// Q(t) of erfc_ex.
fn erfc_q(t: f32) -> f32 {
    return 0.21441342543 + t * (0.21387681035 + t * (0.20421358445 + t * (0.13743851692 +
        t * (0.23289087659 + t * (-0.16563165457 + t * (0.36752392922 + t * (-0.26405851314 +
        t * 0.05933304611)))))));
}

// erf(x) for x >= 0: a Taylor series below 0.5 (1 - erfc would lose digits there, and bonded
// distances times alpha usually land there), 1 - erfc above.
fn erf_ex(x: f32, ex: f32) -> f32 {
    if (x < 0.5) {
        let x2 = x * x;
        return TWO_OVER_SQRT_PI * x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (0.1 + x2 * (-1.0 / 42.0 +
            x2 * (1.0 / 216.0 + x2 * (-1.0 / 1320.0))))));
    }
    return 1.0 - erfc_ex(x, ex);
}

// (energy, force/r) per unit k qi qj at squared distance r2 < rc^2, given inv_r = 1/sqrt(r2).
fn coul_pair(r2: f32, inv_r: f32) -> vec2f {
    if (METHOD == 1u) {
        return vec2f(inv_r, inv_r * inv_r * inv_r);
    }
    if (METHOD == 2u) {
        return vec2f(inv_r + C.krf * r2 - C.crf, inv_r * inv_r * inv_r - 2.0 * C.krf);
    }
    let r = r2 * inv_r;
    let x = C.alpha * r;
    let ex = exp(-x * x);
    let erfc_r = erfc_ex(x, ex) * inv_r;
    let g = TWO_OVER_SQRT_PI * C.alpha * ex;
    if (METHOD == 3u) {
        return vec2f(erfc_r - C.dsf_e + C.dsf_f * (r - C.rc), (erfc_r * inv_r + g * inv_r - C.dsf_f) * inv_r);
    }
    return vec2f(erfc_r, (erfc_r + g) * inv_r * inv_r);
}

// (energy, force/r) per unit k qi qj of the excluded-pair correction -erf(a r)/r.
fn excl_pair(r2: f32) -> vec2f {
    let inv_r = inverseSqrt(r2);
    let x = C.alpha * r2 * inv_r;
    let ex = exp(-x * x);
    let erf_r = erf_ex(x, ex) * inv_r;
    let g = TWO_OVER_SQRT_PI * C.alpha * ex;
    return vec2f(-erf_r, (g - erf_r) * inv_r * inv_r);
}

struct Sums {
    f: vec3f,
    e_lj: f32,
    e_coul: f32,
    e_excl: f32,
    w: f32,
    erc: f32,
}

// SMALL_TYPES = n (1..4): the row's LJ parameters and k q_i q_j for each of the n types are
// loaded once per atom into registers (`tp*`, `tq*`) and picked per pair by compares, instead
// of two dependent table loads per pair; 0 keeps the table loads (more types; `WGMD_SMALL_TYPES=0`).
// RCP_LJ: the LJ terms use the 1/r^2 that the Coulomb term's inverse square root gives
// (no divisions per pair; `WGMD_RCP_LJ=0` keeps lj_pair's divisions).
override SMALL_TYPES: u32 = 0u;
override RCP_LJ: bool = false;
var<private> tp0: vec4f;
var<private> tp1: vec4f;
var<private> tp2: vec4f;
var<private> tp3: vec4f;
var<private> tq0: f32;
var<private> tq1: f32;
var<private> tq2: f32;
var<private> tq3: f32;

fn load_row_types(row: u32) {
    if (SMALL_TYPES == 0u) {
        return;
    }
    tp0 = lj_pairs[row];
    if (QQ_TABLE) {
        tq0 = pair_qq[row];
    }
    if (SMALL_TYPES > 1u) {
        tp1 = lj_pairs[row + 1u];
        if (QQ_TABLE) {
            tq1 = pair_qq[row + 1u];
        }
    }
    if (SMALL_TYPES > 2u) {
        tp2 = lj_pairs[row + 2u];
        if (QQ_TABLE) {
            tq2 = pair_qq[row + 2u];
        }
    }
    if (SMALL_TYPES > 3u) {
        tp3 = lj_pairs[row + 3u];
        if (QQ_TABLE) {
            tq3 = pair_qq[row + 3u];
        }
    }
}

// The one of a, b, c, d that belongs to type tj (the first SMALL_TYPES of them).
fn pick_type(tj: u32, a: vec4f, b: vec4f, c: vec4f, d: vec4f) -> vec4f {
    var p = a;
    if (SMALL_TYPES > 1u) {
        p = select(p, b, tj == 1u);
    }
    if (SMALL_TYPES > 2u) {
        p = select(p, c, tj == 2u);
    }
    if (SMALL_TYPES > 3u) {
        p = select(p, d, tj == 3u);
    }
    return p;
}

fn pair_params(pair: u32, tj: u32) -> vec4f {
    if (SMALL_TYPES == 0u) {
        return lj_pairs[pair];
    }
    return pick_type(tj, tp0, tp1, tp2, tp3);
}

fn pair_charge(pair: u32, tj: u32) -> f32 {
    if (SMALL_TYPES == 0u) {
        return pair_qq[pair];
    }
    return pick_type(tj, vec4f(tq0), vec4f(tq1), vec4f(tq2), vec4f(tq3)).x;
}

fn is_excluded(i: u32, j: u32) -> bool {
    for (var s = 0u; s < C.n_excl; s++) {
        if (excl[i * C.n_excl + s] == j) {
            return true;
        }
    }
    return false;
}

// LJ's force / r of a pair inside its cutoff (energies into o under ENERGY).
fn lj_term(o: ptr<function, Sums>, r2: f32, inv_r: f32, prm: vec4f, pair: u32) -> f32 {
    var ef: vec2f;
    if (RCP_LJ) {
        ef = lj_pair_inv(inv_r * inv_r, prm);
    } else {
        ef = lj_pair(r2, prm);
    }
    if (ENERGY) {
        (*o).erc += lj_rc[pair];
        (*o).e_lj += ef.x;
    }
    return ef.y;
}

// Coulomb's force / r of a pair inside the cutoff, with list entry e (energies into o).
fn coul_term(o: ptr<function, Sums>, r2: f32, inv_r: f32, pair: u32, tj: u32, qi: f32,
             e: u32) -> f32 {
    var qq: f32;
    if (QQ_TABLE) {
        qq = pair_charge(pair, tj);
    } else {
        qq = qi * charge[entry_atom(e)];
    }
    let ef = coul_pair(r2, inv_r);
    if (ENERGY) {
        (*o).e_coul += qq * ef.x;
        (*o).erc += qq * C.e_rc;
    }
    return qq * ef.y;
}

// `WGMD_LJ_EWALD=0` (A/B runs): lj_term + coul_term there too.
override LJ_EWALD: bool = true;

// LJ + Ewald real-space force / r of a pair inside the common cutoff, without energies (the
// steps that read none; ONE_CUT, METHOD 4): lj_term + coul_term with their common 1/r²
// factored out, LJ as 24 eps sr6 (2 sr6 - 1) (prm.y = 4 eps), exp(-(alpha r)^2) as one exp2
// of r², erfc's t from r directly — six instructions fewer per entry than the two terms apart.
fn lj_ewald_force(r2: f32, inv_r: f32, prm: vec4f, qq: f32) -> f32 {
    let inv_r2 = inv_r * inv_r;
    let sr2 = prm.x * inv_r2;
    let sr6 = sr2 * sr2 * sr2;
    let lj = 6.0 * prm.y * sr6 * (2.0 * sr6 - 1.0);
    let ex = exp2(-C.ex2_c * r2);
    let t = 1.0 / (1.0 + C.t_c * (r2 * inv_r));
    return (lj + qq * (t * erfc_q(t) * ex * inv_r + C.g_c * ex)) * inv_r2;
}

// `forces::coulomb`: every type pair's LJ cutoff equals the Coulomb one (as f32 squares);
// `WGMD_ONE_CUT=0` keeps two tests (A/B runs).
override ONE_CUT: bool = false;

// No atom has an excluded partner (`forces::coulomb`; `WGMD_NO_EXCL=0` keeps the test, A/B
// runs): the per-entry test of the uniform's exclusion count compiled out.
override EXCL_FREE: bool = false;

// Adds the pair of atom i (position xi, type row `row`, k q_i `qi`) with list entry e.
fn add_entry(o: ptr<function, Sums>, i: u32, xi: vec4f, row: u32, qi: f32, e: u32) {
    if (!EXCL_FREE && C.n_excl > 0u && is_excluded(i, entry_atom(e))) {
        return;
    }
    let xj = entry_pos(e);
    let d = min_image(xi.xyz - xj.xyz, P);
    let r2 = dot(d, d);
    let tj = bitcast<u32>(xj.w);
    let pair = row + tj;
    let prm = pair_params(pair, tj);
    let inv_r = inverseSqrt(r2);
    var fr = 0.0;
    if (ONE_CUT) {
        // Every type pair's LJ cutoff is the Coulomb one: one test and one branch per entry.
        if (r2 < C.rc2) {
            if (LJ_EWALD && METHOD == 4u && RCP_LJ && QQ_TABLE && !ENERGY) {
                fr = lj_ewald_force(r2, inv_r, prm, pair_charge(pair, tj));
            } else {
                fr = lj_term(o, r2, inv_r, prm, pair) + coul_term(o, r2, inv_r, pair, tj, qi, e);
            }
        }
    } else {
        if (r2 < prm.z) {
            fr = lj_term(o, r2, inv_r, prm, pair);
        }
        if (r2 < C.rc2) {
            fr += coul_term(o, r2, inv_r, pair, tj, qi, e);
        }
    }
    (*o).f += fr * d;
    if (ENERGY) {
        (*o).w += fr * r2;
    }
}

// The first min(m, 4) entries of v: components named one by one, since a runtime index into
// a vector can put it in local memory.
fn add_quad(o: ptr<function, Sums>, i: u32, xi: vec4f, row: u32, qi: f32, v: vec4u, m: u32) {
    add_entry(o, i, xi, row, qi, v.x);
    if (m > 1u) {
        add_entry(o, i, xi, row, qi, v.y);
    }
    if (m > 2u) {
        add_entry(o, i, xi, row, qi, v.z);
    }
    if (m > 3u) {
        add_entry(o, i, xi, row, qi, v.w);
    }
}

// This lane's share of atom i's full sums (each pair counted once from each side); its
// neighbors are list row `rowid`.
fn atom_sums(i: u32, rowid: u32, lane: u32) -> Sums {
    var o: Sums;
    let xi = entry_pos(rowid);
    let qi = C.coulomb_k * charge[i];
    let row = bitcast<u32>(xi.w) * P.n_types;
    load_row_types(row);
    let c = nbr_count[rowid];
    var n = min(c, P.nbr_capacity);
    if (SPLIT) {
        // Split rows (split_rows.wgsl): the outer groups, from the row's back, by their
        // entries inside the largest cutoff; then the inner ones as any packed row.
        n = min(split_inner(c), P.nbr_capacity);
        let n_out = min(split_outer(c), P.nbr_capacity);
        for (var mb = 0u; mb < n_out; mb += 8u) {
            let g = outer_group(xi.xyz, rowid, mb, n_out);
            var mask = g.mask;
            while (mask != 0u) {
                add_entry(&o, i, xi, row, qi, group_word(g.lo, g.hi, next_bit(&mask)));
            }
        }
    }
    if (PACKED && TPA == 1u) {
        // One thread per atom: each group of eight as two vec4u, eight independent gathers
        // at once. (Several threads per atom read word by word below: the TPA lanes of an
        // atom then read consecutive words, one sector per round, and share the row evenly;
        // whole groups per lane left LJ's ~10 groups per row unevenly split over 8 lanes,
        // 20.8 -> 26.8 us at 32,000 atoms on the H200.)
        for (var kb = 0u; kb < n; kb += 8u) {
            let w = list_word(kb, rowid, true, P) >> 2u;
            add_quad(&o, i, xi, row, qi, nbr_list[w], n - kb);
            if (n - kb > 4u) {
                add_quad(&o, i, xi, row, qi, nbr_list[w + 1u], n - kb - 4u);
            }
        }
    } else {
        for (var k = lane; k < n; k += TPA) {
            let w = list_word(k, rowid, PACKED, P);
            add_entry(&o, i, xi, row, qi, nbr_list[w >> 2u][w & 3u]);
        }
    }
    if (METHOD == 4u) {
        for (var s = lane; s < C.n_excl; s += TPA) {
            let j = excl[i * C.n_excl + s];
            if (j == NO_EXCL) {
                break;
            }
            let d = min_image(xi.xyz - pos[j].xyz, P);
            let r2 = dot(d, d);
            let qq = qi * charge[j];
            let ef = excl_pair(r2);
            o.f += qq * ef.y * d;
            if (ENERGY) {
                o.e_excl += qq * ef.x;
                o.w += qq * ef.y * r2;
            }
        }
    }
    return o;
}

struct Lane {
    i: u32,
    lead: bool,   // lane 0 of a live atom: holds the atom's complete sums
    s: Sums,
}

// Atom and lane of this thread of real-space workgroup `group`, and (for the lead lane) the
// atom's summed lanes. Called in uniform control flow (it contains a barrier when TPA > 1).
fn gather(group: u32, lid: u32) -> Lane {
    let per_group = WG / TPA;
    let slot = lid % per_group;
    let lane = lid / per_group;
    var o: Lane;
    let t = group * per_group + slot;
    let live = t < P.n_atoms;
    o.i = t;
    if (live) {
        if (SLOT_ROWS) {
            o.i = cell_atoms[t];
        }
        o.s = atom_sums(o.i, t, lane);
    }
    if (TPA > 1u) {
        part_a[lid] = vec4f(o.s.f, o.s.e_lj);
        part_b[lid] = vec4f(o.s.e_coul, o.s.e_excl, o.s.w, o.s.erc);
        workgroupBarrier();
        if (lane == 0u) {
            for (var t = 1u; t < TPA; t++) {
                let a = part_a[slot + t * per_group];
                let b = part_b[slot + t * per_group];
                o.s.f += a.xyz;
                o.s.e_lj += a.w;
                o.s.e_coul += b.x;
                o.s.e_excl += b.y;
                o.s.w += b.z;
                o.s.erc += b.w;
            }
        }
    }
    o.lead = live && lane == 0u;
    return o;
}

@compute @workgroup_size(64)
fn coulomb_force(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
    real_force(wid.y * nwg.x + wid.x, lid);
}

// Real-space workgroup `group` (also run inside coulomb_spread.wgsl's fused dispatch).
fn real_force(group: u32, lid: u32) {
    let g = gather(group, lid);
    if (!g.lead) {
        return;
    }
    store_real(g.i, g.s);
}

// One thread per atom (TPA = 1): real space of list row t by this thread alone, with no
// workgroup memory. `gather`'s partial-sum arrays (2 KiB per workgroup, unused with one thread
// per atom but still allocated by the driver) cost resident workgroups L1 cache: the SM's
// workgroup memory and L1 share one array, and real space's position gathers live in L1.
fn real_row(t: u32) {
    if (t >= P.n_atoms) {
        return;
    }
    var i = t;
    if (SLOT_ROWS) {
        i = cell_atoms[t];
    }
    store_real(i, atom_sums(i, t, 0u));
}

@compute @workgroup_size(64)
fn coulomb_force1(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
    real_row(linear_id(wid, nwg, lid, WG));
}

// Atom i's force, energy and virial shares, and the blow-up check.
fn store_real(i: u32, o: Sums) {
    // Zero shares without ENERGY (the sums stayed zero): PME adds its own to them.
    let e = o.e_lj + o.e_coul + o.e_excl;
    force[i] = vec4f(o.f, 0.5 * e);
    atom_virial[i] = vec2f(0.5 * o.w, 0.5 * o.erc);
    let f2 = dot(o.f, o.f);
    if (not_finite(f2) || not_finite(e) || f2 > P.max_force2) {
        if (atomicMax(&status[ST_BLOWUP], 1u) == 0u) {
            atomicStore(&status[ST_BLOWUP_STEP], atomicLoad(&status[ST_STEP]));
        }
        atomicMin(&status[ST_BLOWUP_ATOM], i);
    }
}

// The same sums split by term, for `wgmd eval`: (lj, coulomb real, exclusion, virial) shares.
@compute @workgroup_size(64)
fn coulomb_terms(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
    let g = gather(wid.y * nwg.x + wid.x, lid);
    if (!g.lead) {
        return;
    }
    atom_terms[g.i] = 0.5 * vec4f(g.s.e_lj, g.s.e_coul, g.s.e_excl, g.s.w);
}
