// PME charge spread by blocks of cells, summed in workgroup memory first. Driver:
// `forces::spread_tile`; used where the charge grid is f32 (atomics), the neighbor list's rows
// are by cell slot and real space runs one thread per atom (262,144 ions and more), in a
// dispatch of its own after the real-space one of coulomb_spread.wgsl.
//
// Why: the f32-atomic spread (spread_f32.wgsl) adds ORDER³ = 125 times per atom to the grid,
// 1.1 ms per step at 2,097,152 ions on the H200 whatever the grid's footprint. Atoms of one
// block of cells (cell slot order: each x-row of cells is one contiguous run of slots) add
// to one small box of the grid. Here one workgroup takes one block: its atoms add to a copy
// of that box in workgroup memory, and only the box, one atomic per point, goes to the grid:
// at 2,097,152 ions blocks of 2 x 5 x 5 cells, ~270 ions, 34,000 additions into a box of
// ~11,800 points (2.9x fewer global atomics, a warp's to consecutive words). Measured
// (BENCHMARKS.md, Coulomb, tenth session): ~1.0 ms inside a step instead of 1.1, of which
// ~0.35 ms the flush and little the workgroup atomics (40 % fewer of them saved 0.05 ms).
// Most of the flush was its index arithmetic: one wrap per axis instead of two modulos per
// axis and a division took 0.24 ms off the step (fourteenth session), and the weights
// computed here from the positions instead of read (FLY; fifteenth session) made the
// step's spread, gather and interpolation 0.19 ms cheaper. Where the interleaved spread
// hides behind real space (32,768 ions, 8 threads per atom) this is slower. A
// box summed without atomics (threads owning its columns, atoms binned by a counting sort)
// took 3.2 ms: each thread's chain of dependent loads per atom left it latency-bound.
//
// Workgroup memory has no f32 atomics in WGSL, so the box sums fixed point in i32: each
// addition is round(qs q w) with qs the largest power of two for which a block's n atoms
// cannot overflow any point: n qs QW <= 2^30, QW = max|q| w_max the largest single addition
// (w_max the largest product of three spline weights), and n / 2 of rounding on top stays
// below 2^31. ~270 ions of molten NaCl get qs = 2^24 (rounding errors of at most 3e-8 e per
// addition, of the order of f32's own on sums of ~0.1 e). A block with more than N_MAX atoms
// (qs would fall below 2^20 / max|q|) adds its atoms straight to the grid with f32 atomics,
// as does an atom whose first point is outside the box (a step the list outran, replayed
// afterwards): the result never depends on how the atoms lie, only the speed does.
#import common
#import bspline

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
// Cells per block along each axis.
override BX: u32 = 4u;
override BY: u32 = 4u;
override BZ: u32 = 3u;
// max|q| w_max (see above).
override QW: f32 = 0.2;
// Most atoms a block may have and still sum in workgroup memory (see above).
override N_MAX: u32 = 2048u;
// Half the Verlet skin: atoms stay this close to their cells between rebuilds.
override HALF_SKIN: f32 = 0.5;
// The box's sides (the host's bound for a block of BX x BY x BZ cells, EX EY EZ <= TILE_WORDS):
// as constants, the flush's index arithmetic divides by constants.
override EX: u32 = 8u;
override EY: u32 = 8u;
override EZ: u32 = 8u;

// Threads per workgroup: 1,024 where the device allows (the driver's choice; 256 left each
// block's threads latency-bound on their chains of dependent loads: BENCHMARKS.md).
const TILE_WG: u32 = 256u;
// The box's fixed-point sums. The driver sets this from the device's limit
// (`forces::spread_tile::tile_words`: 11,904 words, 47 KiB, of NVIDIA's 48 KiB per workgroup
// through Vulkan); the default fits the portable 32 KiB (tests/gpu_vs_reference.rs).
const TILE_WORDS: u32 = 7936u;
// Runs of slots (x-rows of cells) per block: BY * BZ <= MAX_RUNS.
const MAX_RUNS: u32 = 64u;

var<workgroup> tile: array<atomic<i32>, TILE_WORDS>;
var<workgroup> run_start: array<u32, MAX_RUNS>;
// Exclusive prefix of the runs' lengths; run_off[n_runs] = the block's atoms.
var<workgroup> run_off: array<u32, 65>;
var<workgroup> n_block: u32;

// Row `row` (weight j along axis a at a * ORDER + j, charges at 3 * ORDER) of slot s. With
// SPL_LAYOUT `wslot` is PME's spline buffer stored by slot (coulomb_spread.wgsl's
// SLOT_SPLINES: weight rows at 2a * ORDER + j between the derivative rows, charges after the
// 6 * ORDER rows), which spares slot_gather_splines a second copy of the weights.
override SPL_LAYOUT: bool = false;

