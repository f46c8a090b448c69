//! Force terms. Each term is plain data (its parameters) plus a GPU driver that encodes its
//! kernels into the step's compute pass, and a float64 CPU reference used by the tests.
//! `lj` is the exemplar: a new pair potential copies its shape (pair function in WGSL and
//! Rust with the same contract, one gather loop over the neighbor list).

pub mod ani;
pub mod coulomb;
pub mod coulomb_spread;
pub mod drag;
pub mod fft;
pub mod lj;
pub mod pme;
pub mod spread_tile;
