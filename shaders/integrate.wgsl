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
// Mixed precision only: the low words of positions and velocities (xyz), so that pos + pos_lo
// and vel + vel_lo carry ~48 bits. Forces and everything else read the f32 high words.
@group(0) @binding(6) var<storage, read_write> pos_lo: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> vel_lo: array<vec4f>;

// Rebuild by pairs (neighbor.wgsl `pair_check`): atoms that may have moved more than skin/2
// are listed in pair_list[4 ..] (at most FAST_CAP); pair_list[3] counts them all and
// pair_list[0] those listed — the check's workgroup count, an indirect dispatch argument
// (pair_list[1], [2] = 1). One buffer for all of it keeps these kernels within WebGPU's
// default 8 storage buffers.
@group(0) @binding(8) var<storage, read_write> pair_list: array<atomic<u32>>;
override PAIRS: bool = false;
override FAST_CAP: u32 = 4096u;

var<workgroup> wg_max: atomic<u32>;
var<workgroup> wg_reach: atomic<u32>;

// Fraction of dt in the opening kick: 0.5 normally; 1.0 fuses the previous step's closing
// half kick (same forces) into this kernel, saving one dispatch per step inside a batch.
override KICK: f32 = 0.5;

// Mixed precision (OpenMM's "mixed": f32 forces, integration in higher precision). WGSL has
// no portable f64, so positions and velocities are double-f32 sums hi + lo, updated with
// Knuth's error-free TwoSum: a step's tiny increment is no longer rounded away against a
// large coordinate, which is what makes f32 trajectories drift over long runs.
override MIXED: bool = false;

struct Ds {
    hi: vec3f,
    lo: vec3f,
}

// The error-free transformations below are exact in IEEE arithmetic, but WGSL has no
// `precise`: shader compilers (Mesa's NIR, measured; vendor drivers likewise) may apply
// real-number algebra to plain float ops and fold (a + b) - a to b, which zeroes every
// error term. Each sum that must stay rounded is multiplied by ONE — 1.0 from a uniform
// (P.box_len.w), so no compiler can see through it; multiplying by 1 is exact.
fn opaque(x: vec3f) -> vec3f {
    return x * P.box_len.w;
}

// (hi, lo) + b, renormalised so |lo| <= ulp(hi)/2 (Knuth's TwoSum, then FastTwoSum).
fn ds_add(x: Ds, b: vec3f) -> Ds {
    let s = opaque(x.hi + b);
    let bb = opaque(s - x.hi);
    let e = (x.hi - opaque(s - bb)) + (b - bb);
    let lo = x.lo + e;
    let h = opaque(s + lo);
    return Ds(h, lo - opaque(h - s));
}

// c·(hi, lo): the product's rounding error from fma (exact where fma is fused).
fn ds_scale(x: Ds, c: f32) -> Ds {
    let p = opaque(c * x.hi);
    let e = fma(vec3f(c), x.hi, -p);
    let lo = c * x.lo + e;
    let h = opaque(p + lo);
    return Ds(h, lo - opaque(h - p));
}

// Periodic wrap of a double-f32 position into [0, L): shifting by exactly ±L through ds_add
// keeps the low word meaningful (wrap_pos's floor() would round it away).
fn ds_wrap(x: Ds) -> Ds {
    let l = P.box_len.xyz;
    let zero = vec3f(0.0);
    var y = ds_add(x, select(zero, -l, x.hi >= l) + select(zero, l, x.hi < zero));
    // A position a hair below 0 (hi < 0 after wrapping down) goes up once more.
    y = ds_add(y, select(zero, l, y.hi < zero));
    // A position a hair below L rounds to hi == L with lo < 0: hold it as the largest f32
    // below L plus the remainder (exact to ~1e-14 L), so hi stays inside [0, L) without
    // dropping lo. hi == L with lo >= 0 is L itself, i.e. 0.
    let at_l = y.hi >= l;
    let below = bitcast<vec3f>(bitcast<vec3u>(l) - vec3u(1u));
    let rem = opaque(l - below) + (opaque(y.hi - l) + y.lo);
    let is_l = at_l & (rem >= opaque(l - below));
    y.hi = select(select(y.hi, below, at_l), zero, is_l);
    y.lo = select(select(y.lo, rem, at_l), zero, is_l);
    // Anything still outside moved more than a box in one step; clamp like wrap_pos.
    let out = y.hi < zero;
    y.hi = select(y.hi, zero, out);
    y.lo = select(y.lo, zero, out);
    return y;
}

fn load_x(i: u32, hi: vec3f) -> Ds {
    if (MIXED) {
        return Ds(hi, pos_lo[i].xyz);
    }
    return Ds(hi, vec3f(0.0));
}

fn load_v(i: u32, hi: vec3f) -> Ds {
    if (MIXED) {
        return Ds(hi, vel_lo[i].xyz);
    }
    return Ds(hi, vec3f(0.0));
}

fn store_lo(i: u32, x: Ds, v: Ds) {
    if (MIXED) {
        pos_lo[i] = vec4f(x.lo, 0.0);
        vel_lo[i] = vec4f(v.lo, 0.0);
    }
}

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
        if (PAIRS && reach * reach > P.half_skin2) {
            let k = atomicAdd(&pair_list[3], 1u);
            if (k < FAST_CAP) {
                atomicStore(&pair_list[4u + k], i);
                atomicAdd(&pair_list[0], 1u);
            }
        }
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
        let p = pos[i];
        if (MIXED) {
            let vd = ds_add(load_v(i, v4.xyz), (KICK * P.dt) * a);
            let xd = ds_wrap(ds_add(load_x(i, p.xyz), P.dt * vd.hi));
            store_lo(i, xd, vd);
            v = vd.hi;
            x = xd.hi;
        } else {
            v = v4.xyz + (KICK * P.dt) * a;
            x = wrap_pos(p.xyz + P.dt * v, P);
        }
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
        let p = pos[i];
        let sigma = sqrt((1.0 - P.lang_c1 * P.lang_c1) * P.lang_kt * v4.w * P.ftm2v);
        if (MIXED) {
            var vd = ds_add(load_v(i, v4.xyz), (KICK * P.dt) * a);
            let yd = ds_add(load_x(i, p.xyz), (0.5 * P.dt) * vd.hi);
            vd = ds_add(ds_scale(vd, P.lang_c1), sigma * gaussian3(step, i));
            let xd = ds_wrap(ds_add(yd, (0.5 * P.dt) * vd.hi));
            store_lo(i, xd, vd);
            v = vd.hi;
            x = xd.hi;
        } else {
            v = v4.xyz + (KICK * P.dt) * a;
            let y = p.xyz + (0.5 * P.dt) * v;
            v = P.lang_c1 * v + sigma * gaussian3(step, i);
            x = wrap_pos(y + (0.5 * P.dt) * v, P);
        }
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
    let dv = (0.5 * P.dt * P.ftm2v * v4.w) * force[i].xyz;
    if (MIXED) {
        let vd = ds_add(load_v(i, v4.xyz), dv);
        vel_lo[i] = vec4f(vd.lo, 0.0);
        vel[i] = vec4f(vd.hi, v4.w);
    } else {
        vel[i] = vec4f(v4.xyz + dv, v4.w);
    }
}
