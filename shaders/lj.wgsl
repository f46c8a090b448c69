// Lennard-Jones forces: the exemplar force term every new pair potential copies.
//
// Physics once: `lj_pair` returns (energy, force/r) from r^2 and the pair's parameters; the
// neighbor loop below is the only place that knows about lists. The Rust twin is
// `forces::lj::lj_pair` (float64) and tests hold the two together.
//
// Per-type-pair table lj_pairs[ti * n_types + tj] = (sigma^2, 4 epsilon, cutoff^2, energy shift).
// Each atom gathers over its full neighbor row (no atomics, deterministic) and keeps half
// of each pair energy and virial, so sums over atoms count each pair once.
#import common
#import lj_pair

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
@group(0) @binding(2) var<storage, read> nbr_list: array<u32>;
@group(0) @binding(3) var<storage, read> nbr_count: array<u32>;
@group(0) @binding(4) var<storage, read> lj_pairs: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> force: array<vec4f>;
// (virial share, cutoff-jump share): y sums U(r_c) of in-range pairs for a plainly truncated
// potential (0 when shifted), so the host can report the energy the dynamics conserves.
@group(0) @binding(6) var<storage, read_write> atom_virial: array<vec2f>;
@group(0) @binding(8) var<storage, read> lj_rc: array<f32>;
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>>;

// Threads per atom. With one thread per atom a small system (32,000 atoms = 500 workgroups)
// leaves most of a large GPU idle while each thread walks ~80 dependent neighbor loads; TPA
// threads then share one atom's row (strided) and add their partial sums in workgroup memory.
// Consecutive threads take consecutive atoms, so row reads stay coalesced.
override TPA: u32 = 1u;

var<workgroup> part_fe: array<vec4f, 64>;
var<workgroup> part_w: array<vec2f, 64>;

@compute @workgroup_size(64)
fn lj_force(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
    let per_group = WG / TPA;
    let slot = lid % per_group;
    let lane = lid / per_group;
    let i = (wid.y * nwg.x + wid.x) * per_group + slot;
    let live = i < P.n_atoms;
    var f = vec3f(0.0);
    var e = 0.0;
    var w = 0.0;
    var erc = 0.0;
    if (live) {
        let xi = pos[i];
        let row = bitcast<u32>(xi.w) * P.n_types;
        let n = min(nbr_count[i], P.nbr_capacity);
        for (var k = lane; k < n; k += TPA) {
            let j = nbr_list[k * P.n_atoms + i];
            let xj = pos[j];
            let d = min_image(xi.xyz - xj.xyz, P);
            let r2 = dot(d, d);
            let pair = row + bitcast<u32>(xj.w);
            let prm = lj_pairs[pair];
            if (r2 < prm.z) {
                erc += lj_rc[pair];
                let ef = lj_pair(r2, prm);
                f += ef.y * d;
                e += ef.x;
                w += ef.y * r2;
            }
        }
    }
    if (TPA > 1u) {
        part_fe[lid] = vec4f(f, e);
        part_w[lid] = vec2f(w, erc);
        workgroupBarrier();
        if (lane == 0u) {
            for (var t = 1u; t < TPA; t++) {
                let q = part_fe[slot + t * per_group];
                let r = part_w[slot + t * per_group];
                f += q.xyz;
                e += q.w;
                w += r.x;
                erc += r.y;
            }
        }
    }
    if (!live || lane != 0u) {
        return;
    }
    force[i] = vec4f(f, 0.5 * e);
    atom_virial[i] = vec2f(0.5 * w, 0.5 * erc);
    let f2 = dot(f, f);
    if (not_finite(f2) || not_finite(e) || f2 > P.max_force2) {
        if (atomicMax(&status[ST_BLOWUP], 1u) == 0u) {
            atomicStore(&status[ST_BLOWUP_STEP], atomicLoad(&status[ST_STEP]));
        }
        atomicMin(&status[ST_BLOWUP_ATOM], i);
    }
}
