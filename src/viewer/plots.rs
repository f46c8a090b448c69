//! The plotted series (energies, temperature, pressure vs time; g(r); speed distribution)
//! and their CSV export.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::io::AtomicFile;
use crate::observe::Thermo;

/// Keeps the plots light: older samples are thinned by half when this many accumulate.
const MAX_SAMPLES: usize = 4000;

#[derive(Default)]
pub struct Series {
    pub samples: Vec<Thermo>,
    /// g(r) and speed density at bin centres, and the Maxwell–Boltzmann curve, newest sample.
    pub rdf: Vec<[f64; 2]>,
    pub speed: Vec<[f64; 2]>,
    pub mb: Vec<[f64; 2]>,
}

impl Series {
    pub fn push(&mut self, t: Thermo) {
        if self.samples.len() >= MAX_SAMPLES {
            let kept: Vec<Thermo> = self.samples.iter().step_by(2).copied().collect();
            self.samples = kept;
        }
        self.samples.push(t);
    }

    fn line<'a>(&self, name: &str, f: impl Fn(&Thermo) -> f64) -> Line<'a> {
        let pts: Vec<[f64; 2]> = self.samples.iter().map(|s| [s.time, f(s)]).collect();
        Line::new(name.to_string(), PlotPoints::from(pts)).width(1.5)
    }

    /// Five stacked plots filling `ui`'s width; `units` labels the axes.
    pub fn show(
        &self,
        ui: &mut egui::Ui,
        energy_unit: &str,
        time_unit: &str,
        t_unit: &str,
        p_unit: &str,
    ) {
        let h = ((ui.available_height() - 100.0) / 5.0).max(60.0);
        ui.label(format!("Energy ({energy_unit}) vs time ({time_unit})"));
        Plot::new("energy")
            .height(h)
            .legend(Legend::default())
            .show(ui, |p| {
                p.line(self.line("potential", |s| s.potential_energy));
                p.line(self.line("kinetic", |s| s.kinetic_energy));
                p.line(self.line("total", |s| s.total_energy));
            });
        ui.label(format!("Temperature ({t_unit})"));
        Plot::new("temperature")
            .height(h)
            .show(ui, |p| p.line(self.line("temperature", |s| s.temperature)));
        ui.label(format!("Pressure ({p_unit})"));
        Plot::new("pressure")
            .height(h)
            .show(ui, |p| p.line(self.line("pressure", |s| s.pressure)));
        ui.label("Radial distribution g(r)");
        Plot::new("rdf").height(h).show(ui, |p| {
            p.line(Line::new("g(r)", PlotPoints::from(self.rdf.clone())).width(1.5))
        });
        ui.label("Speed distribution and Maxwell–Boltzmann at the current T");
        Plot::new("speed")
            .height(h)
            .legend(Legend::default())
            .show(ui, |p| {
                p.line(Line::new("measured", PlotPoints::from(self.speed.clone())).width(1.5));
                p.line(
                    Line::new("Maxwell–Boltzmann", PlotPoints::from(self.mb.clone())).width(1.5),
                );
            });
    }

    /// Writes the time series as CSV (the `wgmd run --log` columns), atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut f = AtomicFile::create(path)?;
        writeln!(f.writer(), "{}", crate::observe::CSV_HEADER)?;
        for s in &self.samples {
            writeln!(f.writer(), "{}", s.csv_row())?;
        }
        f.commit()
    }
}
