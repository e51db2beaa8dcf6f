//! Wazo and XiVO versions, and how to find the one installed.
//!
//! Versions are written `YY.MM` or `YY.MM.P` with a leading zero (`16.01`),
//! which strict semver rejects. We normalise them for comparison but always
//! show them as the user's system writes them, since that is what appears
//! in mirror names (`wazo-16.01`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::host::Host;

/// The version files, newest layout first, as listed in the facts file.
pub const VERSION_FILES: [&str; 3] = [
    "/usr/share/wazo/WAZO-VERSION",
    "/usr/share/xivo/XIVO-VERSION",
    "/usr/share/pf-xivo/XIVO-VERSION",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WazoVersion {
    display: String,
    semver: semver::Version,
}

impl WazoVersion {
    /// Parses `16.01`, `19.13`, `26.05.1`; `None` for anything else.
    pub fn parse(text: &str) -> Option<WazoVersion> {
        let display = text.trim();
        let parts: Vec<&str> = display.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || part.len() > 6 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        Some(WazoVersion {
            display: display.to_string(),
            semver: semver::Version::new(numbers[0], numbers[1], numbers[2]),
        })
    }

    /// The version as the system writes it, e.g. `16.01`.
    pub fn as_str(&self) -> &str {
        &self.display
    }
}

impl fmt::Display for WazoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl PartialOrd for WazoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WazoVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.semver.cmp(&other.semver)
    }
}

impl Serialize for WazoVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.display)
    }
}

/// Where the version came from, shown by `info` so a wrong guess is visible.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum VersionSource {
    Option,
    File {
        path: PathBuf,
    },
    /// dpkg's status file: what `apt-cache policy` reads, without its second of start-up.
    Dpkg {
        package: String,
    },
    AptCache,
}

impl fmt::Display for VersionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSource::Option => f.write_str("--wazo-version"),
            VersionSource::File { path } => write!(f, "{}", path.display()),
            VersionSource::Dpkg { package } => write!(f, "dpkg's status of {package}"),
            VersionSource::AptCache => f.write_str("`apt-cache policy wazo-platform`"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Detected {
    pub version: WazoVersion,
    pub source: VersionSource,
}

/// The package whose installed version is the platform's.
const PLATFORM_PACKAGE: &str = "wazo-platform";

/// Finds the installed version: `--wazo-version`, then the version files
/// under the host root, then dpkg's status of wazo-platform, then `apt-cache
/// policy wazo-platform`.
pub fn detect(host: &Host, option: Option<&str>) -> Result<Detected> {
    if let Some(found) = detect_from_files(host, option) {
        return found;
    }
    if let Some(version) = from_apt_cache() {
        return Ok(Detected {
            version,
            source: VersionSource::AptCache,
        });
    }
    let tried: Vec<String> = VERSION_FILES
        .iter()
        .map(|file| host.path(file).display().to_string())
        .collect();
    Err(Error::bad_input(format!(
        "cannot find the Wazo version: none of {} exists and `apt-cache policy wazo-platform` \
         shows no installed version; give it with --wazo-version, e.g. --wazo-version 25.15",
        tried.join(", ")
    )))
}

/// What [`detect`] finds without running anything: the option, the version
/// files, dpkg's status file. `None` when only `apt-cache` is left to ask.
pub fn detect_from_files(host: &Host, option: Option<&str>) -> Option<Result<Detected>> {
    if let Some(text) = option {
        let found = WazoVersion::parse(text)
            .map(|version| Detected {
                version,
                source: VersionSource::Option,
            })
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "--wazo-version {text:?} is not a Wazo version; write it as on the server, e.g. 25.15 or 16.01"
                ))
            });
        return Some(found);
    }
    for file in VERSION_FILES {
        let path = host.path(file);
        if path.exists() {
            return Some(read_version_file(&path).map(|version| Detected {
                version,
                source: VersionSource::File { path },
            }));
        }
    }
    let installed = crate::host::dpkg::installed_version(host, PLATFORM_PACKAGE)?;
    let version = upstream_version(&installed)?;
    Some(Ok(Detected {
        version,
        source: VersionSource::Dpkg {
            package: PLATFORM_PACKAGE.to_string(),
        },
    }))
}

/// The version as a bug report writes it, looked for off the caller's
/// thread: `freeze` starts it once gdb has let go of Asterisk, so that the
/// `apt-cache` fallback (a second or more) overlaps the analysis instead of
/// adding to it, and never runs while Asterisk is stopped.
pub struct Pending(PendingState);

enum PendingState {
    Known(Option<String>),
    Asking(std::thread::JoinHandle<Option<String>>),
}

impl Pending {
    /// Starts the look-up: the files are read at once, `apt-cache` (only
    /// when they say nothing and dpkg's status file could not be read, so
    /// that it can tell something new) runs in a thread.
    pub fn start(host: &Host, option: Option<&str>) -> Pending {
        match detect_from_files(host, option) {
            Some(found) => Pending(PendingState::Known(
                found.ok().map(|detected| detected.version.to_string()),
            )),
            // Its second of start-up would only repeat the status file's answer.
            None if crate::host::dpkg::status_readable(host) => Pending(PendingState::Known(None)),
            None => match std::thread::Builder::new()
                .name("wazo-version".to_string())
                .spawn(|| from_apt_cache().map(|version| version.to_string()))
            {
                Ok(handle) => Pending(PendingState::Asking(handle)),
                Err(_) => Pending(PendingState::Known(
                    from_apt_cache().map(|version| version.to_string()),
                )),
            },
        }
    }

