// Verlet neighbor list (full: each pair appears in both atoms' rows) built from the cell
// list, and the GPU-side decision whether to rebuild it this step.
//
// Layout: neighbor k of row r is word `list_word(k, r, PACKED)` (common.wgsl): column-major
// k * n_atoms + r (the threads of a warp read consecutive words), or with PACKED in groups of
// eight entries per row, each group one 32-byte sector. Row r belongs to atom r and holds
// atom indices; or, with SLOT_ROWS, row r belongs to the atom in cell slot r (cell_atoms[r],
// fixed until the next build) and holds the cell slots of its neighbors, whose current
// positions the force kernels read from slot_pos (refreshed every step by `slot_gather`).
// Consecutive rows are then atoms of neighboring cells and a row's entries are runs of
// neighboring slots, so the build's writes and the force kernels' gathers stay local
// whatever order the atoms are stored in (an atom's index says nothing about where it is
// once the liquid has mixed).
// nbr_count[r] is the true count even when it exceeds the capacity; ST_MAX_NBRS lets the
// host see the overflow, roll back and regrow. Nothing is dropped silently. Within a row,
// neighbors come stencil row by stencil row, each in cell order of the unwrapped x
// coordinate.
#import common
#import split_rows

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
@group(0) @binding(2) var<storage, read> cell_start: array<u32>;
@group(0) @binding(3) var<storage, read> cell_count: array<u32>;
@group(0) @binding(4) var<storage, read> cell_pos: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> nbr_list: array<vec4u>;
@group(0) @binding(6) var<storage, read_write> nbr_count: array<u32>;
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read> indirect_template: array<u32>;
@group(0) @binding(9) var<storage, read_write> indirect: array<u32>;

@group(0) @binding(10) var<storage, read> cell_atoms: array<u32>;
@group(0) @binding(11) var<storage, read_write> slot_pos: array<vec4f>;

// Rebuild by pairs (`pair_check`, integrate.wgsl's pair_list).
@group(0) @binding(12) var<storage, read> vel: array<vec4f>;
@group(0) @binding(13) var<storage, read> force: array<vec4f>;
@group(0) @binding(14) var<storage, read> ref_pos: array<vec4f>;
// integrate.wgsl's pair_list: read-only in the check (its dispatch reads the same buffer as
// indirect arguments), read-write in `decide` (which resets its counts for the next step).
@group(0) @binding(15) var<storage, read> pair_list_ro: array<u32>;
@group(0) @binding(16) var<storage, read_write> pair_list: array<u32>;

var<workgroup> wg_max: atomic<u32>;

// Threads per atom (as in lj.wgsl): a small system has too few atoms to hide the latency
// of each thread's ~300–500 candidate loads, so TPA lanes split an atom's stencil rows. To keep the
// row order fixed (sums over it reproducible), every lane first counts its matches, the
// lanes' counts become offsets, and then each lane rescans and writes its part in place.
override TPA: u32 = 1u;

// Thread t builds the atom in cell slot t (CELL_THREADS), so a warp's atoms share their
// cells' candidates in cache — with several threads per atom, or with rows by slot (then its
// row writes are consecutive rows too). With one thread per atom and rows by atom, thread t
// builds atom t instead: in cell order its writes would scatter over the rows of unrelated
// atoms (measured on an H200, BENCHMARKS.md Coulomb fifth session call 1: +22 % build time).
//
// Tried and reverted (BENCHMARKS.md, call 12): staging each lane's matches in 6 KB of
// workgroup memory to skip the counting pass made the build 1.5x *slower* at every size,
// even where the staging path was not taken — the shared-memory carve-out shrinks the L1
// cache that the candidate reads live in.
override SLOT_ROWS: bool = false;
override CELL_THREADS: bool = TPA > 1u || SLOT_ROWS;

var<workgroup> lane_count: array<u32, 64>;

