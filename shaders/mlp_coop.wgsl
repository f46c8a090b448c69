// Dense layers on tensor cores (wgpu's experimental cooperative matrices: Vulkan
// VK_KHR_cooperative_matrix, 16 x 16 x 16 tiles, f16 inputs, f32 accumulation): the same
// products and epilogues as `gemm` / `gemm_wide` in mlp.wgsl, for the native-f16 precision.
// Composed as `coop+prec_f16n+mlp+mlp_coop`: it reuses mlp.wgsl's Gemm uniform, bindings and
// `epilogue` (which stores through the f16 `Store4` views).
//
// The host selects these kernels only where the adapter reports the 16x16x16 f16 -> f32
// configuration and a subgroup size of exactly 32: each workgroup is 4 subgroups, subgroup
// `lid / 32` owns one block of tiles, and every cooperative operation runs in control flow
// that is uniform across the workgroup (no early returns; loop bounds from the uniform).
//
// Tiles are read straight from storage (A row-major with stride lda, B = the [N][K] weights
// read as a column-major K x N matrix with stride ldb). Loads are not masked: rows past M and
// columns past N read padding the host allocates (AEV rows, activation rows, the end of the
// weight buffer) or a neighbouring matrix, and only feed outputs that `epilogue` masks, since
// each output element depends on its own row of A and column of B only. K must be a multiple
// of 16 (the host checks). Accumulators leave through a per-subgroup 16 x 16 f32 staging tile
// in workgroup memory, where lanes apply the epilogue four columns at a time.

// The same buffers as `a_in` and `wts`, seen as f16 scalars for the cooperative loads.
@group(0) @binding(7) var<storage, read> a16: array<f16>;
@group(0) @binding(8) var<storage, read> w16: array<f16>;

var<workgroup> stage: array<f32, 1024>;   // 4 subgroups x one 16 x 16 tile, row-major

// Applies the epilogue to the tile just stored at stage[st..st + 256] (rows row0.., columns
// col0..): each of the subgroup's 32 lanes takes two 4-wide pieces. The barriers order the
// cooperative store before the reads, and the reads before the next store.
fn drain(bt: u32, row0: u32, col0: u32, st: u32, lane: u32) {
    workgroupBarrier();
    for (var h = 0u; h < 2u; h++) {
        let q = lane + 32u * h;
        let r = q / 4u;
        let c = 4u * (q % 4u);
        let s = st + r * 16u + c;
        epilogue(bt, row0 + r, col0 + c, vec4f(stage[s], stage[s + 1u], stage[s + 2u], stage[s + 3u]));
    }
    workgroupBarrier();
}

// 64 x 64 outputs per workgroup, 2 x 2 tiles per subgroup (only with WGMD_COOP_WIDE=0 or
// WGMD_WIDE_MIN_N set: by default every product takes the staged 128-wide tiles).
@compute @workgroup_size(128)
fn gemm_coop(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let bt = wid.z;
    let sg = lid / 32u;
    let lane = lid % 32u;
    // This subgroup's block: 32 rows x 32 columns of the workgroup's 64 x 64.
    let row0 = wid.y * 64u + (sg / 2u) * 32u;
    let col0 = wid.x * 64u + (sg % 2u) * 32u;
    let lda = G.lda;
    let ldb = G.ldb;
    let a_base = G.a_off + bt * G.a_bs + row0 * lda;
    let b_base = G.b_off + bt * G.b_bs + col0 * ldb;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    for (var k0 = 0u; k0 < G.k; k0 += 16u) {
        let ia0 = a_base + 0u * lda + k0;
        let ia1 = a_base + 16u * lda + k0;
        let ib0 = b_base + 0u * ldb + k0;
        let ib1 = b_base + 16u * ldb + k0;
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&a16[ia0], lda);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&a16[ia1], lda);
        let b0 = coopLoad<coop_mat16x16<f16, B>>(&w16[ib0], ldb);
        let b1 = coopLoad<coop_mat16x16<f16, B>>(&w16[ib1], ldb);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
    }
    let st = sg * 256u;
    let s16 = 16u;
    coopStoreT(c00, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 0u, st, lane);
    coopStoreT(c01, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 16u, st, lane);
    coopStoreT(c10, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 0u, st, lane);
    coopStoreT(c11, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 16u, st, lane);
}

