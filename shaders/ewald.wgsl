// Ewald reciprocal space by direct summation over wave vectors: the exact reference the
// PME path is checked against (O(N * n_k): for validation-sized systems, not for speed).
//
// kvec[k] = (kx, ky, kz, coef) over half of k-space, coef = 2 * (2 pi k_e / V) exp(-k^2/4a^2)/k^2
// (the 2 counts -k), so E = sum_k coef |S(k)|^2 with S(k) = sum_j q_j exp(i k.r_j).
// Stage 1: one workgroup per wave vector sums S(k) over atoms (tree sum). Stage 2: one thread
// per atom adds its force, its share q_i sum_k coef Re(S* e^{ik.r_i}) of the energy (the shares
// sum exactly to E) and the matching share of the scalar virial.
#import common

struct CoulombParams {
    n_excl: u32,
    n_kvec: u32,
    rc2: f32,
    alpha: f32,
    coulomb_k: f32,
    krf: f32,
    crf: f32,
    dsf_e: f32,
    dsf_f: f32,
    e_rc: f32,
    rc: f32,
    ex2_c: f32,      // alpha^2 log2(e): exp(-(alpha r)^2) = exp2(-ex2_c r^2)
    t_c: f32,        // 0.38 alpha: erfc's t = 1 / (1 + t_c r)
    g_c: f32,        // 2 alpha / sqrt(pi)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> force: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> atom_virial: array<vec2f>;
@group(0) @binding(9) var<uniform> C: CoulombParams;
@group(0) @binding(10) var<storage, read> charge: array<f32>;
@group(0) @binding(13) var<storage, read> kvec: array<vec4f>;
@group(0) @binding(14) var<storage, read_write> sk: array<vec2f>;

var<workgroup> acc: array<vec2f, 64>;

@compute @workgroup_size(64)
fn ewald_structure(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
    let k = wid.y * nwg.x + wid.x;
    let kv = kvec[min(k, C.n_kvec - 1u)];
    var s = vec2f(0.0);
    for (var i = lid; i < P.n_atoms; i += WG) {
        let th = dot(kv.xyz, pos[i].xyz);
        s += charge[i] * vec2f(cos(th), sin(th));
    }
    acc[lid] = s;
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        workgroupBarrier();
        if (lid < off) {
            acc[lid] = acc[lid] + acc[lid + off];
        }
    }
    if (lid == 0u && k < C.n_kvec) {
        sk[k] = acc[0];
    }
}

@compute @workgroup_size(64)
fn ewald_force(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= P.n_atoms) {
        return;
    }
    let xi = pos[i].xyz;
    let qi = charge[i];
    let inv4a2 = 1.0 / (4.0 * C.alpha * C.alpha);
    var f = vec3f(0.0);
    var e = 0.0;
    var w = 0.0;
    for (var k = 0u; k < C.n_kvec; k++) {
        let kv = kvec[k];
        let s = sk[k];
        let th = dot(kv.xyz, xi);
        let c = cos(th);
        let sn = sin(th);
        let re = c * s.x + sn * s.y;
        f += (2.0 * kv.w * (sn * s.x - c * s.y)) * kv.xyz;
        e += kv.w * re;
        w += kv.w * (1.0 - 2.0 * dot(kv.xyz, kv.xyz) * inv4a2) * re;
    }
    let fi = force[i];
    force[i] = vec4f(fi.xyz + qi * f, fi.w + qi * e);
    let av = atom_virial[i];
    atom_virial[i] = vec2f(av.x + qi * w, av.y);
}
