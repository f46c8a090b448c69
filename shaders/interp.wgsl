// One lane of the PME force interpolation, shared by pme.wgsl's pme_interp (atoms by index)
// and coulomb_spread.wgsl's slot_interp (atoms by cell slot). The importer declares the
// potential grid `phi` (Kx * Ky * Kz points), the constants ORDER, GX, GY, GZ,
// `grid_origin(x)` (first grid point along each axis), `spl_at(k, axis, d, j)` (the spline
// weights and derivatives stored at index k), INTERP_FLY (bool: compute them instead),
// ENERGY, and the buffers `force`, `atom_virial` and `result` (PME's energy and virial,
// pme_fft_last's reduction).

// Lane jz of an atom's interpolation: the ORDER^2 points of its z column. The lanes of a
// warp then read runs of ORDER consecutive words of `phi`; lanes by x plane (one word each,
// a whole plane apart) made the interpolation 10 % slower at 2,097,152 ions (BENCHMARKS.md,
// Coulomb, eighth session, call 2; code in c81777e).
// x is the atom's position, k the index of its splines, scale K_a / L_a. With INTERP_FLY
// (a constant the importer declares) the splines are computed here from x, as
// slot_gather_splines computes them (the same f32 operations: the same values), instead of
// read from the spline buffer.
fn interp_column(x: vec3f, k: u32, jz: u32, scale: vec3f) -> vec4f {
    let o = grid_origin(x);
    let z = o.z + jz;
    let iz = select(z, z - GZ, z >= GZ);
    var wz = 0.0;
    var dz = 0.0;
    var sx: Spline;
    // The y weights and indices once, not once per jx (constant trip counts: registers).
    var sy: Spline;
    var iy: array<u32, 8>;
    if (INTERP_FLY) {
        let u = x * scale;
        let f = u - floor(u);
        sx = bspline(f.x);
        sy = bspline(f.y);
        let sz = bspline(f.z);
        for (var j = 0u; j < ORDER; j++) {
            wz = select(wz, sz.w[j], j == jz);
            dz = select(dz, sz.d[j], j == jz);
        }
    } else {
        wz = spl_at(k, 2u, 0u, jz);
        dz = spl_at(k, 2u, 1u, jz);
        for (var j = 0u; j < ORDER; j++) {
            sx.w[j] = spl_at(k, 0u, 0u, j);
            sx.d[j] = spl_at(k, 0u, 1u, j);
            sy.w[j] = spl_at(k, 1u, 0u, j);
            sy.d[j] = spl_at(k, 1u, 1u, j);
        }
    }
    for (var jy = 0u; jy < ORDER; jy++) {
        let y = o.y + jy;
        iy[jy] = select(y, y - GY, y >= GY);
    }
    var acc = vec4f(0.0);
    for (var jx = 0u; jx < ORDER; jx++) {
        let x = o.x + jx;
        let ix = select(x, x - GX, x >= GX);
        var p0 = 0.0;
        var py = 0.0;
        for (var jy = 0u; jy < ORDER; jy++) {
            let v = phi[(ix * GY + iy[jy]) * GZ + iz];
            p0 += sy.w[jy] * v;
            py += sy.d[jy] * v;
        }
        let wx = sx.w[jx];
        let dx = sx.d[jx];
        acc += vec4f(wx * wz * p0, dx * wz * p0, wx * wz * py, wx * dz * p0);
    }
    return acc;
}

// ORDER threads per atom (one per z column, order^2 reads of `phi` each) so that the reads of
// many atoms are in flight at once; the partial sums meet in workgroup memory.
// INTERP_WG: threads per workgroup (pme_interp: 64; slot_interp: more, see there).
override INTERP_WG: u32 = 64u;
var<workgroup> interp_part: array<vec4f, INTERP_WG>;

// Thread lid (lane `lane` of its atom) of an INTERP_WG-thread interpolation workgroup: atom i (`live`)
// with charge q at x, splines at index k. The atom's lane 0 ADDS its force and, with ENERGY,
// its energy share (potential and background) and virial share W_recip / N to force /
// atom_virial. `scale` is PME's (K_a / L_a, 1 / N), coef_z = -k pi / (V alpha^2). Call in
// uniform control flow (barrier).
fn interp_atom(lid: u32, lane: u32, live: bool, i: u32, q: f32, x: vec3f, k: u32, scale: vec4f,
               coef_z: f32) {
    // (potential, dphi/du_x, dphi/du_y, dphi/du_z) of this lane's share.
    var acc = vec4f(0.0);
    if (q != 0.0) {
        acc = interp_column(x, k, lane, scale.xyz);
    }
    interp_part[lid] = acc;
    workgroupBarrier();
    if (live && lane == 0u) {
        var sum = acc;
        for (var j = 1u; j < ORDER; j++) {
            sum += interp_part[lid + j];
        }
        let f = -q * sum.yzw * scale.xyz;
        if (!ENERGY) {
            force[i] += vec4f(f, 0.0);
            return;
        }
        let e = 0.5 * q * (sum.x + coef_z * result[7]);
        force[i] += vec4f(f, e);
        atom_virial[i].x += (result[1] + result[2] + result[3]) * scale.w;
    }
}
