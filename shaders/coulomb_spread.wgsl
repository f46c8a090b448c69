// Coulomb real space (coulomb.wgsl) and the PME charge spread (spread_f32.wgsl) in ONE
// dispatch, where the charge grid is summed with f32 atomics. Driver: `forces::coulomb_spread`.
//
// Why: the two are independent — real space reads slot positions and overwrites the forces,
// the spread reads positions and pme_splines' weights and adds to the charge grid — but are
// bound by different units: real space by arithmetic, the spread by the rate of the L2's
// atomics. wgpu separates consecutive dispatches that write buffers with barriers, so as two
// dispatches they run one after the other, each leaving the other's unit idle. Here the
// workgroups of both kinds share one grid: of every FUSE_SPREAD + 1 consecutive workgroups
// the first is a real-space workgroup and the others spread workgroups, so the GPU's
// workgroup scheduler keeps both kinds resident together throughout. Each workgroup's kind
// depends on its id alone (uniform), so the real-space barriers stay in uniform control flow.
#import coulomb
#import spread_f32
#import bspline
#import interp

// The first three members of `forces::pme::PmeUniform` (the buffer is PME's own uniform).
struct SpreadUniform {
    dims: vec4u,   // Kx, Ky, Kz, n_atoms
    scale: vec4f,  // K_a / L_a; w = 1 / n_atoms
    coef: vec4f,   // z = -k pi / (V alpha^2)
}

@group(0) @binding(16) var<uniform> spread_u: SpreadUniform;
@group(0) @binding(17) var<storage, read> spl: array<f32>;
@group(0) @binding(18) var<storage, read_write> grid_f: array<atomic<f32>>;

override ORDER: u32 = 5u;
override GX: u32 = 1u;
override GY: u32 = 1u;
override GZ: u32 = 1u;
// Spread workgroups per real-space workgroup (the host's ⌈spread groups / real groups⌉); 0:
// real space alone (spread_tile.wgsl spreads in a dispatch of its own).
override FUSE_SPREAD: u32 = 1u;

// Written by slot_gather_splines: the same buffers as coulomb.wgsl's `slot_pos` and the
// spread's `spl`, under names of their own so that the real-space and spread code keep
// reading them as read-only storage.
@group(0) @binding(19) var<storage, read_write> slot_pos_out: array<vec4f>;
@group(0) @binding(20) var<storage, read_write> spl_out: array<f32>;
// With TILE_SPREAD (spread_tile.wgsl spreads, by blocks of cells) and without SLOT_SPLINES:
// the spline weights of the atom in slot t at slot t (rows of n_atoms: weight j along axis a
// in row a * ORDER + j) and its charge in row 3 * ORDER, so that the spread's reads in slot
// order stay contiguous. (With SLOT_SPLINES the spread reads `spl`, already by slot.)
@group(0) @binding(21) var<storage, read_write> wslot_out: array<f32>;
override TILE_SPREAD: bool = false;

// PME's potential grid and its energy and virial (pme_fft_last's reduction, read with ENERGY
// only), for slot_interp.
@group(0) @binding(22) var<storage, read> phi: array<f32>;
@group(0) @binding(23) var<storage, read> result: array<f32>;
// slot_gather_splines stores the splines of the atom in slot t at t (and its charge in the row
// after them); false (`WGMD_SLOT_SPLINES=0`, A/B runs): those of atom t, as pme_splines.
override SLOT_SPLINES: bool = true;

// The tiled spread (FLY_SPREAD, spread_tile.wgsl's FLY) and slot_interp (INTERP_FLY) compute
// the spline weights from the slot positions: where both do, slot_gather_splines stores only
// the charges by slot (the row after the splines).
override FLY_SPREAD: bool = false;
override INTERP_FLY: bool = false;

fn put_spline(k: u32, v: f32) {
    spl_out[k] = v;
}

