// pme.wgsl's charge grid summed without atomics, from the cell list. Composed as
// "pme+pme_brick"; driver `forces::pme` (`PmeSpread::Bricks`, `BrickTable`).
//
// The grid is cut into bricks of at most BRICK^3 points; one workgroup owns one brick and
// writes each of its points exactly once with a plain store, so nothing has to be cleared
// between steps and every point's sum runs in one fixed order (deterministic). The atoms a
// brick needs are those whose ORDER^3 support reaches into it; the host lists per brick and
// axis the cells that can hold them (cells of the last neighbor build, widened by skin/2,
// which no atom has moved since that build — else the build would have been redone this step),
// so a brick reads a few runs of `cell_atoms` instead of every atom.
//
// Per round the workgroup takes up to ROUND candidate atoms, keeps those whose support meets
// the brick (B-spline weights, q folded into the x weights, in `rec`), then each thread adds
// them to the grid columns it owns in workgroup memory (`tile`, one (y, z) column per thread,
// so no two threads ever add to the same word). Why not atomics: at 2,097,152 ions the f32
// atomic spread made 262 M atomic additions per step, ~1.1 ms on an H200 (BENCHMARKS.md).

// Cell list of the last build (neighbor/cell_list.rs): the atoms of cell c are
// cell_atoms[cell_start[c] .. cell_start[c + 1]].
@group(0) @binding(13) var<storage, read_write> grid_b: array<f32>;
@group(0) @binding(15) var<storage, read> cell_start: array<u32>;
@group(0) @binding(16) var<storage, read> cell_atoms: array<u32>;
// [0] = bricks per axis (x, y, z, 0); [1] = cells per axis (x, y, z, 0); then per axis (x
// entries, then y, then z) and brick index: (first owned point, end, first cell, cells).
@group(0) @binding(17) var<storage, read> brick_tab: array<vec4u>;

fn charge_at(g: u32) -> f32 {
    return grid_b[g];
}

// Every point is rewritten by the next spread.
fn clear_charge(g: u32) {
}

const BRICK: u32 = 12u;            // owned points per axis, at most (forces::pme::BRICK)
const BRICK_WG: u32 = 256u;
const REC_WORDS: u32 = 1792u;
const MAX_ROWS: u32 = 256u;        // cell rows per brick, at most (the host checks)
// Floats per kept atom: q·w_x, w_y, w_z (ORDER each); its offsets go to rec_off.
override REC_STRIDE: u32 = 3u * ORDER;
override ROUND: u32 = min(BRICK_WG, REC_WORDS / REC_STRIDE);

// 16,132 bytes in all: within WebGPU's default 16 KiB, so browsers run this too.
var<workgroup> tile: array<f32, 1728>;       // BRICK^3, column (y, z) = y * bz + z fastest
var<workgroup> rec: array<f32, 1792>;        // REC_WORDS
var<workgroup> rec_off: array<u32, 256>;     // the three offsets, 10 bits each
var<workgroup> row_end: array<u32, 256>;     // MAX_ROWS: inclusive prefix of row lengths
var<workgroup> kept: atomic<u32>;

struct BrickAxis {
    g0: u32,
    size: u32,
    c0: u32,
    nc: u32,
}

fn brick_axis(a: u32, b: u32) -> BrickAxis {
    let nb = brick_tab[0];
    var base = 2u;
    if (a > 0u) {
        base += nb.x;
    }
    if (a > 1u) {
        base += nb.y;
    }
    let e = brick_tab[base + b];
    return BrickAxis(e.x, e.y - e.x, e.z, e.w);
}

// Slot runs of cell row r (r = iy + ny * iz over the brick's cell ranges): the cells
// c0x .. c0x + ncx - 1 along x (mod the cell count), one run or two where they wrap.
// Returns (start1, end1, start2, end2).
fn row_runs(r: u32, ax: BrickAxis, ay: BrickAxis, az: BrickAxis, cd: vec3u) -> vec4u {
    let cy = (ay.c0 + r % ay.nc) % cd.y;
    let cz = (az.c0 + r / ay.nc) % cd.z;
    let base = (cz * cd.y + cy) * cd.x;
    let x_end = ax.c0 + ax.nc;               // exclusive, may pass cd.x
    let e1 = min(x_end, cd.x);
    var o = vec4u(cell_start[base + ax.c0], cell_start[base + e1], 0u, 0u);
    if (x_end > cd.x) {
        o.z = cell_start[base];
        o.w = cell_start[base + x_end - cd.x];
    }
    return o;
}

