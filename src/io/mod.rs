//! File formats and safe output.

pub mod nist_spce;
pub mod pdb;
pub mod xyz;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// An output file written under a temporary name in the same directory and renamed into
/// place only by [`AtomicFile::commit`], so a failed run never leaves a half-written file
/// under the requested name. If dropped uncommitted (an error), what was written is kept as
/// `<name>.incomplete` so no data is lost, and that name is reported.
pub struct AtomicFile {
    path: PathBuf,
    tmp: Option<tempfile::NamedTempFile>,
    writer: Option<std::io::BufWriter<std::fs::File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(&format!(
                ".{}.",
                path.file_name().and_then(|s| s.to_str()).unwrap_or("out")
            ))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create an output file in '{}'", dir.display()))?;
        let writer = std::io::BufWriter::new(
            tmp.reopen()
                .with_context(|| format!("cannot open '{}'", path.display()))?,
        );
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            writer: Some(writer),
        })
    }

    pub fn writer(&mut self) -> &mut impl Write {
        self.writer.as_mut().expect("writer present until commit")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(mut self) -> Result<()> {
        let mut w = self.writer.take().expect("writer");
        w.flush()
            .with_context(|| format!("cannot write '{}'", self.path.display()))?;
        w.get_ref().sync_all().ok();
        drop(w);
        let tmp = self.tmp.take().expect("temp file");
        tmp.persist(&self.path)
            .with_context(|| format!("cannot move the output into '{}'", self.path.display()))?;
        Ok(())
    }

    fn keep_incomplete(&mut self) -> Option<PathBuf> {
        let mut w = self.writer.take()?;
        let _ = w.flush();
        drop(w);
        let tmp = self.tmp.take()?;
        if tmp
            .as_file()
            .metadata()
            .map(|m| m.len() == 0)
            .unwrap_or(true)
        {
            return None;
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(".incomplete");
        let p = PathBuf::from(name);
        tmp.persist(&p).ok().map(|_| p)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        self.keep_incomplete();
    }
}
