// The Verlet list build by subgroups: one subgroup ("team") per cell. Driver: `neighbor`
// (`BuildPlan::team`); only where the adapter has subgroups (wgpu's SUBGROUP feature).
//
// Why: nbr_build gives each thread one atom, and the lanes of a warp walk their own stencil
// rows with their own trip counts and their own scattered candidate loads. Measured on the
// H200 (BENCHMARKS.md, Coulomb, eleventh session, call 11): the same build with every lane
// walking its first lane's rows (loads broadcast, trip counts equal) took 38 % less time at
// 2,097,152 ions. Here the team takes its cell's atoms one after the other, and for each the
// lanes split every run of candidates: one coalesced load of consecutive candidates per
// lane, one trip count per team, and the matches of a batch written in candidate order from
// a ballot (each lane's place = the matches of the lanes before it).
//
// The list is identical, entry for entry, to nbr_build's with one thread per atom (same
// rows, same runs, same order within them, same image per candidate): tests compare them.
#import neighbor

// 32-bit words of a subgroup ballot that hold lanes: ceil(largest subgroup size / 32).
override SG_WORDS: u32 = 1u;

// Set bits of b among the lanes that `mask` selects (the first SG_WORDS words).
fn lanes_in(b: vec4u, mask: vec4u) -> u32 {
    var c = countOneBits(b.x & mask.x);
    if (SG_WORDS > 1u) {
        c += countOneBits(b.y & mask.y);
    }
    if (SG_WORDS > 2u) {
        c += countOneBits(b.z & mask.z) + countOneBits(b.w & mask.w);
    }
    return c;
}

// The lanes before `lane` in ballot word k.
fn lanes_before(lane: u32, k: u32) -> u32 {
    let lo = 32u * k;
    if (lane >= lo + 32u) {
        return 0xffffffffu;
    }
    if (lane <= lo) {
        return 0u;
    }
    return (1u << (lane - lo)) - 1u;
}

@compute @workgroup_size(64)
fn nbr_build_team(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32,
                  @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32,
                  @builtin(subgroup_invocation_id) sg_lane: u32) {
    if (lid == 0u) {
        atomicStore(&wg_max, 0u);
    }
    workgroupBarrier();
    // This lane's place among the subgroup's live lanes, and their number: a batch gives the
    // lane of place p the run's candidate p (no assumption that lanes are numbered densely).
    let before = vec4u(lanes_before(sg_lane, 0u), lanes_before(sg_lane, 1u),
                       lanes_before(sg_lane, 2u), lanes_before(sg_lane, 3u));
    let all = vec4u(0xffffffffu);
    let live = subgroupBallot(true);
    let place = lanes_in(live, before);
    let width = lanes_in(live, all);
    let exact = images_by_cell();
    let n_groups = nwg.x * nwg.y;
    var most = 0u;
    // Cells by team, grid-stride (the host sizes the dispatch for its largest subgroup size;
    // any size is correct). The loop bounds are the team's own: uniform within it.
    for (var c = (wid.y * nwg.x + wid.x) * n_sg + sg_id; c < P.cell_dims.w; c += n_groups * n_sg) {
        let a0 = cell_start[c];
        let na = cell_count[c];
        for (var m = 0u; m < na; m++) {
            let t = a0 + m;
            let mine = cell_pos[t];
            let i = bitcast<u32>(mine.w);
            let pi = mine.xyz;
            let ci = vec3i(cell_coords(pi, P));
            let rowid = select(i, t, SLOT_ROWS);
            let span = stencil_span(P);
            var count = 0u;
            for (var r = 0u; r < span.y * span.z; r++) {
                let row = stencil_row(pi, ci, r);
                if (row.x1 < row.x0) {
                    continue;
                }
                for (var q = 0u; q < 3u; q++) {
                    let run = row_run(row, q);
                    let pis = pi - run.img;
                    for (var b0 = run.s0; b0 < run.s1; b0 += width) {
                        let s = b0 + place;
                        let inside = s < run.s1;
                        let cand = cell_pos[select(run.s0, s, inside)];
                        let hit = inside && is_match(i, pi, pis, exact, cand);
                        let votes = subgroupBallot(hit);
                        if (hit) {
                            let k = count + lanes_in(votes, before);
                            if (k < P.nbr_capacity) {
                                let w = list_word(k, rowid, PACKED, P);
                                nbr_list[w >> 2u][w & 3u] = select(bitcast<u32>(cand.w), s, SLOT_ROWS);
                            }
                        }
                        count += lanes_in(votes, all);
                    }
                }
            }
            if (place == 0u) {
                nbr_count[rowid] = count;
            }
            most = max(most, count);
        }
    }
    if (place == 0u) {
        atomicMax(&wg_max, most);
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&status[ST_MAX_NBRS], atomicLoad(&wg_max));
    }
}
