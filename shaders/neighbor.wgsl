// Verlet neighbor list (full: each pair appears in both atoms' rows) built from the cell
// list, and the GPU-side decision whether to rebuild it this step.
//
// Layout: neighbor k of row r is nbr_list[k * n_atoms + r] (column-major, so the threads of
// a warp read consecutive words). Row r belongs to atom r, or with SLOT_ROWS to the atom in
// cell slot r (cell_atoms[r], fixed until the next build): consecutive rows are then atoms
// of neighboring cells, so the build's writes and the force kernels' gathers stay local
// whatever order the atoms are stored in. nbr_count[r] is the true count even when it exceeds
// the capacity; ST_MAX_NBRS lets the host see the overflow, roll back and regrow. Nothing is
// dropped silently. Within a row, neighbors come stencil row by stencil row, each in cell
// order of the unwrapped x coordinate (so both build kernels below give identical rows).
#import common

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
@group(0) @binding(2) var<storage, read> cell_start: array<u32>;
@group(0) @binding(3) var<storage, read> cell_count: array<u32>;
@group(0) @binding(4) var<storage, read> cell_pos: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> nbr_list: array<u32>;
@group(0) @binding(6) var<storage, read_write> nbr_count: array<u32>;
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read> indirect_template: array<u32>;
@group(0) @binding(9) var<storage, read_write> indirect: array<u32>;

var<workgroup> wg_max: atomic<u32>;

// Threads per atom (as in lj.wgsl): a small system has too few atoms to hide the latency
// of each thread's ~300–500 candidate loads, so TPA lanes split an atom's stencil rows. To keep the
// row order fixed (sums over it reproducible), every lane first counts its matches, the
// lanes' counts become offsets, and then each lane rescans and writes its part in place.
override TPA: u32 = 1u;

// With several threads per atom, thread t builds the atom in cell slot t, so a workgroup's
// few atoms share their cells' candidates in cache; with one, thread t builds atom t, so the
// row writes of a warp stay coalesced (measured on an H200: each wins in its own regime).
//
// Tried and reverted (BENCHMARKS.md, call 12): staging each lane's matches in 6 KB of
// workgroup memory to skip the counting pass made the build 1.5x *slower* at every size,
// even where the staging path was not taken — the shared-memory carve-out shrinks the L1
// cache that the candidate reads live in.
override SLOT_ROWS: bool = false;
override CELL_THREADS: bool = TPA > 1u || SLOT_ROWS;

var<workgroup> lane_count: array<u32, 64>;

// Matches among the candidates cell_pos[s0..s1) of atom i at pi; writes them at row slots from
// `first` on when `write`.
fn scan_range(i: u32, rowid: u32, pi: vec3f, s0: u32, s1: u32, first: u32, write: bool) -> u32 {
    var count = 0u;
    for (var s = s0; s < s1; s++) {
        let cand = cell_pos[s];
        let j = bitcast<u32>(cand.w);
        let d = min_image(pi - cand.xyz, P);
        if (j != i && dot(d, d) < P.list_cut2) {
            let slot = first + count;
            if (write && slot < P.nbr_capacity) {
                nbr_list[slot * P.n_atoms + rowid] = j;
            }
            count++;
        }
    }
    return count;
}

// Visits stencil row r (0 ≤ r < span.y · span.z) around ci: its span.x cells along x are
// consecutive in cell order, so their atoms are one contiguous run of cell_pos — two when
// the row wraps around the box, visited in order of unwrapped x (the wrapped cells first when
// the row starts left of x = 0). Returns the matches, written from `first` on when `write`.
fn scan_row(i: u32, rowid: u32, pi: vec3f, ci: vec3i, r: u32, first: u32, write: bool) -> u32 {
    let span = stencil_span(P);
    let lo = stencil_lo(P);
    let dims = vec3i(P.cell_dims.xyz);
    let y = (ci.y + lo.y + i32(r % span.y) + dims.y) % dims.y;
    let z = (ci.z + lo.z + i32(r / span.y) + dims.z) % dims.z;
    let base = (z * dims.y + y) * dims.x;   // cell index of (0, y, z)
    let x0 = ci.x + lo.x;
    let x1 = x0 + i32(span.x) - 1;          // inclusive; spans never exceed dims.x
    var count = 0u;
    if (x0 < 0) {
        let wa = u32(base + x0 + dims.x);
        let wb = u32(base + dims.x - 1);
        count += scan_range(i, rowid, pi, cell_start[wa], cell_start[wb] + cell_count[wb], first, write);
    }
    // In-box part [max(x0, 0), min(x1, dims.x − 1)].
    let a = u32(base + max(x0, 0));
    let b = u32(base + min(x1, dims.x - 1));
    count += scan_range(i, rowid, pi, cell_start[a], cell_start[b] + cell_count[b], first + count, write);
    if (x1 >= dims.x) {
        let wa = u32(base);
        let wb = u32(base + x1 - dims.x);
        count += scan_range(i, rowid, pi, cell_start[wa], cell_start[wb] + cell_count[wb],
                            first + count, write);
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
    // The last lane's end is the row's total.
    if (live && lane == TPA - 1u) {
        nbr_count[rowid] = count;
        atomicMax(&wg_max, count);
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&status[ST_MAX_NBRS], atomicLoad(&wg_max));
    }
}