// Packed rows (rows by slot, `neighbor::ListLayout::BySlotPacked`). With one thread per row the
// thread keeps its row's current group of eight in registers and stores it as one whole
// 32-byte sector. Why: a thread that stores each match on its own leaves a partly written
// sector behind in L2 per match; at millions of atoms (377 M matches per build at 2,097,152
// ions) those sectors are evicted before their neighbours' lanes fill them, and every one
// costs the HBM a read-modify-write — about the 7.8 ms the build took (BENCHMARKS.md,
// Coulomb, sixth session). With several threads per row each lane writes its words alone.
override PACKED: bool = false;
// Rows skipped and trimmed by their distance (`scan_row`); `WGMD_ROW_PRUNE=0` turns it off
// (A/B runs).
override PRUNE: bool = true;
var<private> pend_lo: vec4u;
var<private> pend_hi: vec4u;

// Split rows (split_rows.wgsl; packed, one thread per row): matches closer than OUTER_CUT2
// go to the front of the row through pend_*, the others to the back through pout_*, counted
// in n_in / n_out.
var<private> pout_lo: vec4u;
var<private> pout_hi: vec4u;
var<private> n_in: u32;
var<private> n_out: u32;

// Stores the pending group that holds entry k of row `rowid` (all eight words; those past
// the row's count are never read).
fn flush_group(rowid: u32, k: u32) {
    if (k < P.nbr_capacity) {
        let w = list_word(k & ~7u, rowid, true, P) >> 2u;
        nbr_list[w] = pend_lo;
        nbr_list[w + 1u] = pend_hi;
    }
}

// Stores the pending outer group that holds outer entry m of row `rowid` (split rows).
fn flush_outer(rowid: u32, m: u32) {
    if (m < P.nbr_capacity) {
        let w = list_word(split_outer_k(m & ~7u), rowid, true, P) >> 2u;
        nbr_list[w] = pout_lo;
        nbr_list[w + 1u] = pout_hi;
    }
}

// A match (value v) of a split row: inner ones from the front, outer ones from the back, each
// through its own group shift register.
fn put_split(rowid: u32, inner: bool, v: u32) {
    if (inner) {
        put_entry(rowid, n_in, v);
        n_in++;
    } else {
        pout_lo = vec4u(pout_lo.yzw, pout_hi.x);
        pout_hi = vec4u(pout_hi.yzw, v);
        if ((n_out & 7u) == 7u) {
            flush_outer(rowid, n_out);
        }
        n_out++;
    }
}

// A split row's last, partly filled groups (their m entries sit in the last m words: shifted
// to the first), its packed count, and the room it needs: whole groups from both ends.
fn finish_split(rowid: u32) -> u32 {
    if ((n_in & 7u) != 0u) {
        for (var j = n_in & 7u; j < 8u; j++) {
            pend_lo = vec4u(pend_lo.yzw, pend_hi.x);
            pend_hi = vec4u(pend_hi.yzw, 0u);
        }
        flush_group(rowid, n_in - 1u);
    }
    if ((n_out & 7u) != 0u) {
        for (var j = n_out & 7u; j < 8u; j++) {
            pout_lo = vec4u(pout_lo.yzw, pout_hi.x);
            pout_hi = vec4u(pout_hi.yzw, 0u);
        }
        flush_outer(rowid, n_out - 1u);
    }
    nbr_count[rowid] = min(n_in, 0xffffu) | (min(n_out, 0xffffu) << 16u);
    return ((n_in + 7u) & ~7u) + ((n_out + 7u) & ~7u);
}

// Entry k (value v) of row `rowid`.
fn put_entry(rowid: u32, k: u32, v: u32) {
    if (PACKED && TPA == 1u) {
        if (SHIFT_GROUP) {
            // The group as a shift register (eight moves per entry, not a compare and a
            // select per word): after entries k - 7 .. k, word j holds entry k - 7 + j.
            pend_lo = vec4u(pend_lo.yzw, pend_hi.x);
            pend_hi = vec4u(pend_hi.yzw, v);
        } else {
            let c = vec4u(k & 7u);
            let q = vec4u(0u, 1u, 2u, 3u);
            pend_lo = select(pend_lo, vec4u(v), q == c);
            pend_hi = select(pend_hi, vec4u(v), q + vec4u(4u) == c);
        }
        if ((k & 7u) == 7u) {
            flush_group(rowid, k);
        }
    } else if (k < P.nbr_capacity) {
        let w = list_word(k, rowid, PACKED, P);
        nbr_list[w >> 2u][w & 3u] = v;
    }
}

