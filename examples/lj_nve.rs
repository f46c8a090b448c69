//! The smallest use of the library: a 4,000-atom LJ liquid in reduced units, run NVE on the
//! GPU, printing the thermodynamic state every 100 steps.
//!
//!     cargo run --release --example lj_nve

use wgmd::engine::{SimSpec, Simulation};
use wgmd::forces::lj::LjSpec;
use wgmd::gpu::{GpuContext, GpuOptions};
use wgmd::integrate::{Integrator, Method};
use wgmd::system::{lattice_system, Lattice};
use wgmd::units::Units;

fn main() -> anyhow::Result<()> {
    let a = Lattice::Fcc.constant_for_density(0.8442);
    let mut system = lattice_system(Lattice::Fcc, [10, 10, 10], a, "A", 1.0);
    system.maxwell_boltzmann(1.44, 87287, Units::Lj);
    let spec = SimSpec {
        system,
        units: Units::Lj,
        lj: LjSpec {
            cutoff: 2.5,
            shift: true,
            tail: false,
            sigma: vec![1.0],
            epsilon: vec![1.0],
            pairs: vec![],
        },
        skin: 0.3,
        integrator: Integrator {
            dt: 0.005,
            method: Method::VelocityVerlet,
        },
    };
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