// ---------------------------------------------------------------------------------------
// The build for 5×5×5 stencils (cells ≥ half the list cutoff), rows by cell slot: one
// workgroup per run of COOP_CELLS cells along x of one cell row. All its atoms share the cell
// row, so for each stencil row (dy, dz) their candidates together are the cells from
// COOP_CELLS + 4 consecutive x positions — at most three contiguous runs of cell_pos (the
// middle one, and up to two cells wrapped from each end). The workgroup loads those runs
// into workgroup memory with one coalesced pass (five stencil rows at a time), then every
// thread tests its own 5-cell window from there. In the per-atom kernel above each lane
// loads its ~660 candidates itself, from addresses that differ from its neighbours'; here
// each candidate is read from memory once per workgroup instead of once per atom.
// A stencil row whose candidates exceed its ROW_CAP slots (a dense clump) is read from
// cell_pos directly instead: same result, slower.
override COOP_CELLS: u32 = 8u;
const ROWS_AT_ONCE: u32 = 5u;
const ROW_CAP: u32 = 128u;
var<workgroup> cand: array<vec4f, 640>;          // ROWS_AT_ONCE * ROW_CAP
// Per stencil row of the current five: first cell_pos slot and length of the left-wrapped,
// middle and right-wrapped runs.
var<workgroup> run_start: array<vec3u, 5>;
var<workgroup> run_len: array<vec3u, 5>;
var<workgroup> wg_range: vec2u;

// Slot of cell_pos holding candidate e of a stencil row's union (runs concatenated).
fn union_slot(e: u32, st: vec3u, ln: vec3u) -> u32 {
    if (e < ln.x) {
        return st.x + e;
    }
    if (e < ln.x + ln.y) {
        return st.y + e - ln.x;
    }
    return st.z + e - ln.x - ln.y;
}

// Position in the union of the first atom of unwrapped cell ux (xa − 2 ≤ ux ≤ xb + 2) of the
// row starting at cell `base`, given the runs' starts and lengths.
fn union_offset(ux: i32, base: u32, st: vec3u, ln: vec3u) -> u32 {
    let d = i32(P.cell_dims.x);
    if (ux < 0) {
        return cell_start[base + u32(ux + d)] - st.x;
    }
    if (ux < d) {
        return ln.x + cell_start[base + u32(ux)] - st.y;
    }
    return ln.x + ln.y + cell_start[base + u32(ux - d)] - st.z;
}

fn wrapped_cell(ux: i32, base: u32) -> u32 {
    let d = i32(P.cell_dims.x);
    return base + u32((ux + d) % d);
}