// 128 x 128 outputs per workgroup, 4 x 4 tiles per subgroup (half the tile loads per
// multiply-add): the wide layer-1 products, forward and input gradient, ~80 % of the flops.
@compute @workgroup_size(128)
fn gemm_coop_wide(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let bt = wid.z;
    let sg = lid / 32u;
    let lane = lid % 32u;
    // This subgroup's block: 64 rows x 64 columns of the workgroup's 128 x 128.
    let row0 = wid.y * 128u + (sg / 2u) * 64u;
    let col0 = wid.x * 128u + (sg % 2u) * 64u;
    let lda = G.lda;
    let ldb = G.ldb;
    let a_base = G.a_off + bt * G.a_bs + row0 * lda;
    let b_base = G.b_off + bt * G.b_bs + col0 * ldb;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>();
    var c03 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>();
    var c13 = coop_mat16x16<f32, C>();
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c22 = coop_mat16x16<f32, C>();
    var c23 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();
    var c32 = coop_mat16x16<f32, C>();
    var c33 = coop_mat16x16<f32, C>();
    for (var k0 = 0u; k0 < G.k; k0 += 16u) {
        let ia0 = a_base + 0u * lda + k0;
        let ia1 = a_base + 16u * lda + k0;
        let ia2 = a_base + 32u * lda + k0;
        let ia3 = a_base + 48u * lda + k0;
        let ib0 = b_base + 0u * ldb + k0;
        let ib1 = b_base + 16u * ldb + k0;
        let ib2 = b_base + 32u * ldb + k0;
        let ib3 = b_base + 48u * ldb + k0;
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&a16[ia0], lda);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&a16[ia1], lda);
        let a2 = coopLoadT<coop_mat16x16<f16, A>>(&a16[ia2], lda);
        let a3 = coopLoadT<coop_mat16x16<f16, A>>(&a16[ia3], lda);
        let b0 = coopLoad<coop_mat16x16<f16, B>>(&w16[ib0], ldb);
        let b1 = coopLoad<coop_mat16x16<f16, B>>(&w16[ib1], ldb);
        let b2 = coopLoad<coop_mat16x16<f16, B>>(&w16[ib2], ldb);
        let b3 = coopLoad<coop_mat16x16<f16, B>>(&w16[ib3], ldb);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c02 = coopMultiplyAdd(a0, b2, c02);
        c03 = coopMultiplyAdd(a0, b3, c03);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c12 = coopMultiplyAdd(a1, b2, c12);
        c13 = coopMultiplyAdd(a1, b3, c13);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c22 = coopMultiplyAdd(a2, b2, c22);
        c23 = coopMultiplyAdd(a2, b3, c23);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
        c32 = coopMultiplyAdd(a3, b2, c32);
        c33 = coopMultiplyAdd(a3, b3, c33);
    }
    let st = sg * 256u;
    let s16 = 16u;
    coopStoreT(c00, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 0u, st, lane);
    coopStoreT(c01, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 16u, st, lane);
    coopStoreT(c02, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 32u, st, lane);
    coopStoreT(c03, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 48u, st, lane);
    coopStoreT(c10, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 0u, st, lane);
    coopStoreT(c11, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 16u, st, lane);
    coopStoreT(c12, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 32u, st, lane);
    coopStoreT(c13, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 48u, st, lane);
    coopStoreT(c20, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 0u, st, lane);
    coopStoreT(c21, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 16u, st, lane);
    coopStoreT(c22, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 32u, st, lane);
    coopStoreT(c23, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 48u, st, lane);
    coopStoreT(c30, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 0u, st, lane);
    coopStoreT(c31, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 16u, st, lane);
    coopStoreT(c32, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 32u, st, lane);
    coopStoreT(c33, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 48u, st, lane);
}

// The wide products again, with each 128 x 16 slab of A and of B staged in workgroup memory
// (double-buffered: the next slab's global loads are in flight while the tensor cores work on
// the current one; one barrier per slab). Every lane fetches one 32-byte row of each slab with
// two 16-byte loads, so offsets and strides must be multiples of 8 elements (the host checks).
// Staged rows are 16 halves padded to 24 (48 bytes): the 8 rows a fragment load reads at once
// then start in 8 different 4-bank groups.
@group(0) @binding(9) var<storage, read> a_v: array<vec4u>;
@group(0) @binding(10) var<storage, read> w_v: array<vec4u>;
const SROW: u32 = 6u;     // vec4<f16> per staged row
const SBUF: u32 = 768u;   // vec4<f16> per staged 128-row slab
var<workgroup> as_s: array<vec4<f16>, 1536>;   // 2 slabs of A, [row][k]
var<workgroup> bs_s: array<vec4<f16>, 1536>;   // 2 slabs of B, [column][k]

// Four packed halves as vec4<f16>, through f32 (exact both ways; naga 30 has no bitcast
// from vec2<u32> to vec4<f16>).
fn halves(w: vec2u) -> vec4<f16> {
    return vec4<f16>(vec4f(unpack2x16float(w.x), unpack2x16float(w.y)));
}

fn put_slab(buf: u32, r: u32, a0: vec4u, a1: vec4u, b0: vec4u, b1: vec4u) {
    let i = buf + r * SROW;
    as_s[i] = halves(a0.xy);
    as_s[i + 1u] = halves(a0.zw);
    as_s[i + 2u] = halves(a1.xy);
    as_s[i + 3u] = halves(a1.zw);
    bs_s[i] = halves(b0.xy);
    bs_s[i + 1u] = halves(b0.zw);
    bs_s[i + 2u] = halves(b1.xy);
    bs_s[i + 3u] = halves(b1.zw);
}

