enable f16;
// Storage precision snippet: native f16 (adapters with SHADER_F16). Same bytes as `prec_f16`;
// arithmetic and accumulation stay in f32.
alias Store2 = vec2<f16>;
alias Store4 = vec4<f16>;
fn to2(x: Store2) -> vec2f { return vec2f(x); }
fn from2(v: vec2f) -> Store2 { return vec2<f16>(v); }
fn to4(x: Store4) -> vec4f { return vec4f(x); }
fn from4(v: vec4f) -> Store4 { return vec4<f16>(v); }
