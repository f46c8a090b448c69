// Dense layers of the ANI atomic networks: one batched GEMM with fused epilogues, and the
// last (1-wide) layer as a dot product that also averages the ensemble.
//
// C[b] = epilogue(A[b] · B[b]ᵀ): A is rows × K (features contiguous), B is N × K (the file's
// [out][in] weight layout, so the forward pass needs no transpose; the backward pass uses
// host-transposed copies). b is the ensemble member (grid z). Epilogues (override MODE):
//   0  hidden layer forward: z = acc + bias; C = CELU(z); D = CELU′(z)
//   1  last hidden layer:    z = acc + bias; C = CELU(z); D = w_out ⊙ CELU′(z)  (= δ of that layer)
//   2  backward:             C = acc ⊙ D   (δ of the layer below, D read)
//   3  input gradient:       C = scale · acc (dE/dAEV, ensemble mean; written over the AEV rows)
// CELU has α = 0.1 (TorchANI). Rows beyond M and columns beyond N are masked, so M needs no
// padding; K must be a multiple of 16 and all offsets multiples of 4 (the host checks).
// Storage is `Store4` (f32, or f16 from the prec_* snippet); arithmetic and sums are f32.
#import common

struct Gemm {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_off: u32,
    lda: u32,
    a_bs: u32,
    row0: u32,      // first row of this chunk in the species-sorted row order (energy kernel)
    b_off: u32,
    ldb: u32,
    b_bs: u32,
    scale: f32,
    c_off: u32,
    ldc: u32,
    c_bs: u32,
    _pad: u32,
    bias_off: u32,
    bias_bs: u32,
    w4_off: u32,
    w4_bs: u32,
}

override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> G: Gemm;
@group(0) @binding(1) var<storage, read> wts: array<Store4>;
@group(0) @binding(2) var<storage, read> a_in: array<Store4>;
@group(0) @binding(3) var<storage, read_write> c_out: array<Store4>;
@group(0) @binding(4) var<storage, read_write> d_aux: array<Store4>;
@group(0) @binding(5) var<storage, read> atom_of_row: array<u32>;
@group(0) @binding(6) var<storage, read_write> atom_energy: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

// Tiles in workgroup memory, k-major so a lane's 4 rows (or columns) are one vec4.
var<workgroup> As: array<vec4f, 256>;   // [k][m / 4]
var<workgroup> Bs: array<vec4f, 256>;   // [k][n / 4]

fn celu(z: vec4f) -> vec4f {
    // exp of min(z, 0) so the unused branch cannot overflow to inf.
    return select(0.1 * (exp(10.0 * min(z, vec4f(0.0))) - 1.0), z, z > vec4f(0.0));
}

fn celu_prime(z: vec4f) -> vec4f {
    return select(exp(10.0 * min(z, vec4f(0.0))), vec4f(1.0), z > vec4f(0.0));
}

fn w4(idx: u32) -> vec4f {
    return to4(wts[idx / 4u]);
}

