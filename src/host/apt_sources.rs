//! Which distribution apt points at, read from the file wazo-dist/xivo-dist
//! writes.
//!
//! Neither tool has a "show current" flag, and knowing whether apt still
//! points at an archive is how we spot a previous run that was cut short.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::host::Host;

/// The files the dist tools rewrite, newest first.
pub const SOURCES_FILES: [&str; 2] = [
    "/etc/apt/sources.list.d/wazo-dist.list",
    "/etc/apt/sources.list.d/xivo-dist.list",
];

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AptSource {
    pub file: PathBuf,
    pub url: String,
    pub distribution: String,
    /// True when apt points at a version archive rather than the main mirror.
    pub points_at_archive: bool,
}

/// The current distribution, from the first of [`SOURCES_FILES`] that exists.
pub fn current(host: &Host) -> Result<Option<AptSource>> {
    for file in SOURCES_FILES {
        let path = host.path(file);
        if !path.exists() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|source| Error::read(&path, source))?;
        let text = String::from_utf8_lossy(&bytes);
        return Ok(parse(&text).map(|(url, distribution)| AptSource {
            points_at_archive: is_archive(&url, &distribution),
            file: path,
            url,
            distribution,
        }));
    }
    Ok(None)
}

/// The URL and distribution of the first `deb` line.
pub fn parse(text: &str) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            return None;
        }
        let mut url = words.next()?;
        if url.starts_with('[') {
            // `[arch=amd64 signed-by=...]` options may span several words.
            let mut option = url;
            while !option.ends_with(']') {
                option = words.next()?;
            }
            url = words.next()?;
        }
        let distribution = words.next()?;
        Some((url.to_string(), distribution.to_string()))
    })
}

/// `wazo-dist -a` points at the `/archive/` path with a `wazo-VERSION` (or
/// `xivo-VERSION`) distribution.
fn is_archive(url: &str, distribution: &str) -> bool {
    let versioned = ["wazo-", "xivo-"].iter().any(|prefix| {
        distribution
            .strip_prefix(prefix)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|first| first.is_ascii_digit())
    });
    url.trim_end_matches('/').ends_with("/archive") || url.contains("/archive/") || versioned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_wazo_dist_writes() {
        let text = "\n# pelican-bookworm\ndeb http://mirror.wazo.community/debian/ pelican-bookworm main\n# deb-src http://mirror.wazo.community/debian/ pelican-bookworm main\n";
        let (url, dist) = parse(text).unwrap();
        assert_eq!(dist, "pelican-bookworm");
        assert!(!is_archive(&url, &dist));
        let text = "\n# wazo-25.15\ndeb http://mirror.wazo.community/archive/ wazo-25.15 main\n";
        let (url, dist) = parse(text).unwrap();
        assert!(is_archive(&url, &dist));
    }

    #[test]
    fn tolerates_options_and_garbage() {
        assert_eq!(
            parse("deb [arch=amd64 signed-by=/k.gpg] http://h/debian phoenix main")
                .unwrap()
                .1,
            "phoenix"
        );
        assert!(parse("").is_none());
        assert!(parse("deb\n# deb-src http://h/ d main\n").is_none());
        assert!(is_archive("http://h/debian", "xivo-16.01"));
        assert!(!is_archive("http://h/debian", "xivo-five"));
    }
}

#[cfg(test)]
mod fuzz_tests;