@compute @workgroup_size(256)
fn pme_spread_bricks(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
    let nb = brick_tab[0].xyz;
    let b = wid.y * nwg.x + wid.x;
    if (b >= nb.x * nb.y * nb.z) {
        return;
    }
    let cd = brick_tab[1].xyz;
    let ax = brick_axis(0u, b % nb.x);
    let ay = brick_axis(1u, (b / nb.x) % nb.y);
    let az = brick_axis(2u, b / (nb.x * nb.y));
    let g0 = vec3u(ax.g0, ay.g0, az.g0);
    let own = vec3u(ax.size, ay.size, az.size);
    let cols = own.y * own.z;
    let points = own.x * cols;
    let kdim = P.dims.xyz;

    for (var e = lid; e < points; e += BRICK_WG) {
        tile[e] = 0.0;
    }
    // Candidates: the rows' slot runs, numbered through the prefix of their lengths.
    let rows = ay.nc * az.nc;
    for (var r = lid; r < rows; r += BRICK_WG) {
        let u = row_runs(r, ax, ay, az, cd);
        row_end[r] = (u.y - u.x) + (u.w - u.z);
    }
    workgroupBarrier();
    if (lid == 0u) {
        var s = 0u;
        for (var r = 0u; r < rows; r++) {
            s += row_end[r];
            row_end[r] = s;
        }
    }
    workgroupBarrier();
    let total = workgroupUniformLoad(&row_end[rows - 1u]);

    for (var c0 = 0u; c0 < total; c0 += ROUND) {
        if (lid == 0u) {
            atomicStore(&kept, 0u);
        }
        workgroupBarrier();
        let c = c0 + lid;
        if (lid < ROUND && c < total) {
            // Row of candidate c: the first with row_end > c.
            var lo = 0u;
            var hi = rows - 1u;
            while (lo < hi) {
                let mid = (lo + hi) / 2u;
                if (row_end[mid] > c) {
                    hi = mid;
                } else {
                    lo = mid + 1u;
                }
            }
            var k = c;
            if (lo > 0u) {
                k -= row_end[lo - 1u];
            }
            let u = row_runs(lo, ax, ay, az, cd);
            var s = u.x + k;
            if (k >= u.y - u.x) {
                s = u.z + k - (u.y - u.x);
            }
            let i = cell_atoms[s];
            let q = charge[i];
            let o = grid_origin(pos[i].xyz);
            // Offset of the atom's first support point from the brick's first point (mod K);
            // the support meets the brick if it starts inside or wraps into it.
            let off = (o + kdim - g0) % kdim;
            let meets = (off < own) | (off + vec3u(ORDER) > kdim);
            if (q != 0.0 && all(meets)) {
                let slot = atomicAdd(&kept, 1u);
                let at = slot * REC_STRIDE;
                let uu = pos[i].xyz * P.scale.xyz;
                let f = uu - floor(uu);
                let sx = bspline(f.x);
                let sy = bspline(f.y);
                let sz = bspline(f.z);
                for (var j = 0u; j < ORDER; j++) {
                    rec[at + j] = q * sx.w[j];
                    rec[at + ORDER + j] = sy.w[j];
                    rec[at + 2u * ORDER + j] = sz.w[j];
                }
                rec_off[slot] = off.x | (off.y << 10u) | (off.z << 20u);
            }
        }
        workgroupBarrier();
        let n_kept = atomicLoad(&kept);
        for (var col = lid; col < cols; col += BRICK_WG) {
            let cy = col / own.z;
            let cz = col % own.z;
            for (var a = 0u; a < n_kept; a++) {
                let at = a * REC_STRIDE;
                let bits = rec_off[a];
                let oy = (bits >> 10u) & 1023u;
                let oz = bits >> 20u;
                // Support index of this column along y and z (mod K), ORDER or more: outside.
                let jy = select(cy - oy, cy + kdim.y - oy, cy < oy);
                let jz = select(cz - oz, cz + kdim.z - oz, cz < oz);
                if (jy < ORDER && jz < ORDER) {
                    let w = rec[at + ORDER + jy] * rec[at + 2u * ORDER + jz];
                    let ox = bits & 1023u;
                    for (var jx = 0u; jx < ORDER; jx++) {
                        var x = ox + jx;
                        if (x >= kdim.x) {
                            x -= kdim.x;
                        }
                        if (x < own.x) {
                            tile[x * cols + col] += w * rec[at + jx];
                        }
                    }
                }
            }
        }
        workgroupBarrier();
    }
    // Every owned point, once; z runs are contiguous in the grid.
    for (var e = lid; e < points; e += BRICK_WG) {
        let x = e / cols;
        let y = (e / own.z) % own.y;
        let z = e % own.z;
        grid_b[((g0.x + x) * kdim.y + g0.y + y) * kdim.z + g0.z + z] = tile[e];
    }
}
