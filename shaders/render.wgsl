// The viewer's atom renderer, drawn inside egui's render pass straight from the simulation's
// position buffer (no copy to the host). Atoms are instanced sphere impostors: a camera-facing
// quad per atom whose fragments ray-cast the sphere and write its true depth, so spheres
// intersect correctly. Also the periodic box outline and the mouse-drag spring as lines.
//
// Spaces: `pos` holds world coordinates in [0, L) (w = type index bits); `view` maps them to a
// right-handed view space looking down −z; `proj` maps view space to clip space (depth 0..1).

const MAX_TYPES: u32 = 16u;

struct Camera {
    view: mat4x4f,
    proj: mat4x4f,
    box_len: vec4f,      // xyz = box edges, w = atom size factor
    light: vec4f,        // xyz = direction toward the light (view space), w = 1 orthographic
    drag: vec4f,         // xyz = drag target (world), w = 1 while dragging
    drag_atom: vec4u,    // x = dragged atom
    types: array<vec4f, MAX_TYPES>, // rgb colour, w = radius (length units)
}

@group(0) @binding(0) var<uniform> C: Camera;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;

struct AtomOut {
    @builtin(position) clip: vec4f,
    @location(0) view_pos: vec3f,                          // this corner, view space
    @location(1) @interpolate(flat) center: vec3f,         // sphere centre, view space
    @location(2) @interpolate(flat) color_radius: vec4f,
}

@vertex
fn vs_atom(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> AtomOut {
    var corners = array<vec2f, 6>(
        vec2f(-1.0, -1.0), vec2f(1.0, -1.0), vec2f(1.0, 1.0),
        vec2f(-1.0, -1.0), vec2f(1.0, 1.0), vec2f(-1.0, 1.0),
    );
    let p = pos[ii];
    let t = min(bitcast<u32>(p.w), MAX_TYPES - 1u);
    let r = C.types[t].w * C.box_len.w;
    let c = (C.view * vec4f(p.xyz, 1.0)).xyz;
    // The quad sits at the sphere's front (nearer than any visible point, so the depth test
    // cannot cull it before the fragment writes the true depth) and spans exactly the
    // sphere's silhouette there: few wasted fragments, which a CPU rasterizer feels.
    var lo = c.xy - vec2f(r);
    var hi = c.xy + vec2f(r);
    let w = -c.z;  // depth in front of the eye
    if (C.light.w < 0.5 && w > r * 1.001) {
        // Slopes m of the two tangents x = m·depth from the eye to the circle (u, w) of
        // radius r, per axis; the silhouette at depth w − r is m·(w − r).
        let u = c.xy;
        let k = r * sqrt(u * u + vec2f(w * w - r * r));
        let denom = w * w - r * r;
        let m_lo = (u * w - k) / denom;
        let m_hi = (u * w + k) / denom;
        lo = m_lo * (w - r);
        hi = m_hi * (w - r);
    }
    let f = corners[vi] * 0.5 + vec2f(0.5);
    let q = vec3f(mix(lo, hi, f), c.z + r);
    var out: AtomOut;
    out.clip = C.proj * vec4f(q, 1.0);
    out.view_pos = q;
    out.center = c;
    out.color_radius = vec4f(C.types[t].xyz, r);
    return out;
}

struct AtomFrag {
    @location(0) color: vec4f,
    @builtin(frag_depth) depth: f32,
}

@fragment
fn fs_atom(in: AtomOut) -> AtomFrag {
    let r = in.color_radius.w;
    var ro = vec3f(0.0);
    var rd = normalize(in.view_pos);
    if (C.light.w > 0.5) {
        ro = vec3f(in.view_pos.xy, in.center.z + 2.0 * r);
        rd = vec3f(0.0, 0.0, -1.0);
    }
    let oc = ro - in.center;
    let b = dot(oc, rd);
    let h = b * b - (dot(oc, oc) - r * r);
    if (h < 0.0) {
        discard;
    }
    let hit = ro + (-b - sqrt(h)) * rd;
    let n = (hit - in.center) / r;
    let l = normalize(C.light.xyz);
    let diffuse = max(dot(n, l), 0.0);
    let spec = pow(max(dot(reflect(-l, n), -rd), 0.0), 32.0);
    let rgb = in.color_radius.rgb * (0.3 + 0.7 * diffuse) + vec3f(0.35 * spec);
    let clip = C.proj * vec4f(hit, 1.0);
    var out: AtomFrag;
    out.color = vec4f(rgb, 1.0);
    out.depth = clamp(clip.z / clip.w, 0.0, 1.0);
    return out;
}

struct LineOut {
    @builtin(position) clip: vec4f,
    @location(0) color: vec4f,
}

// 12 edges of the periodic box, 2 vertices each.
@vertex
fn vs_box(@builtin(vertex_index) vi: u32) -> LineOut {
    var ends = array<vec3f, 24>(
        vec3f(0, 0, 0), vec3f(1, 0, 0), vec3f(0, 1, 0), vec3f(1, 1, 0),
        vec3f(0, 0, 1), vec3f(1, 0, 1), vec3f(0, 1, 1), vec3f(1, 1, 1),
        vec3f(0, 0, 0), vec3f(0, 1, 0), vec3f(1, 0, 0), vec3f(1, 1, 0),
        vec3f(0, 0, 1), vec3f(0, 1, 1), vec3f(1, 0, 1), vec3f(1, 1, 1),
        vec3f(0, 0, 0), vec3f(0, 0, 1), vec3f(1, 0, 0), vec3f(1, 0, 1),
        vec3f(0, 1, 0), vec3f(0, 1, 1), vec3f(1, 1, 0), vec3f(1, 1, 1),
    );
    var out: LineOut;
    out.clip = C.proj * C.view * vec4f(ends[vi] * C.box_len.xyz, 1.0);
    out.color = vec4f(0.75, 0.75, 0.8, 1.0);
    return out;
}

// The drag spring: from the dragged atom to the target's nearest periodic image.
@vertex
fn vs_drag(@builtin(vertex_index) vi: u32) -> LineOut {
    let a = pos[C.drag_atom.x].xyz;
    var d = C.drag.xyz - a;
    d = d - C.box_len.xyz * round(d / C.box_len.xyz);
    let p = select(a, a + d, vi == 1u);
    var out: LineOut;
    out.clip = C.proj * C.view * vec4f(p, 1.0);
    out.color = vec4f(1.0, 0.85, 0.1, 1.0);
    return out;
}

@fragment
fn fs_line(in: LineOut) -> @location(0) vec4f {
    return in.color;
}