    /// The version, or `None` when nothing said.
    pub fn wait(self) -> Option<String> {
        match self.0 {
            PendingState::Known(version) => version,
            PendingState::Asking(handle) => handle.join().ok().flatten(),
        }
    }
}

/// Reads a version file, refusing empty, binary or garbage content with a
/// message that quotes what was found.
pub fn read_version_file(path: &Path) -> Result<WazoVersion> {
    let bytes = read_head(path, 4096)?;
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::bad_input(format!(
            "{} is empty; it should hold the Wazo version, e.g. 25.15. Give it with --wazo-version",
            path.display()
        )));
    }
    let text = String::from_utf8_lossy(first_line);
    WazoVersion::parse(&text).ok_or_else(|| {
        Error::bad_input(format!(
            "{} does not hold a Wazo version: its first line is {}; \
             give the version with --wazo-version, e.g. --wazo-version 25.15",
            path.display(),
            quote_excerpt(&text)
        ))
    })
}

/// Reads at most `limit` bytes: a version file is one short line, and a
/// wrong path may point at something huge.
fn read_head(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = crate::host::files::open_input(path, "a version file is one line of text")?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::read(path, source))?;
    Ok(bytes)
}

/// Shows untrusted text safely in a message: escaped and cut short.
pub fn quote_excerpt(text: &str) -> String {
    let short: String = text.chars().take(60).collect();
    let cut = if short.len() < text.len() { "..." } else { "" };
    format!("\"{}{cut}\"", short.escape_debug())
}

fn from_apt_cache() -> Option<WazoVersion> {
    let output = duct::cmd!("apt-cache", "policy", "wazo-platform")
        .stderr_null()
        .stdout_capture()
        .unchecked()
        .run()
        .ok()?;
    parse_apt_policy(&String::from_utf8_lossy(&output.stdout))
}

/// Reads the `Installed:` line of `apt-cache policy`, dropping the Debian
/// revision (`26.05.1-1` or `26.05~wazo1` become `26.05.1` and `26.05`).
pub fn parse_apt_policy(output: &str) -> Option<WazoVersion> {
    let installed = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Installed:"))?
        .trim();
    upstream_version(installed)
}

/// A Debian version without its epoch and revision: `1:26.05.1-1` is `26.05.1`.
fn upstream_version(installed: &str) -> Option<WazoVersion> {
    let upstream = installed
        .split(':')
        .next_back()?
        .split(['-', '~', '+'])
        .next()?;
    WazoVersion::parse(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_wazo_version_shapes_and_keeps_display() {
        for text in ["16.01", "19.13", "23.05", "26.05.1"] {
            let version = WazoVersion::parse(text).unwrap();
            assert_eq!(version.to_string(), text);
        }
        assert_eq!(
            WazoVersion::parse("16.01").unwrap().semver,
            semver::Version::new(16, 1, 0)
        );
        assert_eq!(WazoVersion::parse(" 25.15\n").unwrap().as_str(), "25.15");
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "abc",
            "25",
            "25.",
            ".15",
            "25.15.1.2",
            "25.x",
            "-1.2",
            "25.15-rc1",
            "１６.01",
        ] {
            assert!(WazoVersion::parse(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn orders_by_number_not_text() {
        let older = WazoVersion::parse("19.4").unwrap();
        let newer = WazoVersion::parse("19.13").unwrap();
        assert!(older < newer);
        assert!(WazoVersion::parse("26.05.1").unwrap() > WazoVersion::parse("26.05").unwrap());
    }

    #[test]
    fn reads_apt_policy() {
        let out = "wazo-platform:\n  Installed: 26.05.1-1\n  Candidate: 26.05.1-1\n";
        assert_eq!(parse_apt_policy(out).unwrap().as_str(), "26.05.1");
        assert!(parse_apt_policy("wazo-platform:\n  Installed: (none)\n").is_none());
        assert!(parse_apt_policy("").is_none());
    }

    #[test]
    fn dpkg_status_is_read_before_any_apt_cache() {
        let root = tempfile::tempdir().unwrap();
        let host = Host::new(root.path().to_path_buf());
        assert!(detect_from_files(&host, None).is_none());
        std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(
            root.path().join("var/lib/dpkg/status"),
            "Package: wazo-platform\nStatus: install ok installed\nVersion: 26.05.1-1\n\n",
        )
        .unwrap();
        let found = detect_from_files(&host, None).unwrap().unwrap();
        assert_eq!(found.version.as_str(), "26.05.1");
        assert!(matches!(found.source, VersionSource::Dpkg { .. }));
        assert_eq!(
            Pending::start(&host, Some("25.15")).wait().as_deref(),
            Some("25.15")
        );
        assert_eq!(
            Pending::start(&host, None).wait().as_deref(),
            Some("26.05.1")
        );
        // Readable and without wazo-platform: not installed, nothing to ask apt-cache.
        std::fs::write(
            root.path().join("var/lib/dpkg/status"),
            "Package: gdb\nStatus: install ok installed\nVersion: 13.1-3\n\n",
        )
        .unwrap();
        assert!(matches!(
            Pending::start(&host, None).0,
            PendingState::Known(None)
        ));
    }

    #[test]
    fn excerpts_are_escaped_and_short() {
        assert_eq!(quote_excerpt("a\u{0}b"), "\"a\\0b\"");
        assert!(quote_excerpt(&"x".repeat(100)).ends_with("...\""));
    }
}

#[cfg(test)]
mod fuzz_tests;
