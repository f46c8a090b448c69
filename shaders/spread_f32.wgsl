// One thread of the f32-atomic PME charge spread, shared by pme_float.wgsl's pme_spread and
// coulomb_spread.wgsl's fused real-space + spread dispatch. The importer declares the grid
// (`grid_f`, array<atomic<f32>> of Kx * Ky * Kz points), the constants ORDER, GX, GY, GZ
// and `spl_at(i, axis, d, j)` (pme_splines' weights).

// Thread t = (atom i, jy, jz) with jz fastest: adds q w_y(jy) w_z(jz) w_x(jx) for the ORDER
// x planes jx. With nothing to wait for (the atomics return nothing), the cost is the
// atomics' memory traffic; jz varying fastest across lanes makes an atom's ORDER lanes of
// one (jx, jy) row add to consecutive words (one or two 32-byte sectors instead of one each).
// `o` is the atom's first grid point along each axis (pme.wgsl's `grid_origin`).
fn spread_lane(t: u32, q: f32, o: vec3u) {
    if (q == 0.0) {
        return;
    }
    let i = t / (ORDER * ORDER);
    let jy = (t / ORDER) % ORDER;
    let jz = t % ORDER;
    let iy = (o.y + jy) % GY;
    let iz = (o.z + jz) % GZ;
    let qyz = q * spl_at(i, 1u, 0u, jy) * spl_at(i, 2u, 0u, jz);
    for (var jx = 0u; jx < ORDER; jx++) {
        let ix = (o.x + jx) % GX;
        atomicAdd(&grid_f[(ix * GY + iy) * GZ + iz], qyz * spl_at(i, 0u, 0u, jx));
    }
}
