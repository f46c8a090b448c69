// PME charge spread by blocks of cells in a dispatch of its own (spread_tile_core.wgsl says
// why and how; coulomb_spread.wgsl's `real_tile` runs the same blocks inside real space's
// dispatch). Driver: `forces::spread_tile`.
#import common
#import spread_tile_core

// The first two members of `forces::pme::PmeUniform` (the buffer is PME's own uniform).
struct SpreadUniform {
    dims: vec4u,   // Kx, Ky, Kz, n_atoms
    scale: vec4f,  // K_a / L_a
}

@group(0) @binding(0) var<uniform> P: Params;
// cell_start[c] .. cell_start[c + 1]: the slots of cell c (cell_list.wgsl's cell_finish).
@group(0) @binding(1) var<storage, read> cell_start: array<u32>;
// This step's positions in slot order (coulomb_spread.wgsl's slot_gather_splines).
@group(0) @binding(2) var<storage, read> slot_pos: array<vec4f>;
// Rows of n_atoms by slot: row a * ORDER + j the spline weight j along axis a, row 3 * ORDER
// the charge (slot_gather_splines, TILE_SPREAD).
@group(0) @binding(3) var<storage, read> wslot: array<f32>;
@group(0) @binding(4) var<uniform> spread_u: SpreadUniform;
@group(0) @binding(5) var<storage, read_write> grid_f: array<atomic<f32>>;

override ORDER: u32 = 5u;
override GX: u32 = 1u;
override GY: u32 = 1u;
override GZ: u32 = 1u;
// Row `row` (weight j along axis a at a * ORDER + j, charges at 3 * ORDER) of slot s. With
// SPL_LAYOUT `wslot` is PME's spline buffer stored by slot (coulomb_spread.wgsl's
// SLOT_SPLINES: weight rows at 2a * ORDER + j between the derivative rows, charges after the
// 6 * ORDER rows), which spares slot_gather_splines a second copy of the weights.
override SPL_LAYOUT: bool = false;

fn wslot_at(row: u32, s: u32) -> f32 {
    if (SPL_LAYOUT) {
        let a = row / ORDER;
        let r = select((2u * a) * ORDER + row % ORDER, 6u * ORDER, a == 3u);
        return wslot[r * P.n_atoms + s];
    }
    return wslot[row * P.n_atoms + s];
}

@compute @workgroup_size(TILE_WG)
fn spread_tile(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    spread_block(wid.y * nwg.x + wid.x, lid);
}
