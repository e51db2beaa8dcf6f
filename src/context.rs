//! What every command gets: the global options, the host, the interrupt
//! flag, and the output directory where artefacts and the run log go.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cli::GlobalOpts;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::interrupt::Interrupt;

/// Where runs go when `--output-dir` is not given.
pub const DEFAULT_OUTPUT_BASE: &str = "/var/local/wazo-astdebug";

pub struct Context {
    pub opts: GlobalOpts,
    pub host: Host,
    pub interrupt: Interrupt,
    output_dir: OnceLock<PathBuf>,
}

impl Context {
    pub fn new(opts: GlobalOpts, interrupt: Interrupt) -> Context {
        let host = Host::new(opts.root.clone());
        Context {
            opts,
            host,
            interrupt,
            output_dir: OnceLock::new(),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.opts.dry_run
    }

    /// Where this run's artefacts go; nothing is created (for `--dry-run`).
    pub fn output_path(&self) -> &Path {
        self.output_dir.get_or_init(|| match &self.opts.output_dir {
            Some(dir) => dir.clone(),
            None => Path::new(DEFAULT_OUTPUT_BASE).join(format!(
                "{}-{}",
                chrono::Local::now().format("%Y%m%d-%H%M%S"),
                hostname()
            )),
        })
    }

    /// The run's output directory, created (mode 0700) on first use: artefacts
    /// may hold backtraces with passwords in them.
    pub fn output_dir(&self) -> Result<&Path> {
        let dir = self.output_path();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| Error::write(dir, source))?;
        Ok(dir)
    }
}

/// Whether we run as root, as every procedure that changes the server must.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Refuses, before anything runs, to change the system without root.
pub fn require_root(what: &str) -> Result<()> {
    if is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot {
            what: what.to_string(),
        })
    }
}

/// Creates `path` for writing, readable by its owner only.
pub fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| Error::write(path, source))
}

/// This machine's host name, for artefact names as the doc makes them.
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
