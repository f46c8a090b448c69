// PME charge spread by blocks of cells, summed in workgroup memory first. Driver:
// `forces::spread_tile`; used where the charge grid is f32 (atomics), the neighbor list's rows
// are by cell slot and real space fills the GPU several times over, in a dispatch of its own
// after the real-space one.
//
// Why: the f32-atomic spread (spread_f32.wgsl) costs ~1 ms per step at 2,097,152 ions: 262 M
// atomic additions (ORDER^3 = 125 per atom) at ~1 per clock per SM, whether they go to the
// grid or to workgroup memory (BENCHMARKS.md, Coulomb, tenth session). Atoms of one block of
// cells (cell slot order: each x-row of cells is one contiguous run of slots) add to one small
// box of the grid. Here one workgroup takes one block and sums its box WITHOUT atomics: each
// thread owns one (x, y) column of the box (half of it along z) and adds, with plain loads and
// stores, the contributions of the atoms whose 5 x 5 footprint covers its column — found by
// binning the block's atoms by their first (x, y) point (a counting sort: one workgroup
// atomic per atom). Only the box goes to the grid, one f32 atomic per point: at 2,097,152
// ions a block of 3 x 3 x 4 cells has ~195 atoms, 24,000 additions, and a box of 9,600
// points (2.5x fewer global atomics, and those of a warp go to consecutive words).
//
// The sums are f32 like the grid's. A block with more than N_MAX atoms adds its atoms
// straight to the grid with f32 atomics, as does an atom whose first point is outside the box
// (a step the list outran, replayed afterwards): the result never depends on how the atoms
// lie, only the speed does.
#import common

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
// Most atoms a block may have and still sum in workgroup memory (<= MAX_ATOMS; tests lower it
// to send every block down the global path).
override N_MAX: u32 = 512u;
// Half the Verlet skin: atoms stay this close to their cells between rebuilds.
override HALF_SKIN: f32 = 0.5;
// The box's sides (the host's bound for a block of BX x BY x BZ cells; EX EY EZ <= TILE_WORDS,
// EX EY <= MAX_BINS, EZ <= 64): as constants, index arithmetic divides by constants.
override EX: u32 = 8u;
override EY: u32 = 8u;
override EZ: u32 = 8u;

// Threads per workgroup: 1,024 where the device allows (the driver's choice; 256 left each
// block's threads latency-bound on their chains of dependent loads: BENCHMARKS.md).
const TILE_WG: u32 = 256u;
// The box's f32 sums: what is left of NVIDIA's 48 KiB per workgroup (the driver sets it from
// the device's limit, `forces::spread_tile::tile_words`).
const TILE_WORDS: u32 = 9728u;
// Runs of slots (x-rows of cells) per block: BY * BZ <= MAX_RUNS.
const MAX_RUNS: u32 = 64u;
// (x, y) columns of the box, i.e. bins of the counting sort: EX * EY <= MAX_BINS.
const MAX_BINS: u32 = 640u;
// Atoms of a block that sum in workgroup memory (N_MAX <= MAX_ATOMS < 1024).
const MAX_ATOMS: u32 = 512u;

var<workgroup> tile: array<f32, TILE_WORDS>;
var<workgroup> bin_count: array<atomic<u32>, MAX_BINS>;
// Exclusive prefix of bin_count, then one entry past the last bin.
var<workgroup> bin_start: array<u32, 641>;
// The block's atoms sorted by bin: slot << 6 | first z point.
var<workgroup> sorted: array<u32, MAX_ATOMS>;
// Per atom of the block: its bin, its rank within the bin << 10, bit 31 if in the box.
var<workgroup> atom_bin: array<u32, MAX_ATOMS>;
var<workgroup> run_start: array<u32, MAX_RUNS>;
// Exclusive prefix of the runs' lengths; run_off[n_runs] = the block's atoms.
var<workgroup> run_off: array<u32, 65>;
var<workgroup> n_block: u32;

