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

// One workgroup per cell. All atoms of a cell share the same 27 surrounding cells, so the
// workgroup loads those cells' atoms (the candidates) into workgroup memory once, in chunks,
// and each of the cell's atoms checks every candidate there. One thread per atom reading the
// candidates from global memory instead spends its time waiting on ~500 dependent random
// loads (measured on an H200: 247 µs for 32,000 atoms). Candidates keep the order of the
// cells (z, y, x offsets) and of the atoms within each cell (index order), so every row is
// in a fixed order and sums over it are reproducible.
const CHUNK: u32 = 512u;

var<workgroup> cand_pos: array<vec4f, 512>;   // xyz; w = atom index bits
var<workgroup> cell_first: array<u32, 28>;    // running candidate count before each cell
var<workgroup> cell_of: array<u32, 27>;       // the visited cells
var<workgroup> wg_total: u32;                 // candidates in all visited cells

@compute @workgroup_size(64)
fn nbr_build(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
    // Uniform across the workgroup: whole workgroups leave together.
    let c = wid.y * nwg.x + wid.x;
    if (c >= P.cell_dims.w) {
        return;
    }
    let dims = P.cell_dims.xyz;
    let cc = vec3i(vec3u(c % dims.x, (c / dims.x) % dims.y, c / (dims.x * dims.y)));
    let lo = vec3i(axis_lo(dims.x), axis_lo(dims.y), axis_lo(dims.z));
    let span = vec3u(vec3i(axis_hi(dims.x), axis_hi(dims.y), axis_hi(dims.z)) - lo + vec3i(1));
    let n_cells = span.x * span.y * span.z;
    if (lid == 0u) {
        atomicStore(&wg_max, 0u);
        var total = 0u;
        for (var q = 0u; q < n_cells; q++) {
            let off = lo + vec3i(vec3u(q % span.x, (q / span.x) % span.y, q / (span.x * span.y)));
            let nc = cell_index(vec3u((cc + off + vec3i(dims)) % vec3i(dims)), P);
            cell_of[q] = nc;
            cell_first[q] = total;
            total += cell_count[nc];
        }
        cell_first[n_cells] = total;
        wg_total = total;
    }
    // (Also the barrier: the loops below have a workgroup-uniform trip count.)
    let total = workgroupUniformLoad(&wg_total);
    let own_start = cell_start[c];
    let own_n = cell_count[c];
    // Atoms of this cell in blocks of 64 (one per thread); the loop count is uniform.
    for (var base = 0u; base < own_n; base += WG) {
        let a = base + lid;
        let live = a < own_n;
        var i = 0u;
        var pi = vec3f(0.0);
        if (live) {
            i = cell_atoms[own_start + a];
            pi = pos[i].xyz;
        }
        var count = 0u;
        for (var chunk = 0u; chunk < total; chunk += CHUNK) {
            let m = min(CHUNK, total - chunk);
            // Cooperative load: candidate k of the chunk is in visited cell q.
            var q = 0u;
            for (var k = lid; k < m; k += WG) {
                let g = chunk + k;
                while (cell_first[q + 1u] <= g) {
                    q++;
                }
                let j = cell_atoms[cell_start[cell_of[q]] + (g - cell_first[q])];
                cand_pos[k] = vec4f(pos[j].xyz, bitcast<f32>(j));
            }
            workgroupBarrier();
            if (live) {
                for (var k = 0u; k < m; k++) {
                    let cp = cand_pos[k];
                    let j = bitcast<u32>(cp.w);
                    let d = min_image(pi - cp.xyz, P);
                    if (j != i && dot(d, d) < P.list_cut2) {
                        if (count < P.nbr_capacity) {
                            nbr_list[count * P.n_atoms + i] = j;
                        }
                        count++;
                    }
                }
            }
            workgroupBarrier();
        }
        if (live) {
            nbr_count[i] = count;
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
