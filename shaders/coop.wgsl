// Enables WGSL cooperative matrices (wgpu 30, native only: tensor cores). Composed first,
// since `enable` directives must precede every declaration.
enable wgpu_cooperative_matrix;