// Candidates are tested against the image of the candidate that their cell's place in the
// stencil implies (`image`: 0 or ±L per axis, from the unwrapped cell coordinates) instead of
// by min_image's rounding: fewer instructions per candidate (the build at 2,097,152 ions
// 11-15 % faster on the H200, BENCHMARKS.md, Coulomb, eleventh session; tried there and not
// kept: four candidate loads in flight per thread ±0, candidates tested 32 at a time into a
// bit mask and written from it +2 %). Used with half-size cells (>= 5 per axis, edge >= half
// the list cutoff): then a pair within the list cutoff has one image that close, and it lies
// in the stencil cell it is visited from; positions are in [0, L] (the host wraps them, the
// integrator re-wraps). With whole cells (small boxes, where an axis may have fewer than 3
// and the stencil aliases; `WGMD_CELL_REACH=1`) and with `WGMD_NBR_SHIFT=0` (A/B runs),
// min_image as before.
override SHIFT_IMAGES: bool = true;

fn images_by_cell() -> bool {
    return SHIFT_IMAGES && stencil_reach2(P);
}

// Squared distance of candidate `cand` from atom i at pi (pis: pi minus the candidate
// cell's image offset, used when `exact`); beyond any cutoff for the atom itself.
fn cand_d2(i: u32, pi: vec3f, pis: vec3f, exact: bool, cand: vec4f) -> f32 {
    var d = pis - cand.xyz;
    if (!exact) {
        d = min_image(pi - cand.xyz, P);
    }
    return select(dot(d, d), 3.0e38, bitcast<u32>(cand.w) == i);
}

// Matches among the candidates cell_pos[s0..s1) of atom i at pi, whose cells' image offset
// is `image`; writes them at row slots from `first` on when `write`.
fn scan_range(i: u32, rowid: u32, pi: vec3f, image: vec3f, s0: u32, s1: u32, first: u32,
              write: bool) -> u32 {
    let exact = images_by_cell();
    let pis = pi - image;
    var count = 0u;
    for (var s = s0; s < s1; s++) {
        let cand = cell_pos[s];
        let d2 = cand_d2(i, pi, pis, exact, cand);
        if (d2 < P.list_cut2) {
            if (write) {
                let v = select(bitcast<u32>(cand.w), s, SLOT_ROWS);
                if (SPLIT) {
                    put_split(rowid, d2 < OUTER_CUT2, v);
                } else {
                    put_entry(rowid, first + count, v);
                }
            }
            count++;
        }
    }
    return count;
}

// `WGMD_NBR_WRAP=0` (A/B runs): the rows' cells wrapped by modulos as before.
override WRAP_ONCE: bool = true;
// `WGMD_NBR_SHIFT_GROUP=0` (A/B runs): a packed row's pending group filled by selects.
override SHIFT_GROUP: bool = true;