// FLY: the weights are computed here from the slot positions (bspline.wgsl), as
// slot_gather_splines would have (which then stores only the charges: 252 MB fewer bytes
// written per step at 2,097,152 ions); `wslot` is read for the charges only.
override FLY: bool = false;

// bspline.wgsl's storage hook, unused here.
fn put_spline(k: u32, v: f32) {}

fn wslot_at(row: u32, s: u32) -> f32 {
    if (SPL_LAYOUT) {
        let a = row / ORDER;
        let r = select((2u * a) * ORDER + row % ORDER, 6u * ORDER, a == 3u);
        return wslot[r * P.n_atoms + s];
    }
    return wslot[row * P.n_atoms + s];
}

// Slot of the block's atom a (binary search of the runs).
fn slot_of(a: u32, n_runs: u32) -> u32 {
    var l = 0u;
    var h = n_runs;
    while (h - l > 1u) {
        let m = (l + h) / 2u;
        if (run_off[m] <= a) {
            l = m;
        } else {
            h = m;
        }
    }
    return run_start[l] + a - run_off[l];
}

// First grid point of the atom at x along each axis, as the offset from the box's first point
// k0, taken (positions wrap through the box between rebuilds) as the periodic image nearest
// the box's middle point (the box spans `span` + 1 first points, fewer than the grid's).
fn rel_origin(x: vec3f, k0: vec3i, span: vec3u) -> vec3i {
    let dims = vec3i(i32(GX), i32(GY), i32(GZ));
    let c = vec3i(span / 2u);
    let d = vec3i(floor(x * spread_u.scale.xyz)) - k0 - c;
    let half = dims / 2;
    return ((d + half) % dims + dims) % dims - half + c;
}

fn grid_index(k: vec3i) -> u32 {
    let dims = vec3i(i32(GX), i32(GY), i32(GZ));
    let w = vec3u((k % dims + dims) % dims);
    return (w.x * GY + w.y) * GZ + w.z;
}

