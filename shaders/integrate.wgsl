// Integrators. Velocity Verlet (NVE) and Langevin BAOAB (NVT, Leimkuhler & Matthews 2013)
// share the closing half kick `kick`; each first-half kernel also wraps positions and
// records the largest displacement since the last neighbor build (workgroup max, then one
// atomic) for the GPU-side rebuild decision.
#import common

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> pos: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> vel: array<vec4f>;
@group(0) @binding(3) var<storage, read> force: array<vec4f>;
@group(0) @binding(4) var<storage, read> ref_pos: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> status: array<atomic<u32>>;

var<workgroup> wg_max: atomic<u32>;
var<workgroup> wg_reach: atomic<u32>;

// Fraction of dt in the opening kick: 0.5 normally; 1.0 fuses the previous step's closing
// half kick (same forces) into this kernel, saving one dispatch per step inside a batch.
override KICK: f32 = 0.5;

// Philox4x32-10 (Salmon et al. 2011): counter-based, so the noise of atom i at step s is a
// pure function of (seed, s, i) — identical on every GPU, in any order, and in the CPU twin.
fn mulhilo(a: u32, b: u32) -> vec2u {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let lo_lo = a0 * b0;
    let lo_hi = a0 * b1;
    let hi_lo = a1 * b0;
    let mid = (lo_lo >> 16u) + (lo_hi & 0xffffu) + (hi_lo & 0xffffu);
    let hi = a1 * b1 + (lo_hi >> 16u) + (hi_lo >> 16u) + (mid >> 16u);
    return vec2u(hi, a * b);
}

fn philox(ctr: vec4u, key: vec2u) -> vec4u {
    var c = ctr;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4u(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2u(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// Uniform in (0, 1) from the top 24 bits.
fn to_unit(x: u32) -> f32 {
    return (f32(x >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// Three standard normals for (step, atom) by Box-Muller.
fn gaussian3(step: u32, atom: u32) -> vec3f {
    let r = philox(vec4u(atom, step, 0x57474d44u, 0u), vec2u(P.seed_lo, P.seed_hi));
    let tau = 6.283185307179586;
    let m0 = sqrt(-2.0 * log(to_unit(r.x)));
    let m1 = sqrt(-2.0 * log(to_unit(r.z)));
    return vec3f(m0 * cos(tau * to_unit(r.y)), m0 * sin(tau * to_unit(r.y)), m1 * cos(tau * to_unit(r.w)));
}

// Squared displacements are non-negative, so their f32 bits order like the values and
// atomicMax on u32 finds the largest. `reach` bounds where the atom will be at the next
// rebuild opportunity if it keeps its velocity and acceleration (see `decide` in
// neighbor.wgsl).
fn record_displacement(i: u32, lid: u32, x: vec3f, v: vec3f, a: vec3f, live: bool) {
    if (live) {
        let d = min_image(x - ref_pos[i].xyz, P);
        let d2 = dot(d, d);
        let t = f32(P.check_every - 1u) * P.dt;
        let reach = sqrt(d2) + t * length(v) + 0.5 * t * t * length(a);
        atomicMax(&wg_max, bitcast<u32>(d2));
        atomicMax(&wg_reach, bitcast<u32>(reach * reach));
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&status[ST_MAX_DISP2], atomicLoad(&wg_max));
        atomicMax(&status[ST_MAX_REACH2], atomicLoad(&wg_reach));
    }
}

// v += KICK·dt·a; x += dt·v.
@compute @workgroup_size(64)
fn vv_first(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (lid == 0u) {
        atomicStore(&wg_max, 0u);
        atomicStore(&wg_reach, 0u);
    }
    workgroupBarrier();
    let live = i < P.n_atoms;
    var x = vec3f(0.0);
    var v = vec3f(0.0);
    var a = vec3f(0.0);
    if (live) {
        let v4 = vel[i];
        a = (P.ftm2v * v4.w) * force[i].xyz;
        v = v4.xyz + (KICK * P.dt) * a;
        let p = pos[i];
        x = wrap_pos(p.xyz + P.dt * v, P);
        vel[i] = vec4f(v, v4.w);
        pos[i] = vec4f(x, p.w);
    }
    record_displacement(i, lid, x, v, a, live);
}

// B A O A: half kick, half drift, Ornstein-Uhlenbeck velocity update, half drift.
@compute @workgroup_size(64)
fn baoab_first(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (lid == 0u) {
        atomicStore(&wg_max, 0u);
        atomicStore(&wg_reach, 0u);
    }
    workgroupBarrier();
    let live = i < P.n_atoms;
    var x = vec3f(0.0);
    var v = vec3f(0.0);
    var a = vec3f(0.0);
    if (live) {
        let step = atomicLoad(&status[ST_STEP]);
        let v4 = vel[i];
        a = (P.ftm2v * v4.w) * force[i].xyz;
        v = v4.xyz + (KICK * P.dt) * a;
        let p = pos[i];
        let y = p.xyz + (0.5 * P.dt) * v;
        let sigma = sqrt((1.0 - P.lang_c1 * P.lang_c1) * P.lang_kt * v4.w * P.ftm2v);
        v = P.lang_c1 * v + sigma * gaussian3(step, i);
        x = wrap_pos(y + (0.5 * P.dt) * v, P);
        vel[i] = vec4f(v, v4.w);
        pos[i] = vec4f(x, p.w);
    }
    record_displacement(i, lid, x, v, a, live);
}

// v += dt/2 a (closing half kick of both integrators).
@compute @workgroup_size(64)
fn kick(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= P.n_atoms) {
        return;
    }
    let v4 = vel[i];
    vel[i] = vec4f(v4.xyz + (0.5 * P.dt * P.ftm2v * v4.w) * force[i].xyz, v4.w);
}
