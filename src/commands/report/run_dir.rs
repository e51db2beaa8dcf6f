//! The run directory: which one to pack when none is named, and what in
//! it can go in the bundle.
//!
//! The walk lists directories and regular files only, sorted by name so
//! that bundles are reproducible; anything else (a symlink could point at
//! /etc/shadow, a FIFO would block) is left out with its reason, before a
//! byte of it is read.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Serialize;

use crate::error::{Error, Result};

/// A file or directory that stays out of the bundle, and why.
#[derive(Debug, Serialize)]
pub struct LeftOut {
    pub path: String,
    pub reason: String,
}

/// The newest `<YYYYMMDD-HHMMSS>-<hostname>` directory under `base`, by
/// modification time (a run touched later, e.g. by a second `crash` into
/// the same directory, is the one the engineer is working on).
pub fn newest_run_dir(base: &Path) -> Result<PathBuf> {
    let read = fs::read_dir(base).map_err(|error| {
        if error.kind() == io::ErrorKind::NotFound {
            Error::bad_input(format!(
                "no run directory: {} does not exist. Name the directory to pack \
                 (`wazo-astdebug report DIR`), or run a command that collects data first",
                base.display()
            ))
        } else {
            Error::read(base, error)
        }
    })?;
    let newest = read
        .filter_map(|entry| entry.ok())
        .filter(|entry| is_run_name(&entry.file_name().to_string_lossy()))
        .filter_map(|entry| {
            let meta = entry.path().symlink_metadata().ok()?;
            meta.is_dir()
                .then(|| (meta.modified().unwrap_or(UNIX_EPOCH), entry.file_name()))
        })
        .max();
    match newest {
        Some((_, name)) => Ok(base.join(name)),
        None => Err(Error::bad_input(format!(
            "no run directory (named YYYYMMDD-HHMMSS-HOSTNAME) under {}. Name the directory \
             to pack: `wazo-astdebug report DIR`",
            base.display()
        ))),
    }
}

pub fn is_run_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 16
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'-'
        && bytes[9..15].iter().all(u8::is_ascii_digit)
        && bytes[15] == b'-'
}

/// What the walk found to go in.
pub enum Entry {
    Dir { path: PathBuf, relative: PathBuf },
    File { path: PathBuf, relative: PathBuf },
}

/// Lists what can go in, sorted by name so that bundles are reproducible.
/// Symlinks are never followed: one could point at /etc/shadow.
pub fn walk(dir: &Path, relative: &Path, entries: &mut Vec<Entry>, left_out: &mut Vec<LeftOut>) {
    let mut children: Vec<_> = match fs::read_dir(dir) {
        Ok(read) => read.filter_map(|entry| entry.ok()).collect(),
        Err(error) => {
            left_out.push(left(
                relative,
                format!("cannot read this directory: {error}"),
            ));
            return;
        }
    };
    children.sort_by_key(|entry| entry.file_name());
    for child in children {
        let path = child.path();
        let child_relative = relative.join(child.file_name());
        let file_type = match path.symlink_metadata() {
            Ok(meta) => meta.file_type(),
            Err(error) => {
                left_out.push(left(&child_relative, format!("cannot read: {error}")));
                continue;
            }
        };
        if file_type.is_dir() {
            entries.push(Entry::Dir {
                path: path.clone(),
                relative: child_relative.clone(),
            });
            walk(&path, &child_relative, entries, left_out);
        } else if file_type.is_file() {
            entries.push(Entry::File {
                path,
                relative: child_relative,
            });
        } else {
            let what = match () {
                _ if file_type.is_symlink() => "symbolic link, not followed (it may point outside)",
                _ if file_type.is_fifo() => "not a regular file (named pipe)",
                _ if file_type.is_socket() => "not a regular file (socket)",
                _ => "not a regular file (device)",
            };
            left_out.push(left(&child_relative, what.to_string()));
        }
    }
}

pub fn left(relative: &Path, reason: String) -> LeftOut {
    LeftOut {
        path: relative.display().to_string(),
        reason,
    }
}
