// Lennard-Jones forces: the exemplar force term every new pair potential copies.
//
// Physics once: `lj_pair` returns (energy, force/r) from r^2 and the pair's parameters; the
// neighbor loop below is the only place that knows about lists. The Rust twin is
// `forces::lj::lj_pair` (float64) and tests hold the two together.
//
// Per-type-pair table lj_pairs[ti * n_types + tj] = (sigma^2, 4 epsilon, cutoff^2, energy shift).
// Each atom gathers over its full neighbor row (no atomics, deterministic) and keeps half
// of each pair energy and virial, so sums over atoms count each pair once.
#import common
#import lj_pair
#import split_rows

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
// Word w of the list is nbr_list[w >> 2][w & 3]; see `list_word` (common.wgsl).
@group(0) @binding(2) var<storage, read> nbr_list: array<vec4u>;
@group(0) @binding(3) var<storage, read> nbr_count: array<u32>;
@group(0) @binding(4) var<storage, read> lj_pairs: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> force: array<vec4f>;
// (virial share, cutoff-jump share): y sums U(r_c) of in-range pairs for a plainly truncated
// potential (0 when shifted), so the host can report the energy the dynamics conserves.
@group(0) @binding(6) var<storage, read_write> atom_virial: array<vec2f>;
@group(0) @binding(8) var<storage, read> lj_rc: array<f32>;
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>>;
// Cell list (cell-list mode only): atoms of cell c are cell_atoms[cell_start[c] ..
// cell_start[c + 1]].
@group(0) @binding(9) var<storage, read> cell_start: array<u32>;
@group(0) @binding(10) var<storage, read> cell_atoms: array<u32>;

// Rows by cell slot (`lj_force_slots`): the list's row t belongs to atom cell_atoms[t] and
// holds its neighbors' cell slots (see neighbor.wgsl); thread t takes that atom and reads
// positions from the slot-ordered copy, so a warp's atoms are neighbors in space and their
// gathers fall on nearby words. (A separate entry point, so that `lj_force` stays within
// WebGPU's default 8 storage buffers.)
@group(0) @binding(11) var<storage, read> slot_pos: array<vec4f>;
// The list's groups of eight (`list_word`, rows by slot only).
override PACKED: bool = false;

// Threads per atom. With one thread per atom a small system (32,000 atoms = 500 workgroups)
// leaves most of a large GPU idle while each thread walks ~80 dependent neighbor loads; TPA
// threads then share one atom's row (strided) and add their partial sums in workgroup memory.
// Consecutive threads take consecutive atoms, so row reads stay coalesced.
override TPA: u32 = 1u;

var<workgroup> part_fe: array<vec4f, 64>;
var<workgroup> part_w: array<vec2f, 64>;

// One atom's partial sums: force, pair energy, virial, cutoff-jump energy (all doubled).
struct Acc {
    f: vec3f,
    e: f32,
    w: f32,
    erc: f32,
}

fn add_pair(acc: ptr<function, Acc>, xi: vec4f, row: u32, xj: vec4f) {
    let d = min_image(xi.xyz - xj.xyz, P);
    let r2 = dot(d, d);
    let pair = row + bitcast<u32>(xj.w);
    let prm = lj_pairs[pair];
    if (r2 < prm.z) {
        (*acc).erc += lj_rc[pair];
        let ef = lj_pair(r2, prm);
        (*acc).f += ef.y * d;
        (*acc).e += ef.x;
        (*acc).w += ef.y * r2;
    }
}

// The first min(m, 4) slots of v (rows by slot): components named one by one, since a
// runtime index into a vector can put it in local memory.
fn add_quad(acc: ptr<function, Acc>, xi: vec4f, row: u32, v: vec4u, m: u32) {
    add_pair(acc, xi, row, slot_pos[v.x]);
    if (m > 1u) {
        add_pair(acc, xi, row, slot_pos[v.y]);
    }
    if (m > 2u) {
        add_pair(acc, xi, row, slot_pos[v.z]);
    }
    if (m > 3u) {
        add_pair(acc, xi, row, slot_pos[v.w]);
    }
}

// Adds the TPA lanes' sums in workgroup memory; lane 0 writes the atom's force, energy and
// virial shares and flags a blow-up.
fn finish(acc_in: Acc, i: u32, live: bool, lid: u32) {
    let per_group = WG / TPA;
    let slot = lid % per_group;
    let lane = lid / per_group;
    var acc = acc_in;
    if (TPA > 1u) {
        part_fe[lid] = vec4f(acc.f, acc.e);
        part_w[lid] = vec2f(acc.w, acc.erc);
        workgroupBarrier();
        if (lane == 0u) {
            for (var t = 1u; t < TPA; t++) {
                let q = part_fe[slot + t * per_group];
                let r = part_w[slot + t * per_group];
                acc.f += q.xyz;
                acc.e += q.w;
                acc.w += r.x;
                acc.erc += r.y;
            }
        }
    }
    if (!live || lane != 0u) {
        return;
    }
    store_acc(acc, i);
}

// Atom i's force, energy and virial shares, and the blow-up check.
fn store_acc(acc: Acc, i: u32) {
    force[i] = vec4f(acc.f, 0.5 * acc.e);
    atom_virial[i] = vec2f(0.5 * acc.w, 0.5 * acc.erc);
    let f2 = dot(acc.f, acc.f);
    if (not_finite(f2) || not_finite(acc.e) || f2 > P.max_force2) {
        if (atomicMax(&status[ST_BLOWUP], 1u) == 0u) {
            atomicStore(&status[ST_BLOWUP_STEP], atomicLoad(&status[ST_STEP]));
        }
        atomicMin(&status[ST_BLOWUP_ATOM], i);
    }
}

