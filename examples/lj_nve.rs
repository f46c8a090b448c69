//! The smallest use of the library: a 4,000-atom LJ liquid in reduced units, run NVE on the
//! GPU, printing the thermodynamic state every 100 steps.
//!
//!     cargo run --release --example lj_nve

use wgmd::engine::{SimSpec, Simulation};
use wgmd::gpu::{GpuContext, GpuOptions};

fn main() -> anyhow::Result<()> {
    // LAMMPS in.lj on 10³ cells, with a shifted cutoff so the total energy is conserved.
    let mut spec = SimSpec::lammps_in_lj(10);
    spec.lj.shift = true;
    let ctx = GpuContext::new(&GpuOptions::default())?;
    let mut sim = Simulation::new(ctx, spec)?;
    println!("step  temperature  potential  total");
    for _ in 0..10 {
        let t = sim.advance(100, true)?.expect("sampled");
        println!(
            "{:5} {:11.5} {:10.2} {:10.2}",
            t.step, t.temperature, t.potential_energy, t.total_energy
        );
    }
    Ok(())
}
