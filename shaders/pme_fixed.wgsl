// pme.wgsl's charge grid as 64-bit fixed point built from u32 atomics: core WebGPU, so it
// runs everywhere (browsers, adapters without float atomics). Composed as "pme+pme_fixed".
// The sum is exact modulo 2^64 whatever the order of the additions: deterministic.

// Low, high word per point, Kx * Ky * Kz points: atomics while spreading, plain words when
// the first FFT pass reads and clears it.
@group(0) @binding(12) var<storage, read_write> grid_fx: array<atomic<u32>>;
@group(0) @binding(13) var<storage, read_write> grid_fx_words: array<vec2u>;

// 2^-32: the low word's weight.
const FX_LO: f32 = 2.3283064365386963e-10;

// Adds c to the 64-bit fixed-point value (32 fractional bits) at grid point g. |c| is
// converted and then negated in integer arithmetic: c - floor(c) for a small negative c
// rounds to f32's spacing near 1 (6e-8), which cost the grid ~3x the error of an f32 sum.
fn add_fixed(g: u32, c: f32) {
    let a = abs(c);
    let fl = floor(a);
    var lo = u32((a - fl) * 4294967296.0);
    var hi = u32(fl);
    if (c < 0.0) {
        lo = ~lo + 1u;
        hi = ~hi + select(0u, 1u, lo == 0u);
    }
    let old = atomicAdd(&grid_fx[2u * g], lo);
    if (old > 0xffffffffu - lo) {
        hi += 1u;
    }
    if (hi != 0u) {
        atomicAdd(&grid_fx[2u * g + 1u], hi);
    }
}

// Value of a 64-bit fixed-point word pair. Negative values are negated in integer arithmetic
// first: hi + lo 2^-32 with hi = -1 would cancel and lose the digits of small values.
fn fixed_to_f32(w: vec2u) -> f32 {
    if ((w.y & 0x80000000u) == 0u) {
        return f32(w.y) + f32(w.x) * FX_LO;
    }
    let lo = ~w.x + 1u;
    let hi = ~w.y + select(0u, 1u, lo == 0u);
    return -(f32(hi) + f32(lo) * FX_LO);
}

fn charge_at(g: u32) -> f32 {
    return fixed_to_f32(grid_fx_words[g]);
}

fn clear_charge(g: u32) {
    grid_fx_words[g] = vec2u(0u);
}

// One thread per (atom, jx, jy): ORDER z-points each. The low-word atomic's result decides
// the carry, so each addition waits for a round trip to memory; ORDER^2 threads per atom give
// the GPU enough independent work to hide that latency.
@compute @workgroup_size(64)
fn pme_spread(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let t = atom_id(wid, nwg, lid);
    let i = t / (ORDER * ORDER);
    if (i >= P.dims.w) {
        return;
    }
    let q = charge[i];
    if (q == 0.0) {
        return;
    }
    let jx = (t / ORDER) % ORDER;
    let jy = t % ORDER;
    let x = pos[i].xyz;
    let o = grid_origin(x);
    let ix = (o.x + jx) % GX;
    let iy = (o.y + jy) % GY;
    let row = (ix * GY + iy) * GZ;
    let qxy = q * spl_at(i, 0u, 0u, jx) * spl_at(i, 1u, 0u, jy);
    for (var jz = 0u; jz < ORDER; jz++) {
        add_fixed(row + (o.z + jz) % GZ, qxy * spl_at(i, 2u, 0u, jz));
    }
}
