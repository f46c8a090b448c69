// The Lennard-Jones pair function, shared by lj.wgsl (pure LJ fast path) and coulomb.wgsl
// (LJ + Coulomb in one neighbor loop). Rust twin: `forces::lj::lj_pair`.
//
// prm = (sigma^2, 4 epsilon, cutoff^2, energy shift). Returns (energy, force/r) at squared
// distance r2 < cutoff^2.
fn lj_pair(r2: f32, prm: vec4f) -> vec2f {
    let sr2 = prm.x / r2;
    let sr6 = sr2 * sr2 * sr2;
    let e = prm.y * (sr6 * sr6 - sr6) - prm.w;
    let f_over_r = prm.y * (12.0 * sr6 * sr6 - 6.0 * sr6) / r2;
    return vec2f(e, f_over_r);
}

// As lj_pair from inv_r2 = 1 / r^2 (callers that have it: no division).
fn lj_pair_inv(inv_r2: f32, prm: vec4f) -> vec2f {
    let sr2 = prm.x * inv_r2;
    let sr6 = sr2 * sr2 * sr2;
    let e = prm.y * (sr6 * sr6 - sr6) - prm.w;
    let f_over_r = prm.y * (12.0 * sr6 * sr6 - 6.0 * sr6) * inv_r2;
    return vec2f(e, f_over_r);
}
