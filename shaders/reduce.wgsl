// Reductions of the per-atom potential energy, kinetic energy, virial and cutoff-jump energy
// into one record (pe, ke, virial, cutoff jump): a grid-stride first stage into per-workgroup partials, then one
// workgroup sums the partials. Tree sums in f32 keep the relative error near 1e-7·log2(N).
#import common

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> force: array<vec4f>;
@group(0) @binding(2) var<storage, read> vel: array<vec4f>;
@group(0) @binding(3) var<storage, read> atom_virial: array<vec2f>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> observables: array<vec4f>;

const RWG: u32 = 256u;
var<workgroup> acc: array<vec4f, 256>;

fn tree(lid: u32) {
    for (var off = RWG / 2u; off > 0u; off = off / 2u) {
        workgroupBarrier();
        if (lid < off) {
            acc[lid] = acc[lid] + acc[lid + off];
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn reduce_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    var s = vec4f(0.0);
    for (var i = wid.x * RWG + lid; i < P.n_atoms; i += P.n_partials * RWG) {
        let v = vel[i];
        let wv = atom_virial[i];
        s += vec4f(force[i].w, 0.5 * P.mvv2e * dot(v.xyz, v.xyz) / v.w, wv.x, wv.y);
    }
    acc[lid] = s;
    tree(lid);
    if (lid == 0u) {
        partials[wid.x] = acc[0];
    }
}

@compute @workgroup_size(256)
fn reduce_final(@builtin(local_invocation_index) lid: u32) {
    var s = vec4f(0.0);
    for (var i = lid; i < P.n_partials; i += RWG) {
        s += partials[i];
    }
    acc[lid] = s;
    tree(lid);
    if (lid == 0u) {
        observables[0] = acc[0];
    }
}