// Visits stencil row r (0 ≤ r < span.y · span.z) around ci: its span.x cells along x are
// consecutive in cell order, so their atoms are one contiguous run of cell_pos — two when
// the row wraps around the box, visited in order of unwrapped x (the wrapped cells first when
// the row starts left of x = 0). Returns the matches, written from `first` on when `write`.
fn scan_row(i: u32, rowid: u32, pi: vec3f, ci: vec3i, r: u32, first: u32, write: bool) -> u32 {
    let span = stencil_span(P);
    let lo = stencil_lo(P);
    let dims = vec3i(P.cell_dims.xyz);
    // r / span.y by a float product (exact: r < 125, span.y <= 5, and (r + 0.5) / span.y is
    // never within 0.1 of an integer) instead of a runtime integer division.
    var rz = r / span.y;
    if (WRAP_ONCE) {
        rz = u32((f32(r) + 0.5) * (1.0 / f32(span.y)));
    }
    let yu = ci.y + lo.y + i32(r - rz * span.y);  // unwrapped cell row
    let zu = ci.z + lo.z + i32(rz);
    // The row's wrapped y-z cell and the candidates' image (the unwrapped cell minus the
    // wrapped one, in boxes). A stencil reaches at most one box past a face, so one wrap
    // does: compares, not the runtime divisions (tens of instructions each) that a modulo
    // by the cell count costs — they were a fifth of the build's work per row.
    var wy = select(0, 1, yu >= dims.y) - select(0, 1, yu < 0);
    var wz = select(0, 1, zu >= dims.z) - select(0, 1, zu < 0);
    if (!WRAP_ONCE) {
        wy = (yu - (yu + dims.y) % dims.y) / dims.y;
        wz = (zu - (zu + dims.z) % dims.z) / dims.z;
    }
    let y = yu - wy * dims.y;
    let z = zu - wz * dims.z;
    let base = (z * dims.y + y) * dims.x;   // cell index of (0, y, z)
    let l = P.box_len.xyz;
    let img = vec3f(0.0, f32(wy) * l.y, f32(wz) * l.z);
    var x0 = ci.x + lo.x;
    var x1 = x0 + i32(span.x) - 1;          // inclusive; spans never exceed dims.x
    if (PRUNE && stencil_reach2(P)) {
        // Half-size cells: skip the rows whose y-z extent lies beyond the list cutoff from
        // this atom, and trim the others to the x cells the cutoff can reach (82 of the 125
        // cells on average instead of all). Safe with reach 2 only: every axis has >= 5
        // cells of edge >= cutoff / 2, so the nearest image of a row is the unwrapped one
        // whenever either is within the cutoff. The margins (1e-4 of a cell) only keep f32
        // rounding from trimming a cell that holds a pair at the cutoff itself.
        let edge = 1.0 / P.cell_scale.xyz;
        let pad = 1e-4 * edge;
        let ylo = f32(yu) * edge.y;
        let zlo = f32(zu) * edge.z;
        let dy = max(max(ylo - pi.y, pi.y - (ylo + edge.y)) - pad.y, 0.0);
        let dz = max(max(zlo - pi.z, pi.z - (zlo + edge.z)) - pad.z, 0.0);
        let rest = P.list_cut2 - (dy * dy + dz * dz);
        if (rest < 0.0) {
            return 0u;
        }
        let dx = sqrt(max(rest, 0.0)) + pad.x;
        x0 = max(x0, i32(floor((pi.x - dx) * P.cell_scale.x)));
        x1 = min(x1, i32(floor((pi.x + dx) * P.cell_scale.x)));
        if (x1 < x0) {
            return 0u;
        }
    }
    var count = 0u;
    if (x0 < 0) {
        let wa = u32(base + x0 + dims.x);
        let wb = u32(base + dims.x - 1);
        count += scan_range(i, rowid, pi, img - vec3f(l.x, 0.0, 0.0), cell_start[wa],
                            cell_start[wb] + cell_count[wb], first, write);
    }
    // In-box part [max(x0, 0), min(x1, dims.x − 1)].
    let a = u32(base + max(x0, 0));
    let b = u32(base + min(x1, dims.x - 1));
    count += scan_range(i, rowid, pi, img, cell_start[a], cell_start[b] + cell_count[b],
                        first + count, write);
    if (x1 >= dims.x) {
        let wa = u32(base);
        let wb = u32(base + x1 - dims.x);
        count += scan_range(i, rowid, pi, img + vec3f(l.x, 0.0, 0.0), cell_start[wa],
                            cell_start[wb] + cell_count[wb], first + count, write);
    }
    return count;
}

