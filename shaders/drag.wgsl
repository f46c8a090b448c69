// The viewer's mouse drag: a harmonic spring F = k · minimum_image(target − x) on one atom,
// added to its force after the force field has written it (so it acts in every step of a
// batch). Its energy is not counted in the potential energy: it is an external hand.
#import common

struct Drag {
    target_k: vec4f, // xyz = target point, w = spring constant (energy / length²)
    atom: vec4u,     // x = index of the dragged atom
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> D: Drag;
@group(0) @binding(2) var<storage, read> pos: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> force: array<vec4f>;

@compute @workgroup_size(1)
fn drag_force() {
    let i = D.atom.x;
    if (i >= P.n_atoms) {
        return;
    }
    let d = min_image(D.target_k.xyz - pos[i].xyz, P);
    let f = force[i];
    force[i] = vec4f(f.xyz + D.target_k.w * d, f.w);
}
