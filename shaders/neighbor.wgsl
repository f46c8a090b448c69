// Verlet neighbor list (full: each pair appears in both atoms' rows) built from the cell
// list, and the GPU-side decision whether to rebuild it this step.
//
// Layout: neighbor k of atom i is nbr_list[k * n_atoms + i] (column-major, so the threads of
// a warp read consecutive words). nbr_count[i] is the true count even when it exceeds the
// capacity; ST_MAX_NBRS lets the host see the overflow, roll back and regrow. Nothing is dropped
// silently.
#import common

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
@group(0) @binding(2) var<storage, read> cell_start: array<u32>;
@group(0) @binding(3) var<storage, read> cell_count: array<u32>;
@group(0) @binding(4) var<storage, read> cell_atoms: array<u32>;
@group(0) @binding(5) var<storage, read_write> nbr_list: array<u32>;
@group(0) @binding(6) var<storage, read_write> nbr_count: array<u32>;
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read> indirect_template: array<u32>;
@group(0) @binding(9) var<storage, read_write> indirect: array<u32>;

var<workgroup> wg_max: atomic<u32>;

// Offsets to visit along one axis: with fewer than 3 cells, -1 and +1 name the same cell
// (or the cell itself), so each distinct cell is visited once.
fn axis_lo(n: u32) -> i32 { return select(0, -1, n >= 3u); }
fn axis_hi(n: u32) -> i32 { return select(0, 1, n >= 2u); }

@compute @workgroup_size(64)
fn nbr_build(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (lid == 0u) {
        atomicStore(&wg_max, 0u);
    }
    workgroupBarrier();
    if (i < P.n_atoms) {
        let pi = pos[i].xyz;
        let dims = vec3i(P.cell_dims.xyz);
        let ci = vec3i(cell_coords(pi, P));
        var count = 0u;
        for (var dz = axis_lo(P.cell_dims.z); dz <= axis_hi(P.cell_dims.z); dz++) {
            for (var dy = axis_lo(P.cell_dims.y); dy <= axis_hi(P.cell_dims.y); dy++) {
                for (var dx = axis_lo(P.cell_dims.x); dx <= axis_hi(P.cell_dims.x); dx++) {
                    let cc = vec3u((ci + vec3i(dx, dy, dz) + dims) % dims);
                    let c = cell_index(cc, P);
                    let start = cell_start[c];
                    let end = start + cell_count[c];
                    for (var s = start; s < end; s++) {
                        let j = cell_atoms[s];
                        let d = min_image(pi - pos[j].xyz, P);
                        if (j != i && dot(d, d) < P.list_cut2) {
                            if (count < P.nbr_capacity) {
                                nbr_list[count * P.n_atoms + i] = j;
                            }
                            count++;
                        }
                    }
                }
            }
        }
        nbr_count[i] = count;
        atomicMax(&wg_max, count);
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
