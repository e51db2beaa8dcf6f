//! A new `debian/changelog` entry for a debug rebuild, as `dch` would write it.
//!
//! The doc says "append +debug1 to the version with vim". Editing the
//! version of the top entry in place would make the rebuilt package claim to
//! be Wazo's build; a new entry keeps the history honest, and `+debug1`
//! sorts after Wazo's version, so `dpkg -i` replaces the running package and
//! `apt-get upgrade` does not silently put Wazo's build back. The format is
//! Debian policy 4.4: `dpkg-parsechangelog` must read it, or
//! `dpkg-buildpackage` fails half an hour into the build.

use std::sync::LazyLock;

use regex::Regex;

static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<source>[a-z0-9][a-z0-9.+-]+) \((?P<version>[^ ()]+)\) (?P<dists>[^;]+);(?P<rest>.*)$")
        .expect("a valid regex")
});

static DEBUG_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+debug(?P<n>[0-9]+)$").expect("a valid regex"));

/// The first entry's source, version and distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub source: String,
    pub version: String,
    pub distribution: String,
}

pub fn top(text: &str) -> Result<Top, String> {
    let first = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .ok_or("it is empty")?;
    let captures = HEADER
        .captures(first)
        .ok_or_else(|| format!("its first line is not a changelog entry header: {first:?}"))?;
    Ok(Top {
        source: captures["source"].to_string(),
        version: captures["version"].to_string(),
        distribution: captures["dists"].trim().to_string(),
    })
}

/// `+debug1` appended, or the number after `+debug` raised on a second rebuild.
pub fn debug_version(version: &str) -> String {
    match DEBUG_SUFFIX.captures(version) {
        Some(captures) => {
            let next = captures["n"].parse::<u64>().map_or(1, |n| n + 1);
            format!(
                "{}+debug{next}",
                &version[..captures.get(0).map_or(0, |m| m.start())]
            )
        }
        None => format!("{version}+debug1"),
    }
}

/// The version as it appears in `.deb` file names: no epoch.
pub fn without_epoch(version: &str) -> &str {
    version.split_once(':').map_or(version, |(_, rest)| rest)
}

/// Who the entry is from, as dch finds it: DEBFULLNAME/DEBEMAIL, then
/// NAME/EMAIL, then root at this host.
pub fn maintainer_from_env() -> (String, String) {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let name = var("DEBFULLNAME")
        .or_else(|| var("NAME"))
        .unwrap_or_else(|| "wazo-astdebug".to_string());
    let email = var("DEBEMAIL")
        .or_else(|| var("EMAIL"))
        .unwrap_or_else(|| format!("root@{}", crate::host::sys::hostname()));
    (name, email)
}

/// `text` with a new first entry; `change` is the bullet's text.
pub fn add_entry(
    text: &str,
    change: &str,
    name: &str,
    email: &str,
    date: &str,
) -> Result<(String, String), String> {
    let top = top(text)?;
    let version = debug_version(&top.version);
    let entry = format!(
        "{} ({version}) {}; urgency=medium\n\n  * {change}\n\n -- {name} <{email}>  {date}\n\n",
        top.source, top.distribution
    );
    Ok((format!("{entry}{text}"), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAZO: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/asterisk-src/debian/changelog"
    ));

    #[test]
    fn the_new_entry_goes_first_with_debug1() {
        let (new, version) = add_entry(
            WAZO,
            "Rebuild with DEBUG_THREADS, DONT_OPTIMIZE (wazo-astdebug)",
            "Jane Support",
            "jane@example.com",
            "Sat, 28 Nov 2026 05:05:57 +0000",
        )
        .unwrap();
        assert_eq!(version, "8:20.5.0-1wazo1+debug1");
        assert!(new.starts_with(
            "asterisk (8:20.5.0-1wazo1+debug1) wazo-dev-bookworm; urgency=medium\n\n  \
             * Rebuild with DEBUG_THREADS, DONT_OPTIMIZE (wazo-astdebug)\n\n \
             -- Jane Support <jane@example.com>  Sat, 28 Nov 2026 05:05:57 +0000\n\n\
             asterisk (8:20.5.0-1wazo1) wazo-dev-bookworm;"
        ));
        assert!(new.ends_with(WAZO));
    }

    #[test]
    fn a_second_rebuild_counts_up() {
        assert_eq!(debug_version("1:2-3+debug1"), "1:2-3+debug2");
        assert_eq!(debug_version("1:2-3+debug9"), "1:2-3+debug10");
        assert_eq!(debug_version("20.5.0-1"), "20.5.0-1+debug1");
        assert_eq!(
            without_epoch("8:20.5.0-1wazo1+debug1"),
            "20.5.0-1wazo1+debug1"
        );
        assert_eq!(without_epoch("20.5.0-1"), "20.5.0-1");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(add_entry("", "x", "n", "e", "d").is_err());
        assert!(add_entry("hello world\n", "x", "n", "e", "d").is_err());
    }
}
