//! Interactive use of a [`Simulation`]: steering (time step, thermostat, dragging an atom),
//! direct access to the GPU buffers for drawing, and [`LiveStepper`], which runs batches of
//! steps without ever waiting for the GPU: it submits one batch, and a later poll collects its
//! status record through [`Readback`] before the next batch is submitted.
//!
//! The safety nets of [`Simulation::advance`] hold here too: the batch is snapshotted first,
//! so an overflowed neighbor list rolls it back (the batch's steps are dropped, not replayed,
//! which an interactive run does not miss), and a blow-up is reported as an error.

use anyhow::{anyhow, bail, Result};

use super::{Simulation, StatusRecord, STAGING_BYTES};
use crate::forces::drag::{Drag, DragForce};
use crate::gpu::params::status;
use crate::integrate::{Integrator, IntegratorKernels, Method};
use crate::observe::readback::Readback;
use crate::observe::Thermo;

impl Simulation {
    /// Positions on the GPU: `array<vec4f>`, xyz wrapped into [0, L), w = type index bits.
    pub fn positions_buffer(&self) -> &wgpu::Buffer {
        &self.bufs.pos
    }
    /// Velocities on the GPU: `array<vec4f>`, xyz, w = 1 / mass.
    pub fn velocities_buffer(&self) -> &wgpu::Buffer {
        &self.bufs.vel
    }

    /// Replaces the integrator (time step, NVE ↔ Langevin, target temperature) between
    /// batches; an invalid one is refused and the old one kept.
    pub fn set_integrator(&mut self, integ: Integrator) -> Result<()> {
        integ.validate()?;
        let mut kernels = IntegratorKernels::new(
            &self.ctx,
            &integ.method,
            self.mixed,
            self.nbr.pair_rule().map(|r| r.cap),
        )?;
        kernels.bind(&self.ctx, &self.bufs.named())?;
        let (c1, kt, seed) = match integ.method {
            Method::Langevin {
                temperature, seed, ..
            } => (integ.c1(), self.spec.units.kb() * temperature, seed),
            Method::VelocityVerlet => (1.0, 0.0, 0),
        };
        self.params.dt = integ.dt as f32;
        self.params.lang_c1 = c1 as f32;
        self.params.lang_kt = kt as f32;
        self.params.seed_lo = seed as u32;
        self.params.seed_hi = (seed >> 32) as u32;
        self.ctx
            .queue
            .write_buffer(&self.bufs.params, 0, bytemuck::bytes_of(&self.params));
        self.integ = kernels;
        self.spec.integrator = integ;
        Ok(())
    }

    /// Like [`Simulation::new`], but never waits for the GPU (a browser cannot): the neighbor
    /// list is sized from the host estimate and the first build and force evaluation are only
    /// submitted. A [`LiveStepper::new_nonblocking`] then finds an overflow or a blow-up in
    /// its first status readback, regrows and rebuilds, again without waiting.
    pub fn new_nonblocking(
        ctx: std::sync::Arc<crate::gpu::GpuContext>,
        spec: super::SimSpec,
    ) -> Result<Simulation> {
        let sim = Self::new_unbuilt(ctx, spec)?;
        let mut st = vec![0u32; status::LEN];
        st[status::BLOWUP_ATOM] = u32::MAX;
        st[status::REBUILDS] = 1;
        sim.ctx
            .queue
            .write_buffer(&sim.bufs.status, 0, bytemuck::cast_slice(&st));
        sim.submit_rebuild_and_forces();
        Ok(sim)
    }

