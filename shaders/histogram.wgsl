// Histograms for the viewer's structure and speed plots: pair distances (the RDF's raw counts)
// and atom speeds. Counts are integer atomics, first into a workgroup-local histogram and then
// one atomicAdd per non-empty bin into the global one, so contention stays inside a workgroup.
//
// Layouts: `pos` and `vel` are the engine's buffers (vec4f: xyz, w = type bits / inverse mass).
// RDF centers are atoms 0..n_centers (the viewer caps them to bound the work per sample);
// every other atom is a partner, with minimum-image distances in an orthorhombic box.

const MAX_BINS: u32 = 256u;
const HWG: u32 = 64u;

// Mirrors `observe::histogram::HistParams` in Rust.
struct HistParams {
    box_len: vec4f,
    inv_box: vec4f,
    n_atoms: u32,
    n_centers: u32,
    n_bins: u32,     // bins of each histogram, at most MAX_BINS
    _pad0: u32,
    r_max: f32,      // RDF range [0, r_max)
    v_max: f32,      // speed range [0, v_max)
    _pad1: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> H: HistParams;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
@group(0) @binding(2) var<storage, read> vel: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> rdf_hist: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> speed_hist: array<atomic<u32>>;

var<workgroup> local_hist: array<atomic<u32>, MAX_BINS>;

fn bin_of(x: f32, x_max: f32) -> u32 {
    return min(u32(x / x_max * f32(H.n_bins)), H.n_bins - 1u);
}

fn clear_local(lid: u32) {
    for (var b = lid; b < MAX_BINS; b += HWG) {
        atomicStore(&local_hist[b], 0u);
    }
    workgroupBarrier();
}

fn flush_local(lid: u32, to_rdf: bool) {
    workgroupBarrier();
    for (var b = lid; b < H.n_bins; b += HWG) {
        let c = atomicLoad(&local_hist[b]);
        if (c > 0u) {
            if (to_rdf) {
                atomicAdd(&rdf_hist[b], c);
            } else {
                atomicAdd(&speed_hist[b], c);
            }
        }
    }
}

// One workgroup zeroes both histograms (they are outputs: never trust their old contents).
@compute @workgroup_size(256)
fn hist_clear(@builtin(local_invocation_index) lid: u32) {
    if (lid < H.n_bins) {
        atomicStore(&rdf_hist[lid], 0u);
        atomicStore(&speed_hist[lid], 0u);
    }
}

// One thread per center atom, looping over every partner.
@compute @workgroup_size(64)
fn rdf_count(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    clear_local(lid);
    let i = wid.x * HWG + lid;
    if (i < H.n_centers) {
        let xi = pos[i].xyz;
        let r_max2 = H.r_max * H.r_max;
        for (var j = 0u; j < H.n_atoms; j++) {
            var d = pos[j].xyz - xi;
            d = d - H.box_len.xyz * round(d * H.inv_box.xyz);
            let r2 = dot(d, d);
            if (j != i && r2 < r_max2) {
                atomicAdd(&local_hist[bin_of(sqrt(r2), H.r_max)], 1u);
            }
        }
    }
    flush_local(lid, true);
}

// One thread per atom.
@compute @workgroup_size(64)
fn speed_count(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    clear_local(lid);
    let i = wid.x * HWG + lid;
    if (i < H.n_atoms) {
        let s = length(vel[i].xyz);
        if (s < H.v_max) {
            atomicAdd(&local_hist[bin_of(s, H.v_max)], 1u);
        }
    }
    flush_local(lid, false);
}