@compute @workgroup_size(64)
fn nbr_build(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
    let per_group = WG / TPA;
    let slot = lid % per_group;
    let lane = lid / per_group;
    let t = (wid.y * nwg.x + wid.x) * per_group + slot;
    let live = t < P.n_atoms;
    var i = t;
    if (lid == 0u) {
        atomicStore(&wg_max, 0u);
    }
    var pi = vec3f(0.0);
    var ci = vec3i(0);
    var rows = 0u;
    if (live) {
        if (CELL_THREADS) {
            let mine = cell_pos[t];
            i = bitcast<u32>(mine.w);
            pi = mine.xyz;
        } else {
            pi = pos[i].xyz;
        }
        ci = vec3i(cell_coords(pi, P));
        let span = stencil_span(P);
        rows = span.y * span.z;
    }
    let rowid = select(i, t, SLOT_ROWS);
    var first = 0u;
    if (TPA > 1u) {
        var mine = 0u;
        for (var r = lane; r < rows; r += TPA) {
            mine += scan_row(i, rowid, pi, ci, r, 0u, false);
        }
        lane_count[lid] = mine;
        workgroupBarrier();
        for (var t = 0u; t < lane; t++) {
            first += lane_count[slot + t * per_group];
        }
    } else {
        workgroupBarrier();
    }
    var count = first;
    for (var r = lane; r < rows; r += TPA) {
        count += scan_row(i, rowid, pi, ci, r, count, true);
    }
    if (SPLIT) {
        if (live) {
            atomicMax(&wg_max, finish_split(rowid));
        }
    } else if (PACKED && TPA == 1u && live && (count & 7u) != 0u) {
        // A packed row's last, partly filled group.
        if (SHIFT_GROUP) {
            // Its m entries sit in the last m words: shift them to the first.
            for (var j = count & 7u; j < 8u; j++) {
                pend_lo = vec4u(pend_lo.yzw, pend_hi.x);
                pend_hi = vec4u(pend_hi.yzw, 0u);
            }
        }
        flush_group(rowid, count - 1u);
    }
    // The last lane's end is the row's total.
    if (!SPLIT && live && lane == TPA - 1u) {
        nbr_count[rowid] = count;
        atomicMax(&wg_max, count);
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&status[ST_MAX_NBRS], atomicLoad(&wg_max));
    }
}

// Every step with SLOT_ROWS, before the forces: the current positions (type in w) in cell
// slot order.
@compute @workgroup_size(64)
fn slot_gather(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid, WG);
    if (t < P.n_atoms) {
        slot_pos[t] = pos[cell_atoms[t]];
    }
}

// Rebuild by pairs (`PAIRS`: `engine::default_rebuild_by_pairs`, Coulomb from 131,072 atoms, or
// `engine::Simulation::set_rebuild_by_pairs`). The list holds every pair closer than rc + skin at
// the build (rc = the list cutoff less the skin); it is exact while every pair closer than rc now
// is one of those. The textbook test rebuilds as soon as twice the largest displacement d since
// the build passes the skin, which pairs the fastest atom with the second fastest of the whole
// box, moving straight at each other. Here the pairs are looked at: a pair can only have come
// from beyond rc + skin to within rc if |d_i| + |d_j| > skin, so one of them moved more than
// skin/2 — a few atoms among millions, none early in a list's life, which the integrator lists
// (pair_list). One workgroup per listed atom a scans the atoms b of the (2 PAIR_REACH + 1)³ build
// cells around a's build cell (PAIR_REACH · the smallest edge >= rc + 2 skin: every b that can
// reach a while no atom moved, or coasts, more than PAIR_DMAX >= skin, which `decide` checks
// globally) and flags the list stale (ST_PAIR_STALE) if a pair with |d_a| + |d_b| > skin is
// within rc now and was not surely within rc + skin at the build (margins of 1e-5 cover f32
// rounding both ways). With opportunities every step that is the whole test: lists last until a
// pair really breaks them. With opportunities every few steps a list must also last until the
// next one: the same test on the coasting forecasts (`reach` = |d| + the distance coasted by
// then, as the integrator's) flags ST_PAIR_AHEAD if such a pair may come within rc before it —
// its distance now less both atoms' coasting distances.
override PAIRS: bool = false;
override PAIR_REACH: u32 = 3u;
// The largest displacement² (or forecast²) the stencil covers (`neighbor::pair_dmax`: build
// positions within rc + 2 PAIR_DMAX of a's lie within PAIR_REACH cells of it); past it: rebuild.
override PAIR_DMAX2: f32 = 0.0;
override FAST_CAP: u32 = 4096u;
override AHEAD_MARGIN: f32 = 2.0;