// The atom of this thread: WG / TPA atoms per workgroup, lane lid / (WG / TPA) of TPA.
fn atom_of(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
    let per_group = WG / TPA;
    return (wid.y * nwg.x + wid.x) * per_group + lid % per_group;
}

@compute @workgroup_size(64)
fn lj_force(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
    let i = atom_of(wid, nwg, lid);
    let lane = lid / (WG / TPA);
    let live = i < P.n_atoms;
    var acc = Acc(vec3f(0.0), 0.0, 0.0, 0.0);
    if (live) {
        let xi = pos[i];
        let row = bitcast<u32>(xi.w) * P.n_types;
        let n = min(nbr_count[i], P.nbr_capacity);
        for (var k = lane; k < n; k += TPA) {
            let w = k * P.n_atoms + i;
            add_pair(&acc, xi, row, pos[nbr_list[w >> 2u][w & 3u]]);
        }
    }
    finish(acc, i, live, lid);
}

@compute @workgroup_size(64)
fn lj_force_slots(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
    let t = atom_of(wid, nwg, lid);
    let live = t < P.n_atoms;
    var i = 0u;
    var acc = Acc(vec3f(0.0), 0.0, 0.0, 0.0);
    if (live) {
        i = cell_atoms[t];
        acc = slot_row_sums(t, lid / (WG / TPA));
    }
    finish(acc, i, live, lid);
}

// One thread per atom (TPA = 1) without workgroup memory: `finish`'s partial-sum arrays
// (1.5 KiB per workgroup, unused with one thread per atom but still allocated by the driver)
// cost resident workgroups L1 cache, where the position gathers live (the SM's workgroup
// memory and L1 share one array).
@compute @workgroup_size(64)
fn lj_force_slots1(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid, WG);
    if (t < P.n_atoms) {
        store_acc(slot_row_sums(t, 0u), cell_atoms[t]);
    }
}

// Lane `lane`'s share of list row t (rows by slot).
fn slot_row_sums(t: u32, lane: u32) -> Acc {
    var acc = Acc(vec3f(0.0), 0.0, 0.0, 0.0);
    let xi = slot_pos[t];
    let row = bitcast<u32>(xi.w) * P.n_types;
    let c = nbr_count[t];
    var n = min(c, P.nbr_capacity);
    if (SPLIT) {
        // Split rows (split_rows.wgsl): the outer groups, from the row's back, by their
        // entries inside the largest cutoff; then the inner ones as any packed row.
        n = min(split_inner(c), P.nbr_capacity);
        let n_out = min(split_outer(c), P.nbr_capacity);
        for (var mb = 0u; mb < n_out; mb += 8u) {
            let g = outer_group(xi.xyz, t, mb, n_out);
            var mask = g.mask;
            while (mask != 0u) {
                add_pair(&acc, xi, row, slot_pos[group_word(g.lo, g.hi, next_bit(&mask))]);
            }
        }
    }
    if (PACKED && TPA == 1u) {
        // One thread per atom: each group of eight as two vec4u, eight independent
        // gathers at once. (Several threads per atom read word by word below: the TPA
        // lanes of an atom then read consecutive words, one sector per round, and share
        // the row evenly; whole groups per lane left LJ's ~10 groups per row unevenly
        // split over 8 lanes, 20.8 -> 26.8 us at 32,000 atoms on the H200.)
        for (var kb = 0u; kb < n; kb += 8u) {
            let w = list_word(kb, t, true, P) >> 2u;
            add_quad(&acc, xi, row, nbr_list[w], n - kb);
            if (n - kb > 4u) {
                add_quad(&acc, xi, row, nbr_list[w + 1u], n - kb - 4u);
            }
        }
    } else {
        for (var k = lane; k < n; k += TPA) {
            let w = list_word(k, t, PACKED, P);
            add_pair(&acc, xi, row, slot_pos[nbr_list[w >> 2u][w & 3u]]);
        }
    }
    return acc;
}

// The same forces without a Verlet list, straight from the cell list (`neighbor.mode =
// "cells"`): each atom visits the ~27 cells around its own, about 6x the candidates of a
// list but no 4·capacity bytes per atom, which is what lets 50+ million atoms fit. The cell
// list is rebuilt on the same skin/2 criterion as a Verlet list (cells have edge >= cutoff
// + skin), so it still covers every pair inside the cutoff. Sums run cell by cell in index
// order: deterministic.
@compute @workgroup_size(64)
fn lj_force_cells(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
    let i = atom_of(wid, nwg, lid);
    let lane = lid / (WG / TPA);
    let live = i < P.n_atoms;
    var acc = Acc(vec3f(0.0), 0.0, 0.0, 0.0);
    if (live) {
        let xi = pos[i];
        let row = bitcast<u32>(xi.w) * P.n_types;
        // Centred on the atom's cell now, not at the rebuild: a neighbor within the cutoff
        // now was within cutoff + skin/2 of this position at the rebuild (it moved < skin/2),
        // and cells have edge >= cutoff + skin, so its listed cell is in this stencil.
        let ci = vec3i(cell_coords(xi.xyz, P));
        let span = stencil_span(P);
        let cells = span.x * span.y * span.z;
        for (var q = lane; q < cells; q += TPA) {
            let c = stencil_cell(ci, q, P);
            let end = cell_start[c + 1u];
            for (var s = cell_start[c]; s < end; s++) {
                let j = cell_atoms[s];
                if (j != i) {
                    add_pair(&acc, xi, row, pos[j]);
                }
            }
        }
    }
    finish(acc, i, live, lid);
}