@compute @workgroup_size(TILE_WG)
fn spread_tile(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let bdim = vec3u(BX, BY, BZ);
    let nb = (P.cell_dims.xyz + bdim - vec3u(1u)) / bdim;
    let b = wid.y * nwg.x + wid.x;
    // The dispatch is sized on the host from the same cell grid; a group past the end has
    // nothing to do (uniform: every thread of the group leaves).
    if (b >= nb.x * nb.y * nb.z) {
        return;
    }
    let c0 = vec3u(b % nb.x, (b / nb.x) % nb.y, b / (nb.x * nb.y)) * bdim;
    let c1 = min(c0 + bdim, P.cell_dims.xyz);
    let ny = c1.y - c0.y;
    let n_runs = ny * (c1.z - c0.z);
    if (lid < n_runs) {
        let ca = cell_index(vec3u(c0.x, c0.y + lid % ny, c0.z + lid / ny), P);
        run_start[lid] = cell_start[ca];
        run_off[lid] = cell_start[ca + (c1.x - c0.x)] - cell_start[ca];
    }
    workgroupBarrier();
    if (lid == 0u) {
        var acc = 0u;
        for (var r = 0u; r < n_runs; r++) {
            let len = run_off[r];
            run_off[r] = acc;
            acc += len;
        }
        run_off[n_runs] = acc;
        n_block = acc;
    }
    let total = workgroupUniformLoad(&n_block);
    // The box: first grid points of positions within HALF_SKIN of the block's cells (where
    // the rebuild criterion keeps its atoms), then EX x EY x EZ points from there. Computed
    // alike by every thread (uniform). An atom outside it anyway (a step the list outran,
    // replayed afterwards) adds straight to the grid, as does every atom of a block with
    // more than N_MAX atoms.
    let lo = vec3i(floor((vec3f(c0) / P.cell_scale.xyz - HALF_SKIN) * spread_u.scale.xyz));
    let span = vec3u(EX, EY, EZ) - vec3u(ORDER);
    // Uniform: a block of more than N_MAX atoms sends them all down the global path.
    let use_tile = total <= N_MAX;
    if (use_tile) {
        for (var w = lid; w < EX * EY * EZ; w += TILE_WG) {
            atomicStore(&tile[w], 0);
        }
    }
    let qs = exp2(floor(log2(1073741824.0 / (f32(max(total, 1u)) * QW))));
    workgroupBarrier();
    // Thread = (atom, jy): ORDER x ORDER points (jx, jz) each, jz fastest. The lookups (slot,
    // first point, weights) are paid once per ORDER^2 additions; the atom's ORDER threads add
    // to rows EZ words apart (distinct banks for the sides planned here).
    for (var t = lid; t < total * ORDER; t += TILE_WG) {
        let s = slot_of(t / ORDER, n_runs);
        let jy = t % ORDER;
        let xs = slot_pos[s].xyz;
        let k = rel_origin(xs, lo, span);
        var wx: array<f32, 8>;
        var wz: array<f32, 8>;
        var wy = 0.0;
        if (FLY) {
            // The weights from the position, as slot_gather_splines computes them (the same
            // f32 operations: the same values).
            let u = xs * spread_u.scale.xyz;
            let f = u - floor(u);
            wx = bspline(f.x).w;
            wz = bspline(f.z).w;
            let sy = bspline(f.y);
            for (var j = 0u; j < ORDER; j++) {
                wy = select(wy, sy.w[j], j == jy);
            }
        } else {
            for (var j = 0u; j < ORDER; j++) {
                wx[j] = wslot_at(j, s);
                wz[j] = wslot_at(2u * ORDER + j, s);
            }
            wy = wslot_at(ORDER + jy, s);
        }
        let qy = wslot_at(3u * ORDER, s) * wy;
        if (use_tile && all(k >= vec3i(0)) && all(vec3u(k) <= span)) {
            let q = qs * qy;
            let base = (u32(k.x) * EY + u32(k.y) + jy) * EZ + u32(k.z);
            for (var jx = 0u; jx < ORDER; jx++) {
                let qx = q * wx[jx];
                for (var jz = 0u; jz < ORDER; jz++) {
                    atomicAdd(&tile[base + jx * EY * EZ + jz], i32(round(qx * wz[jz])));
                }
            }
        } else {
            for (var jz = 0u; jz < ORDER; jz++) {
                spread_global(k + lo, jy, jz, qy * wz[jz], wx);
            }
        }
    }
    workgroupBarrier();
    if (use_tile) {
        // The box's ~12,000 points per block are most of this kernel's instructions, so each
        // point's grid index wraps by compares (the box's sides are within the grid's and its
        // first point within one grid of the origin: one wrap per axis at most) instead of
        // grid_index's two modulos per axis, and the scale is a product (qs is a power of
        // two: 1 / qs is exact).
        let inv_qs = 1.0 / qs;
        // Thread = (z column, first row): the z wrap once per thread, the rows strided. (Only
        // where a workgroup covers a whole z column: EZ <= TILE_WG.)
        let per = TILE_WG / EZ;
        if (BY_COLUMN && per > 0u) {
            let k = lid % EZ;
            if (lid / EZ < per) {
                let gz = wrap_once(lo.z + i32(k), GZ);
                for (var row = lid / EZ; row < EX * EY; row += per) {
                    let v = atomicLoad(&tile[row * EZ + k]);
                    if (v != 0) {
                        let plane = row / EY;
                        let gx = wrap_once(lo.x + i32(plane), GX);
                        let gy = wrap_once(lo.y + i32(row - plane * EY), GY);
                        atomicAdd(&grid_f[(gx * GY + gy) * GZ + gz], f32(v) * inv_qs);
                    }
                }
            }
        } else {
            for (var w = lid; w < EX * EY * EZ; w += TILE_WG) {
                let v = atomicLoad(&tile[w]);
                if (v != 0) {
                    let row = w / EZ;
                    let plane = row / EY;
                    let p = lo + vec3i(vec3u(plane, row - plane * EY, w - row * EZ));
                    let g = vec3u(wrap_once(p.x, GX), wrap_once(p.y, GY), wrap_once(p.z, GZ));
                    atomicAdd(&grid_f[(g.x * GY + g.y) * GZ + g.z], f32(v) * inv_qs);
                }
            }
        }
    }
}

// The flush by z column where a workgroup covers one (`WGMD_TILE_FLUSH=0`: point by point,
// A/B runs; BENCHMARKS.md, Coulomb, fourteenth session, has both against the flush that used
// grid_index and a division per point).
override BY_COLUMN: bool = true;

// k mod n for -n <= k < 2n.
fn wrap_once(k: i32, n: u32) -> u32 {
    let m = i32(n);
    return u32(select(select(k, k - m, k >= m), k + m, k < 0));
}

// Straight to the grid, as spread_f32.wgsl: the ORDER x planes of lane (jy, jz) of an atom
// whose first grid point is k, with q = its charge times w_y(jy) w_z(jz), x weights wx.
fn spread_global(k: vec3i, jy: u32, jz: u32, q: f32, wx: array<f32, 8>) {
    for (var jx = 0u; jx < ORDER; jx++) {
        let g = grid_index(k + vec3i(vec3u(jx, jy, jz)));
        atomicAdd(&grid_f[g], q * wx[jx]);
    }
}