var<workgroup> wg_ahead: atomic<u32>;
var<workgroup> wg_stale: atomic<u32>;

// (|d|, the coasting forecast of |d| at the next opportunity, t later) of atom b whose build
// position is x0 (as integrate.wgsl's record_displacement).
fn displacement(b: u32, x0: vec3f, t: f32) -> vec2f {
    let d = length(min_image(pos[b].xyz - x0, P));
    if (t == 0.0) {
        // Opportunities every step (large systems): no forecast, no velocity or force loads.
        return vec2f(d);
    }
    let v = vel[b];
    let a = (P.ftm2v * v.w) * force[b].xyz;
    return vec2f(d, d + t * length(v.xyz) + 0.5 * t * t * length(a));
}

@compute @workgroup_size(64)
fn pair_check(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&wg_ahead, 0u);
        atomicStore(&wg_stale, 0u);
    }
    workgroupBarrier();
    let a = pair_list_ro[4u + wid.x];
    let t = f32(P.check_every - 1u) * P.dt;
    let xa = ref_pos[a].xyz;
    let pa = pos[a].xyz;
    let da = displacement(a, xa, t);
    let skin = 2.0 * sqrt(P.half_skin2);
    let list_cut = sqrt(P.list_cut2);
    let listed = list_cut * (1.0 - 1e-5);
    let inside = (list_cut - skin) * (1.0 + 1e-5);
    // Only atoms b whose build position lies within rc + reach_a + the largest reach (or
    // displacement) of any atom can come within the cutoff of a by the next opportunity;
    // cells and atoms farther away are skipped before their positions are loaded (the scan
    // is what this check costs, and late in a list's life thousands of atoms are listed).
    let most = max(atomicLoad(&status[ST_MAX_DISP2]), atomicLoad(&status[ST_MAX_REACH2]));
    let near = (list_cut - skin + da.y + sqrt(bitcast<f32>(most))) * (1.0 + 1e-5);
    let edge = 1.0 / P.cell_scale.xyz;
    let ca = vec3i(cell_coords(xa, P));
    let dims = vec3i(P.cell_dims.xyz);
    let w = 2u * PAIR_REACH + 1u;
    var stale = false;
    var ahead = false;
    for (var q = lid; q < w * w * w; q += 64u) {
        // A stencil wider than the box visits cells twice, each time as another image (its
        // unwrapped place): harmless here.
        let cu = ca + vec3i(vec3u(q % w, (q / w) % w, q / (w * w))) - vec3i(i32(PAIR_REACH));
        let lo = vec3f(cu) * edge;
        let gap = max(max(lo - xa, xa - (lo + edge)), vec3f(0.0));
        if (dot(gap, gap) > near * near) {
            continue;
        }
        let ci = cell_index(vec3u((cu % dims + dims) % dims), P);
        let s0 = cell_start[ci];
        let s1 = s0 + cell_count[ci];
        for (var s = s0; s < s1; s++) {
            let cp = cell_pos[s];
            let b = bitcast<u32>(cp.w);
            let r0 = min_image(xa - cp.xyz, P);
            let r02 = dot(r0, r0);
            if (b == a || r02 > near * near || r02 < listed * listed) {
                continue;
            }
            // b is not surely in a's row: may the pair be inside the cutoff now, or by the
            // next opportunity?
            let db = displacement(b, cp.xyz, t);
            if (da.y + db.y > skin) {
                let r = length(min_image(pa - pos[b].xyz, P));
                stale = stale || (da.x + db.x > skin && r < inside);
                ahead = ahead || r - AHEAD_MARGIN * ((da.y - da.x) + (db.y - db.x)) < inside;
            }
        }
    }
    if (stale) {
        atomicStore(&wg_stale, 1u);
    }
    if (ahead) {
        atomicStore(&wg_ahead, 1u);
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&status[ST_PAIR_STALE], atomicLoad(&wg_stale));
        atomicMax(&status[ST_PAIR_AHEAD], atomicLoad(&wg_ahead));
    }
}