@compute @workgroup_size(128)
fn gemm_coop_wide_s(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let bt = wid.z;
    let sg = lid / 32u;
    let lane = lid % 32u;
    let m0 = wid.y * 128u;
    let n0 = wid.x * 128u;
    // The subgroup's 64 x 64 block: first row and column inside the tile, and in the matrix.
    let ar = (sg / 2u) * 64u;
    let bc = (sg % 2u) * 64u;
    let row0 = m0 + ar;
    let col0 = n0 + bc;
    // Lane lid fetches row m0 + lid of A and row n0 + lid of B (= column of Bᵀ), 8 halves a load.
    let ga = (G.a_off + bt * G.a_bs + (m0 + lid) * G.lda) / 8u;
    let gb = (G.b_off + bt * G.b_bs + (n0 + lid) * G.ldb) / 8u;
    var pa0 = a_v[ga];
    var pa1 = a_v[ga + 1u];
    var pb0 = w_v[gb];
    var pb1 = w_v[gb + 1u];
    put_slab(0u, lid, pa0, pa1, pb0, pb1);
    workgroupBarrier();
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>();
    var c03 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>();
    var c13 = coop_mat16x16<f32, C>();
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c22 = coop_mat16x16<f32, C>();
    var c23 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();
    var c32 = coop_mat16x16<f32, C>();
    var c33 = coop_mat16x16<f32, C>();
    let s6 = SROW;
    let nk = G.k / 16u;
    for (var kt = 0u; kt < nk; kt++) {
        let cur = (kt % 2u) * SBUF;
        let more = kt + 1u < nk;
        if (more) {
            let o = (kt + 1u) * 2u;
            pa0 = a_v[ga + o];
            pa1 = a_v[ga + o + 1u];
            pb0 = w_v[gb + o];
            pb1 = w_v[gb + o + 1u];
        }
        let ia0 = cur + (ar + 0u) * SROW;
        let ia1 = cur + (ar + 16u) * SROW;
        let ia2 = cur + (ar + 32u) * SROW;
        let ia3 = cur + (ar + 48u) * SROW;
        let ib0 = cur + (bc + 0u) * SROW;
        let ib1 = cur + (bc + 16u) * SROW;
        let ib2 = cur + (bc + 32u) * SROW;
        let ib3 = cur + (bc + 48u) * SROW;
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&as_s[ia0], s6);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&as_s[ia1], s6);
        let a2 = coopLoadT<coop_mat16x16<f16, A>>(&as_s[ia2], s6);
        let a3 = coopLoadT<coop_mat16x16<f16, A>>(&as_s[ia3], s6);
        let b0 = coopLoad<coop_mat16x16<f16, B>>(&bs_s[ib0], s6);
        let b1 = coopLoad<coop_mat16x16<f16, B>>(&bs_s[ib1], s6);
        let b2 = coopLoad<coop_mat16x16<f16, B>>(&bs_s[ib2], s6);
        let b3 = coopLoad<coop_mat16x16<f16, B>>(&bs_s[ib3], s6);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c02 = coopMultiplyAdd(a0, b2, c02);
        c03 = coopMultiplyAdd(a0, b3, c03);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c12 = coopMultiplyAdd(a1, b2, c12);
        c13 = coopMultiplyAdd(a1, b3, c13);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c22 = coopMultiplyAdd(a2, b2, c22);
        c23 = coopMultiplyAdd(a2, b3, c23);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
        c32 = coopMultiplyAdd(a3, b2, c32);
        c33 = coopMultiplyAdd(a3, b3, c33);
        if (more) {
            put_slab(SBUF - cur, lid, pa0, pa1, pb0, pb1);
        }
        workgroupBarrier();
    }
    let st = sg * 256u;
    let s16 = 16u;
    coopStoreT(c00, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 0u, st, lane);
    coopStoreT(c01, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 16u, st, lane);
    coopStoreT(c02, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 32u, st, lane);
    coopStoreT(c03, &stage[st], s16);
    drain(bt, row0 + 0u, col0 + 48u, st, lane);
    coopStoreT(c10, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 0u, st, lane);
    coopStoreT(c11, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 16u, st, lane);
    coopStoreT(c12, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 32u, st, lane);
    coopStoreT(c13, &stage[st], s16);
    drain(bt, row0 + 16u, col0 + 48u, st, lane);
    coopStoreT(c20, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 0u, st, lane);
    coopStoreT(c21, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 16u, st, lane);
    coopStoreT(c22, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 32u, st, lane);
    coopStoreT(c23, &stage[st], s16);
    drain(bt, row0 + 32u, col0 + 48u, st, lane);
    coopStoreT(c30, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 0u, st, lane);
    coopStoreT(c31, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 16u, st, lane);
    coopStoreT(c32, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 32u, st, lane);
    coopStoreT(c33, &stage[st], s16);
    drain(bt, row0 + 48u, col0 + 48u, st, lane);
}
