//! Rust mirror of the WGSL `Params` uniform in `shaders/common.wgsl`.

use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub box_len: [f32; 4],
    pub inv_box: [f32; 4],
    pub cell_scale: [f32; 4],
    pub cell_dims: [u32; 4],
    pub n_atoms: u32,
    pub n_types: u32,
    pub nbr_capacity: u32,
    pub n_blocks: u32,
    pub list_cut2: f32,
    pub half_skin2: f32,
    pub max_force2: f32,
    pub dt: f32,
    pub ftm2v: f32,
    pub mvv2e: f32,
    pub lang_c1: f32,
    pub lang_kt: f32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub n_partials: u32,
    /// Steps between neighbor-rebuild opportunities (1 = every step).
    pub check_every: u32,
}

/// Slots of the GPU `status` buffer (`ST_*` in common.wgsl).
pub mod status {
    pub const STEP: usize = 0;
    pub const MAX_DISP2: usize = 1;
    pub const FORCE_REBUILD: usize = 2;
    pub const REBUILDS: usize = 3;
    pub const MAX_NBRS: usize = 4;
    pub const BLOWUP: usize = 5;
    pub const BLOWUP_ATOM: usize = 6;
    pub const BLOWUP_STEP: usize = 7;
    pub const LAST_BUILD: usize = 8;
    pub const MISSED: usize = 9;
    pub const LIFETIME: usize = 10;
    pub const MAX_REACH2: usize = 11;
    pub const PAIR_STALE: usize = 12;
    pub const PAIR_AHEAD: usize = 13;
    pub const LEN: usize = 14;
}