// Whether the list no longer holds (check steps) or may not last until the next opportunity
// (by the forecasts, where opportunities are more than a step apart), by pairs; resets the
// pair check's state for the next step.
fn stale_by_pairs(opportunity: bool, d2: f32, reach2: f32) -> bool {
    let listed = pair_list[3];
    var stale = atomicLoad(&status[ST_PAIR_STALE]) != 0u || d2 > PAIR_DMAX2;
    if (opportunity && P.check_every > 1u) {
        stale = stale || atomicLoad(&status[ST_PAIR_AHEAD]) != 0u || reach2 > PAIR_DMAX2;
    }
    pair_list[0] = 0u;
    pair_list[3] = 0u;
    atomicStore(&status[ST_PAIR_STALE], 0u);
    atomicStore(&status[ST_PAIR_AHEAD], 0u);
    return stale || listed > FAST_CAP;
}

// One thread, every step. Rebuilding costs a handful of dispatches even when they are empty
// (indirect, zero workgroups), so the host offers a rebuild only every `P.check_every` steps
// (`decide` with OPPORTUNITY = true); the other steps run `decide` with OPPORTUNITY = false,
// which only verifies that the list still covers this step.
//
// At an opportunity the list must last until the next one, check_every − 1 steps later. The
// opening kernel recorded, per atom, its displacement since the build plus the distance it
// coasts at its current speed until then (ST_MAX_REACH2); rebuild if any atom could pass
// skin/2. With check_every = 1 this is the exact textbook criterion. Coasting ignores
// acceleration, so it is a forecast, not a proof: if an atom nevertheless passes skin/2
// before the next opportunity, the check step sets ST_MISSED and the host rolls the batch
// back and replays it with opportunities twice as often. No force from a stale list is kept.
override OPPORTUNITY: bool = true;

@compute @workgroup_size(1)
fn decide() {
    let step = atomicLoad(&status[ST_STEP]);
    let d2 = bitcast<f32>(atomicLoad(&status[ST_MAX_DISP2]));
    let reach2 = bitcast<f32>(atomicExchange(&status[ST_MAX_REACH2], 0u));
    atomicAdd(&status[ST_STEP], 1u);
    if (!OPPORTUNITY) {
        var missed = d2 > P.half_skin2;
        if (PAIRS) {
            missed = stale_by_pairs(false, d2, reach2);
        }
        if (missed) {
            atomicMax(&status[ST_MISSED], 1u);
        }
        return;
    }
    let since = f32(max(step - atomicLoad(&status[ST_LAST_BUILD]), 1u));
    var moved = max(d2, reach2) > P.half_skin2;
    if (PAIRS) {
        moved = stale_by_pairs(true, d2, reach2);
    }
    let asked = atomicLoad(&status[ST_FORCE_REBUILD]) != 0u;
    let rebuild = moved || asked;
    let n = arrayLength(&indirect_template);
    for (var k = 0u; k < n; k++) {
        indirect[k] = select(0u, indirect_template[k], rebuild);
    }
    if (rebuild) {
        // How long would this list have lasted at the speed seen? (f32 bits order like the
        // values for positive numbers, so atomicMin keeps the shortest.) The host sizes
        // check_every from it.
        if (d2 > 0.0) {
            atomicMin(&status[ST_LIFETIME], bitcast<u32>(since * sqrt(P.half_skin2 / d2)));
        }
        atomicStore(&status[ST_MAX_DISP2], 0u);
        atomicStore(&status[ST_FORCE_REBUILD], 0u);
        atomicStore(&status[ST_LAST_BUILD], step);
        atomicAdd(&status[ST_REBUILDS], 1u);
    }
}
