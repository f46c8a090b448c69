// pme.wgsl's charge grid as f32 summed with float atomics (wgpu's SHADER_FLOAT32_ATOMIC:
// Vulkan's VK_EXT_shader_atomic_float, Metal; not WebGPU, whose browsers get pme_fixed.wgsl).
// Composed as "pme+pme_float". The atomics return nothing, so no thread waits on one (the
// fixed-point grid needs each low word's old value for the carry); the price is that the
// rounding depends on the order of the additions, so runs are not bit-reproducible.

#import spread_f32

// Kx * Ky * Kz points: atomics while spreading, plain values when the first FFT pass reads
// and clears them.
@group(0) @binding(12) var<storage, read_write> grid_f: array<atomic<f32>>;
@group(0) @binding(13) var<storage, read_write> grid_f_words: array<f32>;

fn charge_at(g: u32) -> f32 {
    return grid_f_words[g];
}

fn clear_charge(g: u32) {
    grid_f_words[g] = 0.0;
}

// One thread per (atom, jy, jz): ORDER x-planes each (`spread_f32.wgsl`). The same threads
// also run inside coulomb_spread.wgsl's dispatch, beside the real-space workgroups.
@compute @workgroup_size(64)
fn pme_spread(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let t = atom_id(wid, nwg, lid);
    let i = t / (ORDER * ORDER);
    if (i >= P.dims.w) {
        return;
    }
    spread_lane(t, charge[i], grid_origin(pos[i].xyz));
}