    /// The non-blocking twin of `rebuild_and_forces`: clears the rebuild bookkeeping words
    /// (queue writes land before the next submission), then submits a full cell-list +
    /// neighbor build and a force evaluation. Whether the list fitted shows in the status
    /// record of the next batch. The blow-up flag is cleared too: forces from an overflowed
    /// first build (never checked, unlike the native path) can set it spuriously, and the
    /// fresh force evaluation sets it again if the state really is unstable.
    pub(super) fn submit_rebuild_and_forces(&self) {
        for (word, value) in [
            (status::MAX_DISP2, 0),
            (status::MAX_NBRS, 0),
            (status::FORCE_REBUILD, 0),
            (status::BLOWUP, 0),
            (status::BLOWUP_ATOM, u32::MAX),
            (status::BLOWUP_STEP, 0),
            (status::MISSED, 0),
            (status::LAST_BUILD, self.step as u32),
        ] {
            self.ctx.queue.write_buffer(
                &self.bufs.status,
                4 * word as u64,
                bytemuck::bytes_of(&value),
            );
        }
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            self.cells.encode(&mut pass, self.launch_direct());
            self.nbr.encode_build(&mut pass, self.launch_direct());
            self.encode_forces(&mut pass, true);
        }
        self.ctx.queue.submit([enc.finish()]);
    }

    /// Starts, moves or (with None) ends the mouse spring on one atom.
    pub fn set_drag(&mut self, drag: Option<Drag>) -> Result<()> {
        let Some(d) = drag else {
            self.drag = None;
            return Ok(());
        };
        if d.atom as usize >= self.n_atoms() {
            bail!(
                "cannot drag atom {}: there are {} atoms",
                d.atom,
                self.n_atoms()
            );
        }
        if !(d.k.is_finite() && d.k >= 0.0) || d.target.iter().any(|x| !x.is_finite()) {
            bail!("the drag spring needs a finite target and a non-negative stiffness");
        }
        if self.drag.is_none() {
            let mut f = DragForce::new(&self.ctx)?;
            f.bind(&self.ctx, &self.bufs.named())?;
            self.drag = Some(f);
        }
        if let Some(f) = &self.drag {
            f.set(&self.ctx, &d);
        }
        Ok(())
    }
}

/// Runs batches of steps with at most one in flight and never blocks on its result.
pub struct LiveStepper {
    readback: Readback,
    in_flight: Option<u32>,
    /// Recover from an overflow by waiting for a host-driven rebuild (native), or by only
    /// submitting one (the browser, see [`Simulation::new_nonblocking`]).
    blocking_recovery: bool,
}

impl LiveStepper {
    pub fn new(sim: &Simulation) -> LiveStepper {
        LiveStepper {
            readback: Readback::new(&sim.ctx.device, "live status", STAGING_BYTES),
            in_flight: None,
            blocking_recovery: true,
        }
    }

    /// A stepper that never waits for the GPU, also when the neighbor list overflows: the
    /// partner of [`Simulation::new_nonblocking`].
    pub fn new_nonblocking(sim: &Simulation) -> LiveStepper {
        LiveStepper {
            blocking_recovery: false,
            ..LiveStepper::new(sim)
        }
    }

    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Submits `n` steps (0 = just sample the current state) and the energy reduction; refuses
    /// (returns false) while the previous batch is still in flight.
    pub fn submit(&mut self, sim: &mut Simulation, n: u32) -> Result<bool> {
        if self.in_flight.is_some() {
            return Ok(false);
        }
        let Some(slot) = self.readback.reserve() else {
            return Ok(false);
        };
        let every = sim.check_every;
        sim.sync_check_every(every);
        sim.reset_lifetime();
        let b = &sim.bufs;
        let mut enc = sim.ctx.device.create_command_encoder(&Default::default());
        b.encode_snapshot(&mut enc, true);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            sim.encode_steps(&mut pass, n, every);
            sim.reduce.encode(&mut pass);
        }
        let staging = self.readback.buffer(&slot);
        enc.copy_buffer_to_buffer(&b.status, 0, staging, 0, 4 * status::LEN as u64);
        enc.copy_buffer_to_buffer(&b.observables, 0, staging, 4 * status::LEN as u64, 16);
        sim.ctx.queue.submit([enc.finish()]);
        self.readback.submitted(slot);
        self.in_flight = Some(n);
        Ok(true)
    }

    /// Collects the in-flight batch if it has finished (after `device.poll`): Some(thermo)
    /// once it has, None while it runs or after an overflow rollback; an unstable simulation
    /// or a lost device is an error.
    pub fn poll(&mut self, sim: &mut Simulation) -> Result<Option<Thermo>> {
        let Some(n) = self.in_flight else {
            return Ok(None);
        };
        let Some(bytes) = self.readback.take().map_err(|e| anyhow!(e))? else {
            return Ok(None);
        };
        self.in_flight = None;
        // A Vec<u8> has no alignment guarantee for u32 views: copy instead of casting.
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes[..STAGING_BYTES as usize]);
        let st = StatusRecord::from_words(&words);
        // Rare (the list grows by 25% each time; misses drop the opportunity interval to 1).
        // Natively the recovery may wait for the GPU; in the browser the next batch's status
        // record tells whether the new list fits.
        if sim.undo_if_invalid(&st, self.blocking_recovery)? {
            return Ok(None);
        }
        sim.check_blowup(&st)?;
        sim.adapt_check_every(&st);
        sim.note(&st);
        sim.step += n as u64;
        Ok(Some(sim.to_thermo(st.obs)))
    }
}
