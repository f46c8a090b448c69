// pme.wgsl's charge grid as f32 summed with float atomics (wgpu's SHADER_FLOAT32_ATOMIC:
// Vulkan's VK_EXT_shader_atomic_float, Metal; not WebGPU, whose browsers get pme_fixed.wgsl).
// Composed as "pme+pme_float". The atomics return nothing, so no thread waits on one (the
// fixed-point grid needs each low word's old value for the carry); the price is that the
// rounding depends on the order of the additions, so runs are not bit-reproducible.

// Kx * Ky * Kz points: atomics while spreading, plain values when the first FFT pass reads
// and clears them.
@group(0) @binding(12) var<storage, read_write> grid_f: array<atomic<f32>>;
@group(0) @binding(13) var<storage, read_write> grid_f_words: array<f32>;

fn charge_at(g: u32) -> f32 {
    return grid_f_words[g];
}

fn clear_charge(g: u32) {
    grid_f_words[g] = 0.0;
}

// One thread per (atom, jy, jz): ORDER x-planes each. With nothing to wait for, the cost is
// the atomics' memory traffic; jz varies fastest across lanes, so an atom's ORDER lanes of one
// (jx, jy) row add to consecutive words (one or two 32-byte sectors instead of one each).
@compute @workgroup_size(64)
fn pme_spread(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let t = atom_id(wid, nwg, lid);
    let i = t / (ORDER * ORDER);
    if (i >= P.dims.w) {
        return;
    }
    let q = charge[i];
    if (q == 0.0) {
        return;
    }
    let jy = (t / ORDER) % ORDER;
    let jz = t % ORDER;
    let o = grid_origin(pos[i].xyz);
    let iy = (o.y + jy) % P.dims.y;
    let iz = (o.z + jz) % P.dims.z;
    let qyz = q * spl_at(i, 1u, 0u, jy) * spl_at(i, 2u, 0u, jz);
    for (var jx = 0u; jx < ORDER; jx++) {
        let ix = (o.x + jx) % P.dims.x;
        atomicAdd(&grid_f[(ix * P.dims.y + iy) * P.dims.z + iz], qyz * spl_at(i, 0u, 0u, jx));
    }
}

// ---- Spread by blocks of cells in workgroup memory (`forces::pme::CellTiles`) ----
//
// Why: the spread above is bound by its 125 global atomics per atom (order 5; ~230 G
// additions/s on an H200, 1.15 ms at 2,097,152 ions). A workgroup here takes a block of B³
// cells of the cell list (whose atoms are contiguous runs of cell slots), adds their
// contributions into its own tile of the grid in workgroup memory, and then adds each tile
// point to the global grid once: E³ global atomics per block instead of order³ per atom
// (E = the block's extent in grid points, halo of order - 1 included).
//
// The tile's bounds come from the cells (where the atoms were at the last neighbor build)
// widened by the largest drift the list allows (skin / 2): an atom of the block lies inside
// unless the list is already invalid. One that does not (a step that will be replayed) adds
// its contributions with the global atomics instead, so the grid is right either way.
//
// Workgroup memory has no f32 atomics in WGSL, so the tile sums in 32-bit fixed point with a
// power-of-two scale chosen per block so that no point can overflow: |sum| <= n_block q_max
// w_max³ (w_max the largest B-spline weight) < 2³⁰ / scale. Integer sums are exact whatever
// the order; each contribution is rounded once (to 0.5 / scale: ~1.5e-8 e for 150 ions of
// charge 1, the f32 atomics' ~4e-9 near a typical point value of 0.06).

// Mirrors `forces::pme::TileUniform`.
struct TileUniform {
    blocks: vec4u,    // blocks per axis, w = cells per block edge (B)
    cells: vec4u,     // cells per axis, w unused
    extent: vec4u,    // tile points per axis (E), w = their product
    geom: vec4f,      // cell edge per axis (x, y, z), w = drift allowed
    bound: vec4f,     // x = q_max w_max³ (per-atom bound of one point's contribution)
}
@group(0) @binding(18) var<uniform> T: TileUniform;

const TILE_WG: u32 = 256u;
const TILE_WORDS: u32 = 8128u;
const MAX_RUNS: u32 = 16u;
var<workgroup> tile: array<atomic<i32>, 8128>;
var<workgroup> run_start: array<u32, 16>;
// Exclusive prefix of the runs' lengths; entry MAX_RUNS = the block's atom count.
var<workgroup> run_base: array<u32, 17>;

