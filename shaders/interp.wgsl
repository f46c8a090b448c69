// One lane of the PME force interpolation, shared by pme.wgsl's pme_interp and
// coulomb_spread.wgsl's real space + interpolation dispatch. The importer declares `pos`
// (positions by atom), the potential grid `phi` (Kx * Ky * Kz points), the constants ORDER,
// GX, GY, GZ, `grid_origin(x)` (first grid point along each axis) and `spl_at(i, axis, d, j)`
// (pme_splines' weights and derivatives).

// Lane jz of an atom's interpolation: the ORDER^2 points of its z column. The lanes of a
// warp then read runs of ORDER consecutive words of `phi`; lanes by x plane (one word each,
// a whole plane apart) made the interpolation 10 % slower at 2,097,152 ions (BENCHMARKS.md,
// Coulomb, eighth session, call 2; code in c81777e).
fn interp_column(i: u32, jz: u32) -> vec4f {
    let o = grid_origin(pos[i].xyz);
    let z = o.z + jz;
    let iz = select(z, z - GZ, z >= GZ);
    let wz = spl_at(i, 2u, 0u, jz);
    let dz = spl_at(i, 2u, 1u, jz);
    // The y weights and indices once, not once per jx (constant trip counts: registers).
    var wy: array<f32, 8>;
    var dy: array<f32, 8>;
    var iy: array<u32, 8>;
    for (var jy = 0u; jy < ORDER; jy++) {
        wy[jy] = spl_at(i, 1u, 0u, jy);
        dy[jy] = spl_at(i, 1u, 1u, jy);
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
            p0 += wy[jy] * v;
            py += dy[jy] * v;
        }
        let wx = spl_at(i, 0u, 0u, jx);
        let dx = spl_at(i, 0u, 1u, jx);
        acc += vec4f(wx * wz * p0, dx * wz * p0, wx * wz * py, wx * dz * p0);
    }
    return acc;
}
