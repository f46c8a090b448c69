// Shared declarations imported by every kernel file (`#import common`).
//
// Layouts: positions are vec4f (xyz in [0, L), w = atom type as bitcast u32); velocities are
// vec4f (xyz, w = 1/mass); forces are vec4f (xyz, w = this atom's share of the potential
// energy). Everything is in the config's units (see src/units.rs).

const WG: u32 = 64u;

// Mirrors `gpu::params::Params` in Rust (a test checks the sizes agree).
struct Params {
    box_len: vec4f,      // xyz = box edge lengths, w = 1.0 (opaque to compilers: integrate.wgsl)
    inv_box: vec4f,      // xyz = 1 / box edge lengths
    cell_scale: vec4f,   // xyz = cells per unit length along each axis, w = stencil reach (1, 2)
    cell_dims: vec4u,    // xyz = cells per axis, w = total cells
    n_atoms: u32,
    n_types: u32,
    nbr_capacity: u32,   // neighbor slots per atom
    n_blocks: u32,       // scan blocks of 256 cells
    list_cut2: f32,      // (cutoff + skin)^2
    half_skin2: f32,     // (skin / 2)^2: rebuild when any atom moved further
    max_force2: f32,     // |F|^2 above which the run is declared unstable
    dt: f32,
    ftm2v: f32,          // force/mass -> acceleration
    mvv2e: f32,          // mass * velocity^2 -> energy
    lang_c1: f32,        // Langevin exp(-gamma dt)
    lang_kt: f32,        // Langevin kT (energy units)
    seed_lo: u32,
    seed_hi: u32,
    n_partials: u32,     // workgroups of the first reduction stage
    check_every: u32,    // steps between rebuild opportunities (see neighbor.wgsl `decide`)
}

// Slots of the `status` buffer (array<atomic<u32>>); Rust mirrors them in `engine::status`.
const ST_STEP: u32 = 0u;          // completed MD steps
const ST_MAX_DISP2: u32 = 1u;     // max squared displacement since the last build (f32 bits)
const ST_FORCE_REBUILD: u32 = 2u; // host-requested rebuild at the next decision
const ST_REBUILDS: u32 = 3u;      // number of neighbor-list builds
const ST_MAX_NBRS: u32 = 4u;      // largest neighbor count seen (may exceed capacity)
const ST_BLOWUP: u32 = 5u;        // | 1: a non-finite or huge force appeared; | 2: too many ANI angular neighbors
const ST_BLOWUP_ATOM: u32 = 6u;   // smallest index of an atom with such a force
const ST_BLOWUP_STEP: u32 = 7u;   // step at which it was first seen
const ST_LAST_BUILD: u32 = 8u;    // step (ST_STEP value) of the last neighbor build
const ST_MISSED: u32 = 9u;        // non-zero once a step ran on a list that no longer covered it
const ST_LIFETIME: u32 = 10u;     // shortest list lifetime (steps, f32 bits) estimated at a rebuild
const ST_MAX_REACH2: u32 = 11u;   // this step's largest (displacement + coasting to the next opportunity)^2
const ST_PAIR_STALE: u32 = 12u;   // rebuild by pairs: a pair the list does not hold is inside the cutoff
const ST_PAIR_AHEAD: u32 = 13u;   // rebuild by pairs: such a pair may come inside by the next opportunity

// Linear thread index over a grid that may be folded into y (more than 65,535 groups).
fn linear_id(wid: vec3u, nwg: vec3u, lid: u32, wg_size: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * wg_size + lid;
}

fn min_image(d: vec3f, p: Params) -> vec3f {
    return d - p.box_len.xyz * round(d * p.inv_box.xyz);
}

fn wrap_pos(x: vec3f, p: Params) -> vec3f {
    let l = p.box_len.xyz;
    var y = x - l * floor(x * p.inv_box.xyz);
    // floor() of a rounded quotient can land one box off at the edges.
    y = select(y, y - l, y >= l);
    y = select(y, vec3f(0.0), y < vec3f(0.0));
    return y;
}

fn cell_coords(x: vec3f, p: Params) -> vec3u {
    let c = vec3u(max(x * p.cell_scale.xyz, vec3f(0.0)));
    return min(c, p.cell_dims.xyz - vec3u(1u));
}

fn cell_index(c: vec3u, p: Params) -> u32 {
    return (c.z * p.cell_dims.y + c.y) * p.cell_dims.x + c.x;
}

// The cells around a cell that can hold neighbors. Reach 1 (cells of edge >= list cutoff):
// up to 3 per axis; with fewer than 3 cells on an axis, -1 and +1 name the same cell (or the
// cell itself), so each distinct cell is visited once. Reach 2 (edge >= cutoff / 2): 5 per
// axis; the host picks it only when every axis has at least 5 cells.
fn stencil_reach2(p: Params) -> bool {
    return p.cell_scale.w > 1.5;
}

fn stencil_lo(p: Params) -> vec3i {
    if (stencil_reach2(p)) {
        return vec3i(-2);
    }
    return select(vec3i(0), vec3i(-1), p.cell_dims.xyz >= vec3u(3u));
}

fn stencil_span(p: Params) -> vec3u {
    if (stencil_reach2(p)) {
        return vec3u(5u);
    }
    let hi = select(vec3i(0), vec3i(1), p.cell_dims.xyz >= vec3u(2u));
    return vec3u(hi - stencil_lo(p) + vec3i(1));
}

// Index of stencil cell number q (0 <= q < span.x * span.y * span.z) around cell ci.
fn stencil_cell(ci: vec3i, q: u32, p: Params) -> u32 {
    let span = stencil_span(p);
    let off = stencil_lo(p) + vec3i(vec3u(q % span.x, (q / span.x) % span.y, q / (span.x * span.y)));
    let dims = vec3i(p.cell_dims.xyz);
    return cell_index(vec3u((ci + off + dims) % dims), p);
}

// Word of entry k of neighbor-list row r (the list is bound as array<vec4u>: word w is
// nbr_list[w >> 2][w & 3]). Column-major, k * n + r: the threads of a warp, one row each,
// read consecutive words. Packed (rows by slot, `neighbor::ListLayout::BySlotPacked`): each row's
// entries in groups of eight, group g of row r at words (g * n + r) * 8 .. + 8 — one 32-byte
// sector, which a build thread writes whole and a force thread reads as two vec4u, while a
// warp's rows still read one contiguous kilobyte per group.
fn list_word(k: u32, r: u32, packed: bool, p: Params) -> u32 {
    if (packed) {
        return ((k >> 3u) * p.n_atoms + r) * 8u + (k & 7u);
    }
    return k * p.n_atoms + r;
}

// True for inf and NaN (checked on the bits: WGSL lets compilers assume finite floats).
fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}
