// Cell list by counting sort: count atoms per cell -> exclusive prefix scan -> scatter,
// then put each cell's few atoms in index order so the list (and every sum over it) is
// deterministic. Cells have edge >= cutoff + skin, so neighbors lie in the 27 surrounding cells.
#import common

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> pos: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> cell_count: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> atom_cell: array<u32>;
@group(0) @binding(4) var<storage, read_write> atom_rank: array<u32>;
@group(0) @binding(5) var<storage, read_write> cell_start: array<u32>;
@group(0) @binding(6) var<storage, read_write> block_sum: array<u32>;
@group(0) @binding(7) var<storage, read_write> cell_atoms: array<u32>;
@group(0) @binding(8) var<storage, read_write> ref_pos: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> cell_unsorted: array<u32>;
@group(0) @binding(10) var<storage, read_write> cell_pos: array<vec4f>;

const SCAN_WG: u32 = 256u;
var<workgroup> scratch: array<u32, 256>;

@compute @workgroup_size(64)
fn cell_clear(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let c = linear_id(wid, nwg, lid, WG);
    if (c < P.cell_dims.w) {
        atomicStore(&cell_count[c], 0u);
    }
}

// Also records the reference positions the rebuild criterion measures displacement from.
@compute @workgroup_size(64)
fn cell_count_atoms(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= P.n_atoms) {
        return;
    }
    let x = pos[i];
    let c = cell_index(cell_coords(x.xyz, P), P);
    atom_cell[i] = c;
    atom_rank[i] = atomicAdd(&cell_count[c], 1u);
    ref_pos[i] = x;
}

// Inclusive Hillis-Steele scan of one 256-cell block; writes exclusive offsets within the
// block and the block total.
@compute @workgroup_size(256)
fn scan_blocks(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let b = wid.y * nwg.x + wid.x;
    let c = b * SCAN_WG + lid;
    var v = 0u;
    if (c < P.cell_dims.w) {
        v = atomicLoad(&cell_count[c]);
    }
    scratch[lid] = v;
    workgroupBarrier();
    for (var off = 1u; off < SCAN_WG; off = off * 2u) {
        var add = 0u;
        if (lid >= off) {
            add = scratch[lid - off];
        }
        workgroupBarrier();
        scratch[lid] = scratch[lid] + add;
        workgroupBarrier();
    }
    if (c < P.cell_dims.w) {
        cell_start[c] = scratch[lid] - v;
    }
    if (lid == SCAN_WG - 1u && b < P.n_blocks) {
        block_sum[b] = scratch[lid];
    }
}

// One workgroup turns the block totals into exclusive block offsets, 256 at a time.
@compute @workgroup_size(256)
fn scan_top(@builtin(local_invocation_index) lid: u32) {
    var carry = 0u;
    for (var base = 0u; base < P.n_blocks; base = base + SCAN_WG) {
        let b = base + lid;
        var v = 0u;
        if (b < P.n_blocks) {
            v = block_sum[b];
        }
        scratch[lid] = v;
        workgroupBarrier();
        for (var off = 1u; off < SCAN_WG; off = off * 2u) {
            var add = 0u;
            if (lid >= off) {
                add = scratch[lid - off];
            }
            workgroupBarrier();
            scratch[lid] = scratch[lid] + add;
            workgroupBarrier();
        }
        if (b < P.n_blocks) {
            block_sum[b] = carry + scratch[lid] - v;
        }
        carry = carry + scratch[SCAN_WG - 1u];
        workgroupBarrier();
    }
}

// First slot of cell c in cell_atoms, before cell_finish has folded the block offsets in.
fn cell_offset(c: u32) -> u32 {
    return cell_start[c] + block_sum[c / SCAN_WG];
}

@compute @workgroup_size(64)
fn cell_scatter(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= P.n_atoms) {
        return;
    }
    let c = atom_cell[i];
    let start = cell_offset(c);
    cell_unsorted[start + atom_rank[i]] = i;
}

// Atomics made the scattered order arbitrary; each atom's place in index order is the number
// of its cell-mates with a smaller index. One thread per atom (a cell's ~20 atoms read in
// parallel) instead of one thread sorting each cell: no long serial chain of memory reads.
// Also writes the atom's position, with its index in w, at the same slot (`cell_pos`): the
// neighbor build then reads each candidate with one contiguous load instead of an index
// load followed by a dependent random gather.
@compute @workgroup_size(64)
fn cell_order(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= P.n_atoms) {
        return;
    }
    let c = atom_cell[i];
    let start = cell_offset(c);
    let n = atomicLoad(&cell_count[c]);
    var rank = 0u;
    for (var a = 0u; a < n; a++) {
        rank += select(0u, 1u, cell_unsorted[start + a] < i);
    }
    cell_atoms[start + rank] = i;
    cell_pos[start + rank] = vec4f(ref_pos[i].xyz, bitcast<f32>(i));
}

// Finalises cell_start (block offset added); runs after cell_order, which still needs the
// block-relative offsets.
@compute @workgroup_size(64)
fn cell_finish(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
    let c = linear_id(wid, nwg, lid, WG);
    if (c >= P.cell_dims.w) {
        return;
    }
    cell_start[c] = cell_offset(c);
    // One entry past the last cell, so a cell's atoms are cell_start[c] .. cell_start[c + 1]
    // for readers that do not bind cell_count (the cell-list LJ kernel).
    if (c + 1u == P.cell_dims.w) {
        cell_start[c + 1u] = P.n_atoms;
    }
}