// neighbor.wgsl's slot_gather and pme.wgsl's pme_splines in one dispatch (rows by cell slot
// only): thread t copies the position of the atom in cell slot t and computes its spline
// weights, stored at slot t too. One dispatch fewer per step (each costs ~4-5 us of drain and
// fill on the H200, a few percent of a step at 32,768 ions). Everything that reads the
// splines then goes by slot (the interleaved spread, slot_interp): atoms of neighboring cells
// are neighbors in the grid whatever order the atoms are stored in. (By atom index, as
// pme_splines stores them, the interpolation's grid reads were local only while the atoms
// kept the lattice's order: 364 -> 1,337 us at 2,097,152 ions once shuffled, BENCHMARKS.md,
// Coulomb, twelfth session, call 2.)
@compute @workgroup_size(64)
fn slot_gather_splines(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid, WG);
    if (t >= P.n_atoms) {
        return;
    }
    let a = cell_atoms[t];
    let x = pos[a];
    slot_pos_out[t] = x;
    if (SLOT_SPLINES) {
        if (!(FLY_SPREAD && INTERP_FLY)) {
            atom_splines(t, x.xyz * spread_u.scale.xyz, P.n_atoms);
        }
        spl_out[6u * ORDER * P.n_atoms + t] = charge[a];
    } else {
        atom_splines(t, pos[t].xyz * spread_u.scale.xyz, P.n_atoms);
    }
    // The tiled spread's own copy of the weights by slot (it reads the splines above where
    // they are by slot).
    if (TILE_SPREAD && !SLOT_SPLINES) {
        let u = x.xyz * spread_u.scale.xyz;
        let f = u - floor(u);
        for (var d = 0u; d < 3u; d++) {
            let s = bspline(f[d]);
            for (var j = 0u; j < ORDER; j++) {
                wslot_out[(d * ORDER + j) * P.n_atoms + t] = s.w[j];
            }
        }
        wslot_out[3u * ORDER * P.n_atoms + t] = charge[a];
    }
}

// As pme.wgsl's spl_at (component-major rows of n_atoms).
fn spl_at(i: u32, a: u32, d: u32, j: u32) -> f32 {
    return spl[((2u * a + d) * ORDER + j) * P.n_atoms + i];
}

@compute @workgroup_size(64)
fn coulomb_spread(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
    let br = role(wid, nwg);
    if (br.y == 0u) {
        real_force(br.x, lid);
        return;
    }
    spread_group(br.x, br.y, lid);
}

// (b, r) of this workgroup: r = 0 real-space workgroup b, else spread workgroup r - 1 after it.
fn role(wid: vec3u, nwg: vec3u) -> vec2u {
    let g = wid.y * nwg.x + wid.x;
    return vec2u(g / (FUSE_SPREAD + 1u), g % (FUSE_SPREAD + 1u));
}

// The same with one thread per atom (TPA = 1): real space by coulomb.wgsl's `real_row`, without
// workgroup memory (see there).
@compute @workgroup_size(64)
fn coulomb_spread1(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
    let br = role(wid, nwg);
    if (br.y == 0u) {
        real_row(br.x * 64u + lid);
        return;
    }
    spread_group(br.x, br.y, lid);
}

// Spread workgroup r - 1 after real-space workgroup b: ORDER^2 threads per atom.
fn spread_group(b: u32, r: u32, lid: u32) {
    let t = (b * FUSE_SPREAD + r - 1u) * 64u + lid;
    let i = t / (ORDER * ORDER);
    if (i >= P.n_atoms) {
        return;
    }
    // With rows by slot the splines are slot_gather_splines' (index i is a cell slot), else
    // pme_splines' (by atom).
    if (SLOT_ROWS && SLOT_SPLINES) {
        spread_lane(t, slot_charge(i), grid_origin(slot_pos[i].xyz));
    } else {
        spread_lane(t, charge[i], grid_origin(pos[i].xyz));
    }
}

// The charge of the atom in cell slot s (the row after the splines, slot_gather_splines').
fn slot_charge(s: u32) -> f32 {
    return spl[6u * ORDER * P.n_atoms + s];
}

// pme.wgsl's grid_origin with this uniform.
fn grid_origin(x: vec3f) -> vec3u {
    let k = vec3i(floor(x * spread_u.scale.xyz));
    let dims = vec3i(i32(GX), i32(GY), i32(GZ));
    return vec3u(((k % dims) + dims) % dims);
}

// pme.wgsl's pme_interp for splines by cell slot (rows by slot; after PME's FFT passes): the
// ORDER lanes of slot s interpolate the force on atom cell_atoms[s] and ADD it, with the
// energy and virial shares under ENERGY, to force / atom_virial.
// INTERP_WG = per_group · ORDER threads: consecutive slots are neighbors in space, and their
// grid reads share L1 lines only within a workgroup (neighboring workgroups run on other SMs).
@compute @workgroup_size(INTERP_WG)
fn slot_interp(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let per_group = INTERP_WG / ORDER;
    let s = (wid.y * nwg.x + wid.x) * per_group + lid / ORDER;
    let live = lid / ORDER < per_group && s < P.n_atoms;
    var i = 0u;
    var q = 0.0;
    var x = vec3f(0.0);
    if (live) {
        i = cell_atoms[s];
        q = slot_charge(s);
        x = slot_pos[s].xyz;
    }
    interp_atom(lid, lid % ORDER, live, i, q, x, s, spread_u.scale, spread_u.coef.z);
}
