// Storage precision snippet for the ANI kernels (composed in front of aev.wgsl / mlp.wgsl):
// float32 rows. `Store2`/`Store4` hold 2/4 features; to*/from* convert to and from f32 math.
alias Store2 = vec2f;
alias Store4 = vec4f;
fn to2(x: Store2) -> vec2f { return x; }
fn from2(v: vec2f) -> Store2 { return v; }
fn to4(x: Store4) -> vec4f { return x; }
fn from4(v: vec4f) -> Store4 { return v; }