@compute @workgroup_size(256)
fn pme_spread_tiles(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
    let b = wid.y * nwg.x + wid.x;
    let nb = T.blocks.xyz;
    if (b >= nb.x * nb.y * nb.z) {
        return;
    }
    let bc = vec3u(b % nb.x, (b / nb.x) % nb.y, b / (nb.x * nb.y));
    let c0 = bc * T.blocks.w;
    let c1 = min(c0 + T.blocks.w, T.cells.xyz);
    let dims = P.dims.xyz;
    let e = T.extent.xyz;
    let gf = vec3i(floor((vec3f(c0) * T.geom.xyz - T.geom.w) * P.scale.xyz));
    let g0 = vec3u((gf % vec3i(dims) + vec3i(dims)) % vec3i(dims));
    // One run of slots per (y, z) row of the block: its cells are consecutive in x.
    if (lid < MAX_RUNS) {
        let ny = c1.y - c0.y;
        var s = 0u;
        var n = 0u;
        if (lid < ny * (c1.z - c0.z)) {
            let first = ((c0.z + lid / ny) * T.cells.y + c0.y + lid % ny) * T.cells.x + c0.x;
            s = cell_start[first];
            n = cell_start[first + c1.x - c0.x] - s;
        }
        run_start[lid] = s;
        run_base[lid] = n;
    }
    for (var w = lid; w < T.extent.w; w += TILE_WG) {
        atomicStore(&tile[w], 0);
    }
    workgroupBarrier();
    if (lid == 0u) {
        var acc = 0u;
        for (var r = 0u; r < MAX_RUNS; r++) {
            let n = run_base[r];
            run_base[r] = acc;
            acc += n;
        }
        run_base[MAX_RUNS] = acc;
    }
    let n_block = workgroupUniformLoad(&run_base[MAX_RUNS]);
    // Largest power of two with n_block * bound * scale <= 2^30; below 2^12 (a pathological
    // pile of atoms) the tile is not used and every atom adds globally.
    let lg = floor(log2(1073741824.0 / max(f32(n_block) * T.bound.x, 1e-30)));
    let scale = exp2(min(lg, 60.0));
    let use_tile = lg >= 12.0;
    let per = ORDER * ORDER;
    for (var it = lid; it < n_block * per; it += TILE_WG) {
        let k = it / per;
        var r = 0u;
        while (k >= run_base[r + 1u]) {
            r++;
        }
        let t = run_start[r] + k - run_base[r];
        let q = charge[cell_atoms[t]];
        if (q == 0.0) {
            continue;
        }
        let jy = (it / ORDER) % ORDER;
        let jz = it % ORDER;
        let o = grid_origin(slot_pos[t].xyz);
        let lo = (o + dims - g0) % dims;
        let qyz = q * spl_at(t, 1u, 0u, jy) * spl_at(t, 2u, 0u, jz);
        if (use_tile && all(lo + ORDER <= e)) {
            let w0 = (lo.x * e.y + lo.y + jy) * e.z + lo.z + jz;
            for (var jx = 0u; jx < ORDER; jx++) {
                atomicAdd(&tile[w0 + jx * e.y * e.z], i32(round(qyz * spl_at(t, 0u, 0u, jx) * scale)));
            }
        } else {
            let iy = (o.y + jy) % dims.y;
            let iz = (o.z + jz) % dims.z;
            for (var jx = 0u; jx < ORDER; jx++) {
                let ix = (o.x + jx) % dims.x;
                atomicAdd(&grid_f[(ix * dims.y + iy) * dims.z + iz], qyz * spl_at(t, 0u, 0u, jx));
            }
        }
    }
    workgroupBarrier();
    // z varies fastest across lanes: a warp's additions fall on one or two z-runs of the grid.
    let inv = 1.0 / scale;
    for (var w = lid; w < T.extent.w; w += TILE_WG) {
        let v = atomicLoad(&tile[w]);
        if (v != 0) {
            let l = vec3u(w / (e.y * e.z), (w / e.z) % e.y, w % e.z);
            let g = (g0 + l) % dims;
            atomicAdd(&grid_f[(g.x * dims.y + g.y) * dims.z + g.z], f32(v) * inv);
        }
    }
}