@compute @workgroup_size(64)
fn nbr_build_coop(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
    let dims = vec3i(P.cell_dims.xyz);
    let chunks = (P.cell_dims.x + COOP_CELLS - 1u) / COOP_CELLS;
    let g = wid.y * nwg.x + wid.x;
    if (lid == 0u) {
        atomicStore(&wg_max, 0u);
    }
    let row_id = g / chunks;                         // cell row (y, z); uniform
    let live_group = row_id < P.cell_dims.y * P.cell_dims.z;
    let cy = i32(row_id % P.cell_dims.y);
    let cz = i32(row_id / P.cell_dims.y);
    let xa = i32((g % chunks) * COOP_CELLS);
    let xb = min(xa + i32(COOP_CELLS), dims.x) - 1;  // last cell of the run, inclusive
    if (lid == 0u) {
        var r = vec2u(0u);
        if (live_group) {
            let own = u32((cz * dims.y + cy) * dims.x);
            r = vec2u(cell_start[own + u32(xa)], cell_start[own + u32(xb)] + cell_count[own + u32(xb)]);
        }
        wg_range = r;
    }
    // Read back as a workgroup-uniform value: the loop below holds barriers.
    let range = workgroupUniformLoad(&wg_range);
    let s_end = range.y;
    // Usually one pass; a run of cells holding more than 64 atoms takes several.
    for (var a0 = range.x; a0 < s_end; a0 += WG) {
        let t = a0 + lid;
        let live = t < s_end;
        var i = 0u;
        var pi = vec3f(0.0);
        var cx = xa;
        if (live) {
            let mine = cell_pos[t];
            i = bitcast<u32>(mine.w);
            pi = mine.xyz;
            cx = i32(cell_coords(pi, P).x);
        }
        let rowid = select(i, t, SLOT_ROWS);
        var count = 0u;
        for (var b = 0u; b < 5u; b++) {
            let z = (cz + i32(b) - 2 + dims.z) % dims.z;
            // Runs of the five stencil rows (dy = -2..2) at this dz.
            if (lid < ROWS_AT_ONCE) {
                let y = (cy + i32(lid) - 2 + dims.y) % dims.y;
                let base = u32((z * dims.y + y) * dims.x);
                let u0 = xa - 2;
                let u1 = xb + 2;
                var st = vec3u(0u);
                var ln = vec3u(0u);
                if (u0 < 0) {
                    let c0 = base + u32(u0 + dims.x);
                    let c1 = base + u32(dims.x - 1);
                    st.x = cell_start[c0];
                    ln.x = cell_start[c1] + cell_count[c1] - st.x;
                }
                let m0 = base + u32(max(u0, 0));
                let m1 = base + u32(min(u1, dims.x - 1));
                st.y = cell_start[m0];
                ln.y = cell_start[m1] + cell_count[m1] - st.y;
                if (u1 >= dims.x) {
                    let c1 = base + u32(u1 - dims.x);
                    st.z = cell_start[base];
                    ln.z = cell_start[c1] + cell_count[c1] - st.z;
                }
                run_start[lid] = st;
                run_len[lid] = ln;
            }
            workgroupBarrier();
            for (var q = 0u; q < ROWS_AT_ONCE; q++) {
                let st = run_start[q];
                let ln = run_len[q];
                let total = ln.x + ln.y + ln.z;
                if (total <= ROW_CAP) {
                    for (var e = lid; e < total; e += WG) {
                        cand[q * ROW_CAP + e] = cell_pos[union_slot(e, st, ln)];
                    }
                }
            }
            workgroupBarrier();
            if (live) {
                for (var q = 0u; q < ROWS_AT_ONCE; q++) {
                    let st = run_start[q];
                    let ln = run_len[q];
                    let y = (cy + i32(q) - 2 + dims.y) % dims.y;
                    let base = u32((z * dims.y + y) * dims.x);
                    let e0 = union_offset(cx - 2, base, st, ln);
                    let last = wrapped_cell(cx + 2, base);
                    let e1 = union_offset(cx + 2, base, st, ln) + cell_count[last];
                    let in_wg = ln.x + ln.y + ln.z <= ROW_CAP;
                    for (var e = e0; e < e1; e++) {
                        var cnd: vec4f;
                        if (in_wg) {
                            cnd = cand[q * ROW_CAP + e];
                        } else {
                            cnd = cell_pos[union_slot(e, st, ln)];
                        }
                        let j = bitcast<u32>(cnd.w);
                        let d = min_image(pi - cnd.xyz, P);
                        if (j != i && dot(d, d) < P.list_cut2) {
                            if (count < P.nbr_capacity) {
                                nbr_list[count * P.n_atoms + rowid] = j;
                            }
                            count++;
                        }
                    }
                }
            }
            workgroupBarrier();
        }
        if (live) {
            nbr_count[rowid] = count;
            atomicMax(&wg_max, count);
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&status[ST_MAX_NBRS], atomicLoad(&wg_max));
    }
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
        if (d2 > P.half_skin2) {
            atomicMax(&status[ST_MISSED], 1u);
        }
        return;
    }
    let since = f32(max(step - atomicLoad(&status[ST_LAST_BUILD]), 1u));
    let moved = max(d2, reach2) > P.half_skin2;
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
