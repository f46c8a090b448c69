//! # wgmd — portable GPU molecular dynamics on wgpu
//!
//! ## Module map
//! - [`gpu`] — adapter/device choice, features and limits, WGSL composition (`#import`),
//!   naga validation and binding reflection ([`gpu::Kernel`]), buffer helpers.
//! - [`system`] — host-side [`system::System`] (positions, velocities, types, masses, charges,
//!   periodic box), lattice builders, Maxwell–Boltzmann velocities.
//! - [`units`] — the two unit systems (physical Å/fs/amu/eV/K, reduced LJ) and conversions.
//! - [`io`] — XYZ / extended XYZ reading and writing, PDB reading, the NIST SPC/E text format
//!   ([`io::nist_spce`]), atomic (temp + rename) output files.
//! - [`config`] — the TOML config schema → [`engine::SimSpec`].
//! - [`neighbor`] — cell list (counting sort, plus a cell-ordered copy of the positions) and
//!   Verlet list with skin, rows by atom or by cell slot, packed in groups of eight, optionally
//!   split into the pairs inside the cutoff and the skin's shell (`shaders/split_rows.wgsl`)
//!   ([`neighbor::ListLayout`], [`neighbor::BuildPlan`]); rebuilt when the largest
//!   displacement passes half the skin or, by default for Coulomb systems from 131,072 atoms
//!   (`engine::default_rebuild_by_pairs`), when a pair the list lacks comes inside the
//!   cutoff (`decide`, `pair_check` in `shaders/neighbor.wgsl`); [`neighbor::NeighborMode`]:
//!   the list, or forces straight from the cell list (~100 bytes per atom, for 10⁷–10⁸
//!   atoms); brute-force reference.
//! - [`forces`] — force terms; [`forces::lj`] is the exemplar (pair function + gather loop +
//!   float64 reference).
//!   [`forces::coulomb`]: charges, cutoff / reaction field / DSF / Ewald real space fused with
//!   LJ in one neighbor loop (`shaders/coulomb.wgsl`, sharing `lj_pair` with `lj.wgsl`),
//!   excluded pairs and their erf correction, the Ewald k-sum (`shaders/ewald.wgsl`), self and
//!   background terms, and float64 references of every method; [`forces::pme`] +
//!   [`forces::fft`]: smooth PME's reciprocal part (spreading, WGSL 3-D FFT, interpolation);
//!   [`forces::coulomb_spread`]: real space and PME's charge spread in one dispatch
//!   (interleaved workgroups; slot positions and B-splines in one more), where the charge grid
//!   is summed with f32 atomics; [`forces::spread_tile`]: the spread by blocks of cells summed
//!   in workgroup memory first (large systems, rows by slot).
//! - [`integrate`] — velocity Verlet and Langevin BAOAB (Philox RNG), with float64 twins.
//! - [`observe`] — GPU reductions of energies and virial; temperature and pressure;
//!   RDF / speed histograms ([`observe::histogram`]); non-blocking readback.
//! - [`engine`] — [`engine::Simulation`]: GPU buffers and the step loop; [`engine::live`]:
//!   steering (dt, thermostat, mouse spring [`forces::drag`]) and non-blocking stepping.
//! - `viewer` (feature `viewer`, on by default) — the eframe desktop app: atoms drawn from the
//!   position buffer (`shaders/render.wgsl`), live plots, controls, PNG/CSV export. The same
//!   app compiled to wasm32 is the browser build (`viewer::web`, `web/build.sh`): embedded
//!   presets, URL settings, the `#wgmd-state` JSON mirror; it builds and steps the simulation
//!   without ever waiting for the GPU (`Simulation::new_nonblocking`).
//! - [`ani`] — ANI-2x: NeuroChem model loader ([`ani::neurochem`]), the float64 CPU
//!   reference ([`ani::reference`]) and GPU single points ([`ani::eval`]); the GPU force term
//!   is [`forces::ani`] (AEV + analytic forces in `shaders/aev.wgsl`, dense layers in
//!   `shaders/mlp.wgsl`).
//!
//! ## Data flow of one step (all on the GPU, one compute pass per batch of steps)
//! integrate first half (+ max displacement and reach) → decide (writes indirect args) → cell
//! list (clear, count, scan, scatter, sort) + neighbor build, dispatched indirectly (zero
//! workgroups when no rebuild; or only every `check_every` steps (default 1), the others just
//! verify the list) → LJ forces, or for charged systems the fused LJ + real-space Coulomb
//! kernel (+ Ewald k-sum or PME: spread, FFTs, interpolate; with f32 atomics the spread runs
//! inside the real-space dispatch, or for large systems by blocks of cells right after it)
//! (+ blow-up check) → closing half kick.
//! After a batch: optional reduction → 64-byte status/observables readback.
//!
//! ## Known debts
//! - The browser build cannot load ANI models yet (no in-memory NeuroChem loader), and its
//!   structure upload takes text files only.
//! - Atoms themselves are not re-sorted in memory. LJ and Coulomb take list rows by cell slot
//!   instead ([`neighbor::BuildPlan`]: thread t works on the atom in cell slot t, neighbors
//!   are slots, positions are copied into slot order every step), so their gathers stay local
//!   however the atoms have mixed; ANI and browsers (WebGPU's 8 storage buffers per stage)
//!   keep rows by atom, whose gathers follow the storage order. The integrator and PME's
//!   interleaved spread still run in storage order.
//! - The host records the next batch while the GPU runs the current one, but submits it only
//!   after reading the current one's status (one sync per batch of up to 1000 steps).
//! - Full neighbor lists cost `4·capacity` bytes per atom; cell-list mode (no list) is LJ-only.
//! - ANI on the GPU needs orthorhombic boxes with every edge ≥ 2·R_cr (minimum images); the
//!   float64 reference handles any cell with TorchANI's explicit images. The force gather
//!   evaluates each angular triple three times (centre + both sides); the dense layers use
//!   tensor cores (`shaders/mlp_coop.wgsl`, wgpu cooperative matrices) only in f16 on
//!   adapters that offer 16×16×16 f16 → f32 tiles, plain f32/f16 arithmetic elsewhere
//!   (BENCHMARKS.md has the profile).
//! - The viewer's live stepping drops (does not replay) a batch whose neighbor list
//!   overflowed, and its mouse spring's energy is not part of the reported energies.
//! - Coulomb: excluded pairs are found by scanning each atom's few exclusions for every
//!   neighbor (the neighbor list does not know about molecules); the Ewald k-sum is O(N·n_k)
//!   (a reference, not for large systems); the reaction field and DSF skip excluded pairs
//!   without GROMACS-style corrections; per-term energies for `eval` need an extra pass; the
//!   GPU's f32 exclusion and self terms (~80× the NIST SPC/E total) limit it to ~1e-7 of them.
//!   The full neighbor list at a 10 Å cutoff holds ~360 ions per ion in molten NaCl: above
//!   ~1.2M ions it exceeds Vulkan's 2 GiB per-binding limit (the 2,097,152-ion benchmark needs
//!   a half list or a list split across bindings). The NIST SPC/E presets are for evaluation:
//!   without constraints (a later issue) their molecules collapse within a few dozen steps.
//! - The viewer's RDF counts pairs from at most 512 center atoms by brute force (O(512·N)
//!   per sample, twice a second) instead of using the neighbor list.

pub mod ani;
pub mod config;
pub mod engine;
pub mod forces;
pub mod gpu;
pub mod integrate;
pub mod io;
pub mod neighbor;
pub mod observe;
pub mod system;
pub mod units;
#[cfg(feature = "viewer")]
pub mod viewer;
