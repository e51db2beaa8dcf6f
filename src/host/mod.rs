//! The machine being debugged, seen through `--root`.
//!
//! Support engineers often analyse a copy of a server's files on their own
//! machine, and the tests need a fake server tree: every host path goes
//! through [`Host::path`] so that both work without special cases.

pub mod addresses;
pub mod apt_sources;
pub mod asterisk;
pub mod changelog;
pub mod debian_rules;
pub mod dpkg;
pub mod elf_symbols;
pub mod files;
pub mod glibc;
pub mod procfs;
pub mod read_buffer;
pub mod runbook;
pub mod sys;
pub mod valgrind_conf;
pub mod version;

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: PathBuf) -> Host {
        Host { root }
    }

    /// Where the host's absolute path `absolute` is on this machine.
    pub fn path(&self, absolute: impl AsRef<Path>) -> PathBuf {
        let absolute = absolute.as_ref();
        let relative = absolute.strip_prefix("/").unwrap_or(absolute);
        self.root.join(relative)
    }

    /// True when `--root` is `/`: processes, `/proc` and the local tools are
    /// then those of the host being debugged.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rebased_under_root() {
        let host = Host::new(PathBuf::from("/tmp/copy"));
        assert_eq!(
            host.path("/usr/share/wazo/WAZO-VERSION"),
            PathBuf::from("/tmp/copy/usr/share/wazo/WAZO-VERSION")
        );
        assert!(!host.is_live());
        assert!(Host::new(PathBuf::from("/")).is_live());
    }
}
