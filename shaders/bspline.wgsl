// Cardinal B-spline weights of PME's charge assignment, shared by pme.wgsl's pme_splines and
// coulomb_spread.wgsl's slot_gather_splines. The importer declares the constant ORDER and
// `put_spline(k, v)`, which stores word k of the spline buffer (pme.wgsl's `spl_at` layout).

struct Spline {
    w: array<f32, 8>,
    d: array<f32, 8>,
}

// Cardinal B-spline weights M_p(t + p - 1 - j) and derivatives for j < ORDER, t in [0, 1).
fn bspline(t: f32) -> Spline {
    var s: Spline;
    for (var j = 0u; j < 8u; j++) {
        s.w[j] = 0.0;
        s.d[j] = 0.0;
    }
    s.w[1] = t;
    s.w[0] = 1.0 - t;
    for (var j = 3u; j < ORDER; j++) {
        let div = 1.0 / f32(j - 1u);
        s.w[j - 1u] = div * t * s.w[j - 2u];
        for (var k = 1u; k < j - 1u; k++) {
            s.w[j - k - 1u] = div * ((t + f32(k)) * s.w[j - k - 2u] + (f32(j - k) - t) * s.w[j - k - 1u]);
        }
        s.w[0] = div * (1.0 - t) * s.w[0];
    }
    // Derivatives from the order p - 1 weights: M_p'(x) = M_{p-1}(x) - M_{p-1}(x - 1).
    s.d[0] = -s.w[0];
    for (var j = 1u; j < ORDER; j++) {
        s.d[j] = s.w[j - 1u] - s.w[j];
    }
    let div = 1.0 / f32(ORDER - 1u);
    s.w[ORDER - 1u] = div * t * s.w[ORDER - 2u];
    for (var k = 1u; k < ORDER - 1u; k++) {
        s.w[ORDER - k - 1u] = div * ((t + f32(k)) * s.w[ORDER - k - 2u]
            + (f32(ORDER - k) - t) * s.w[ORDER - k - 1u]);
    }
    s.w[0] = div * (1.0 - t) * s.w[0];
    return s;
}

// Weights and derivatives of atom i (of n) at grid coordinates u = K x / L along each axis,
// stored component-major (6·ORDER rows of n atoms: w_x, d_x, w_y, d_y, w_z, d_z) so that
// consecutive atoms' writes coalesce.
fn atom_splines(i: u32, u: vec3f, n: u32) {
    let f = u - floor(u);
    for (var a = 0u; a < 3u; a++) {
        let s = bspline(f[a]);
        for (var j = 0u; j < ORDER; j++) {
            put_spline(((2u * a) * ORDER + j) * n + i, s.w[j]);
            put_spline(((2u * a + 1u) * ORDER + j) * n + i, s.d[j]);
        }
    }
}
