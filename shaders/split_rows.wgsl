// Split neighbor rows (`neighbor::ListLayout::BySlotSplit`: packed rows by slot, one thread
// per row). A row's entries that were inside the force cutoff at the build fill its groups
// of eight from the front (entry k in group k / 8, as in any packed row); the rest — the
// skin's shell, whose pairs mostly stay beyond the cutoff until the next build — fill groups
// from the back (outer entry m in group capacity / 8 − 1 − m / 8, word m % 8), and nbr_count
// holds inner | outer << 16.
//
// Why: a quarter of a Coulomb row (a third of an LJ one) lies in the shell, and with entries
// in stencil order some lane of a warp has a pair inside the cutoff at nearly every entry, so
// the warp pays the whole pair computation for all of them. The force kernels run the inner
// groups as before and only test the outer ones (`outer_mask`), computing each set bit: a
// warp then pays about one or two pair computations per outer group instead of eight.
//
// Imported by neighbor.wgsl, lj.wgsl and coulomb.wgsl, which declare `P`, `slot_pos` and
// `nbr_list`.

override SPLIT: bool = false;
// The largest pair cutoff, squared, as the very f32 the force kernel compares with: an outer
// entry outside it is outside every cutoff.
override OUTER_CUT2: f32 = 0.0;

fn split_inner(c: u32) -> u32 {
    return c & 0xffffu;
}

fn split_outer(c: u32) -> u32 {
    return c >> 16u;
}

// Row position of outer entry m: (capacity − 8 − 8 ⌊m / 8⌋) + m % 8.
fn split_outer_k(m: u32) -> u32 {
    return P.nbr_capacity - 8u - (m & ~7u) + (m & 7u);
}

// Word b (0..7) of a group held as two vec4u, by selects (a runtime index into a vector can
// put it in local memory).
fn group_word(lo: vec4u, hi: vec4u, b: u32) -> u32 {
    let v = select(lo, hi, b >= 4u);
    let c = b & 3u;
    return select(select(v.x, v.y, c == 1u), select(v.z, v.w, c == 3u), c >= 2u);
}

fn inside_outer(xi: vec3f, e: u32) -> bool {
    let d = min_image(xi - slot_pos[e].xyz, P);
    return dot(d, d) < OUTER_CUT2;
}

// Bit j set for each of the first min(m, 8) slots of the group (lo, hi) whose atom lies
// within OUTER_CUT2 of xi; components named one by one, as above.
fn outer_mask(xi: vec3f, lo: vec4u, hi: vec4u, m: u32) -> u32 {
    var mask = select(0u, 1u, inside_outer(xi, lo.x));
    if (m > 1u) { mask |= select(0u, 2u, inside_outer(xi, lo.y)); }
    if (m > 2u) { mask |= select(0u, 4u, inside_outer(xi, lo.z)); }
    if (m > 3u) { mask |= select(0u, 8u, inside_outer(xi, lo.w)); }
    if (m > 4u) { mask |= select(0u, 16u, inside_outer(xi, hi.x)); }
    if (m > 5u) { mask |= select(0u, 32u, inside_outer(xi, hi.y)); }
    if (m > 6u) { mask |= select(0u, 64u, inside_outer(xi, hi.z)); }
    if (m > 7u) { mask |= select(0u, 128u, inside_outer(xi, hi.w)); }
    return mask;
}

struct OuterGroup {
    lo: vec4u,
    hi: vec4u,
    mask: u32,
}

// The outer group of row `rowid` holding outer entries mb .. mb + 7 (of n_out), and which of
// them lie within OUTER_CUT2 of xi. (`nbr_list` is the importer's binding.)
fn outer_group(xi: vec3f, rowid: u32, mb: u32, n_out: u32) -> OuterGroup {
    let w = list_word(split_outer_k(mb), rowid, true, P) >> 2u;
    let lo = nbr_list[w];
    let hi = nbr_list[w + 1u];
    return OuterGroup(lo, hi, outer_mask(xi, lo, hi, n_out - mb));
}

// The slots (bits of `mask`) of the outer group (lo, hi) in turn, lowest first.
fn next_bit(mask: ptr<function, u32>) -> u32 {
    let b = countTrailingZeros(*mask);
    *mask &= *mask - 1u;
    return b;
}
