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

// One thread: rebuild when an atom moved more than skin/2 since the last build (or the host
// asks). The rebuild kernels are dispatched indirectly with the counts written here, so a
// step without rebuild costs no workgroups and no readback.
@compute @workgroup_size(1)
fn decide() {
    let moved = bitcast<f32>(atomicLoad(&status[ST_MAX_DISP2])) > P.half_skin2;
    let asked = atomicLoad(&status[ST_FORCE_REBUILD]) != 0u;
    let rebuild = moved || asked;
    let n = arrayLength(&indirect_template);
    for (var k = 0u; k < n; k++) {
        indirect[k] = select(0u, indirect_template[k], rebuild);
    }
    if (rebuild) {
        atomicStore(&status[ST_MAX_DISP2], 0u);
        atomicStore(&status[ST_FORCE_REBUILD], 0u);
        atomicAdd(&status[ST_REBUILDS], 1u);
    }
    atomicAdd(&status[ST_STEP], 1u);
}