fn wslot_at(row: u32, s: u32) -> f32 {
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
    let n_bins = EX * EY;
    if (total <= N_MAX) {
        for (var w = lid; w < EX * EY * EZ; w += TILE_WG) {
            tile[w] = 0.0;
        }
        for (var c = lid; c < n_bins; c += TILE_WG) {
            atomicStore(&bin_count[c], 0u);
        }
        workgroupBarrier();
        // Count the atoms per bin (their first (x, y) point); an atom outside the box adds
        // straight to the grid here.
        for (var a = lid; a < total; a += TILE_WG) {
            let s = slot_of(a, n_runs);
            let k = rel_origin(slot_pos[s].xyz, lo, span);
            if (all(k >= vec3i(0)) && all(vec3u(k) <= span)) {
                let bin = u32(k.x) * EY + u32(k.y);
                atom_bin[a] = bin | (atomicAdd(&bin_count[bin], 1u) << 10u) | 0x80000000u;
            } else {
                atom_bin[a] = 0u;
                for (var t = 0u; t < ORDER * ORDER; t++) {
                    let jy = t / ORDER;
                    let jz = t % ORDER;
                    let q = wslot_at(3u * ORDER, s) * wslot_at(ORDER + jy, s)
                        * wslot_at(2u * ORDER + jz, s);
                    spread_global(k + lo, jy, jz, q, s);
                }
            }
        }
        workgroupBarrier();
        // Exclusive scan of the counts (Hillis-Steele over bin_start; n_bins <= MAX_BINS).
        for (var c = lid; c < n_bins; c += TILE_WG) {
            bin_start[c + 1u] = atomicLoad(&bin_count[c]);
        }
        if (lid == 0u) {
            bin_start[0] = 0u;
        }
        workgroupBarrier();
        for (var off = 1u; off <= n_bins; off *= 2u) {
            var add: array<u32, 4>;
            for (var r = 0u; r < 4u; r++) {
                let c = lid + r * TILE_WG + 1u;
                add[r] = 0u;
                if (c <= n_bins && c > off) {
                    add[r] = bin_start[c - off];
                }
            }
            workgroupBarrier();
            for (var r = 0u; r < 4u; r++) {
                let c = lid + r * TILE_WG + 1u;
                if (c <= n_bins && c > off) {
                    bin_start[c] += add[r];
                }
            }
            workgroupBarrier();
        }
        for (var a = lid; a < total; a += TILE_WG) {
            let b = atom_bin[a];
            if (b >= 0x80000000u) {
                let s = slot_of(a, n_runs);
                let kz = rel_origin(slot_pos[s].xyz, lo, span).z;
                sorted[bin_start[b & 1023u] + ((b >> 10u) & 1023u)] = (s << 6u) | u32(kz);
            }
        }
        workgroupBarrier();
        // Each thread owns column (x, y), half `h` of it along z: the atoms of the 5 x 5 bins
        // below and before it cover it. Plain loads and stores: no other thread writes there.
        let zh = (EZ + 1u) / 2u;
        for (var c = lid; c < 2u * n_bins; c += TILE_WG) {
            let col = c / 2u;
            let z0 = (c % 2u) * zh;
            let z1 = min(z0 + zh, EZ);
            let x = col / EY;
            let y = col % EY;
            let base = col * EZ;
            for (var jx = 0u; jx < ORDER; jx++) {
                if (x < jx) {
                    break;
                }
                for (var jy = 0u; jy < ORDER; jy++) {
                    if (y < jy) {
                        break;
                    }
                    let bin = (x - jx) * EY + (y - jy);
                    for (var i = bin_start[bin]; i < bin_start[bin + 1u]; i++) {
                        let p = sorted[i];
                        let kz = p & 63u;
                        if (kz + ORDER <= z0 || kz >= z1) {
                            continue;
                        }
                        let s = p >> 6u;
                        let w = wslot_at(3u * ORDER, s) * wslot_at(jx, s) * wslot_at(ORDER + jy, s);
                        for (var jz = 0u; jz < ORDER; jz++) {
                            let z = kz + jz;
                            if (z >= z0 && z < z1) {
                                tile[base + z] += w * wslot_at(2u * ORDER + jz, s);
                            }
                        }
                    }
                }
            }
        }
        workgroupBarrier();
        for (var w = lid; w < EX * EY * EZ; w += TILE_WG) {
            let v = tile[w];
            if (v != 0.0) {
                let p = vec3i(vec3u(w / (EY * EZ), (w / EZ) % EY, w % EZ));
                atomicAdd(&grid_f[grid_index(lo + p)], v);
            }
        }
    } else {
        for (var t = lid; t < total * ORDER; t += TILE_WG) {
            let s = slot_of(t / ORDER, n_runs);
            let jy = t % ORDER;
            let k = rel_origin(slot_pos[s].xyz, lo, span) + lo;
            let qy = wslot_at(3u * ORDER, s) * wslot_at(ORDER + jy, s);
            for (var jz = 0u; jz < ORDER; jz++) {
                spread_global(k, jy, jz, qy * wslot_at(2u * ORDER + jz, s), s);
            }
        }
    }
}

// Straight to the grid, as spread_f32.wgsl: the ORDER x planes of lane (jy, jz) of the atom
// in slot s, whose first grid point is k, with q = its charge times w_y(jy) w_z(jz).
fn spread_global(k: vec3i, jy: u32, jz: u32, q: f32, s: u32) {
    for (var jx = 0u; jx < ORDER; jx++) {
        let g = grid_index(k + vec3i(vec3u(jx, jy, jz)));
        atomicAdd(&grid_f[g], q * wslot_at(jx, s));
    }
}