@compute @workgroup_size(256)
fn gemm(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let bt = wid.z;
    let m0 = wid.y * TM;
    let n0 = wid.x * TN;
    let tx = lid % 16u;
    let ty = lid / 16u;
    // Loader mapping: each lane fetches 4 consecutive k of one row of A and one row of B.
    let lr = lid / 4u;
    let kq = lid % 4u;
    let am = m0 + lr;
    let bn = n0 + lr;
    let a_base = G.a_off + bt * G.a_bs + am * G.lda + 4u * kq;
    let b_base = G.b_off + bt * G.b_bs + bn * G.ldb + 4u * kq;
    var acc0 = vec4f(0.0);
    var acc1 = vec4f(0.0);
    var acc2 = vec4f(0.0);
    var acc3 = vec4f(0.0);
    for (var k0 = 0u; k0 < G.k; k0 += TK) {
        var av = vec4f(0.0);
        if (am < G.m) {
            av = to4(a_in[(a_base + k0) / 4u]);
        }
        var bv = vec4f(0.0);
        if (bn < G.n) {
            bv = w4(b_base + k0);
        }
        for (var c = 0u; c < 4u; c++) {
            let kk = 4u * kq + c;
            As[kk * 16u + lr / 4u][lr % 4u] = av[c];
            Bs[kk * 16u + lr / 4u][lr % 4u] = bv[c];
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = As[kk * 16u + ty];
            let b = Bs[kk * 16u + tx];
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    let r0 = m0 + 4u * ty;
    let c0 = n0 + 4u * tx;
    epilogue(bt, r0, c0, acc0);
    epilogue(bt, r0 + 1u, c0, acc1);
    epilogue(bt, r0 + 2u, c0, acc2);
    epilogue(bt, r0 + 3u, c0, acc3);
}

// Applies MODE to 4 consecutive outputs (row, col..col+3) and stores them; masks the edges.
fn epilogue(bt: u32, row: u32, col: u32, acc: vec4f) {
    if (row >= G.m || col >= G.n) {
        return;
    }
    let idx = (G.c_off + bt * G.c_bs + row * G.ldc + col) / 4u;
    var z = acc;
    if (MODE == 0u || MODE == 1u) {
        z += w4(G.bias_off + bt * G.bias_bs + col);
        c_out[idx] = from4(celu(z));
        var d = celu_prime(z);
        if (MODE == 1u) {
            d *= w4(G.w4_off + bt * G.w4_bs + col);
        }
        d_aux[idx] = from4(d);
    } else if (MODE == 2u) {
        c_out[idx] = from4(z * to4(d_aux[idx]));
    } else {
        c_out[idx] = from4(z * G.scale);
    }
}

// The same product on 128 × 128 tiles, 8 × 8 outputs per lane (two 4 × 4 blocks 64 apart in
// each direction, so workgroup-memory reads stay conflict-free): four times the arithmetic
// per workgroup-memory load of `gemm`. Used for the wide layer-1 products (N ≥ 512), which
// carry about three quarters of the flops.
var<workgroup> As2: array<vec4f, 512>;   // [k][m / 4], 32 vec4 per k
var<workgroup> Bs2: array<vec4f, 512>;   // [k][n / 4]

@compute @workgroup_size(256)
fn gemm_wide(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let bt = wid.z;
    let m0 = wid.y * 128u;
    let n0 = wid.x * 128u;
    let tx = lid % 16u;
    let ty = lid / 16u;
    let lr = lid / 4u;
    let kq = lid % 4u;
    // [row 0..7][col half 0..1], zero-initialised. Indexed only by constants: a variable
    // index anywhere makes compilers move the whole array to local memory (measured 5x slower).
    var acc: array<vec4f, 16>;
    for (var k0 = 0u; k0 < G.k; k0 += TK) {
        for (var h = 0u; h < 2u; h++) {
            let r = lr + 64u * h;
            let am = m0 + r;
            var av = vec4f(0.0);
            if (am < G.m) {
                av = to4(a_in[(G.a_off + bt * G.a_bs + am * G.lda + 4u * kq + k0) / 4u]);
            }
            let bn = n0 + r;
            var bv = vec4f(0.0);
            if (bn < G.n) {
                bv = w4(G.b_off + bt * G.b_bs + bn * G.ldb + 4u * kq + k0);
            }
            for (var c = 0u; c < 4u; c++) {
                let kk = 4u * kq + c;
                As2[kk * 32u + r / 4u][r % 4u] = av[c];
                Bs2[kk * 32u + r / 4u][r % 4u] = bv[c];
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a0 = As2[kk * 32u + ty];
            let a1 = As2[kk * 32u + 16u + ty];
            let b0 = Bs2[kk * 32u + tx];
            let b1 = Bs2[kk * 32u + 16u + tx];
            acc[0] += a0.x * b0; acc[1] += a0.x * b1;
            acc[2] += a0.y * b0; acc[3] += a0.y * b1;
            acc[4] += a0.z * b0; acc[5] += a0.z * b1;
            acc[6] += a0.w * b0; acc[7] += a0.w * b1;
            acc[8] += a1.x * b0; acc[9] += a1.x * b1;
            acc[10] += a1.y * b0; acc[11] += a1.y * b1;
            acc[12] += a1.z * b0; acc[13] += a1.z * b1;
            acc[14] += a1.w * b0; acc[15] += a1.w * b1;
        }
        workgroupBarrier();
    }
    let r0 = m0 + 4u * ty;
    let c0 = n0 + 4u * tx;
    epilogue(bt, r0, c0, acc[0]);
    epilogue(bt, r0, c0 + 64u, acc[1]);
    epilogue(bt, r0 + 1u, c0, acc[2]);
    epilogue(bt, r0 + 1u, c0 + 64u, acc[3]);
    epilogue(bt, r0 + 2u, c0, acc[4]);
    epilogue(bt, r0 + 2u, c0 + 64u, acc[5]);
    epilogue(bt, r0 + 3u, c0, acc[6]);
    epilogue(bt, r0 + 3u, c0 + 64u, acc[7]);
    epilogue(bt, r0 + 64u, c0, acc[8]);
    epilogue(bt, r0 + 64u, c0 + 64u, acc[9]);
    epilogue(bt, r0 + 65u, c0, acc[10]);
    epilogue(bt, r0 + 65u, c0 + 64u, acc[11]);
    epilogue(bt, r0 + 66u, c0, acc[12]);
    epilogue(bt, r0 + 66u, c0 + 64u, acc[13]);
    epilogue(bt, r0 + 67u, c0, acc[14]);
    epilogue(bt, r0 + 67u, c0 + 64u, acc[15]);
}

// Output layer (1 node per member) and the ensemble mean: one lane per row. A is the last
// hidden layer's activations; bias_off/bias_bs address each member's output bias.
@compute @workgroup_size(64)
fn mlp_energy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let r = linear_id(wid, nwg, lid, WG);
    if (r >= G.m) {
        return;
    }
    var e = 0.0;
    for (var b = 0u; b < G.batch; b++) {
        let bias_idx = G.bias_off + b * G.bias_bs;
        var s = w4(bias_idx - bias_idx % 4u)[bias_idx % 4u];
        let base = G.a_off + b * G.a_bs + r * G.lda;
        let wb = G.w4_off + b * G.w4_bs;
        for (var n = 0u; n < G.n; n += 4u) {
            s += dot(to4(a_in[(base + n) / 4u]), w4(wb + n));
        }
        e += s;
    }
    atom_energy[atom_of_row[G.row0 + r]] = e * G.scale;
}
