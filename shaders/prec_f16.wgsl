// Storage precision snippet: IEEE half stored in u32 words (two halves each), unpacked to f32
// for arithmetic. Core WGSL, so it works where SHADER_F16 is missing (e.g. WebGPU on
// SwiftShader); the memory layout is identical to `prec_f16n`, so buffers are interchangeable.
alias Store2 = u32;
alias Store4 = vec2u;
fn to2(x: Store2) -> vec2f { return unpack2x16float(x); }
fn from2(v: vec2f) -> Store2 { return pack2x16float(v); }
fn to4(x: Store4) -> vec4f { return vec4f(unpack2x16float(x.x), unpack2x16float(x.y)); }
fn from4(v: vec4f) -> Store4 { return vec2u(pack2x16float(v.xy), pack2x16float(v.zw)); }
