//! What dpkg says is installed, read from its status file rather than by
//! running dpkg-query, so that it also works on a copy of a server's files
//! under `--root`.

use crate::host::Host;

/// dpkg's database: read directly, so that it also works on a copy of a
/// server's files under `--root`.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// Whether dpkg's status file can be read. When it can, what it lacks is
/// not installed: `apt-cache policy` reads its `Installed:` line from it too.
pub fn status_readable(host: &Host) -> bool {
    std::fs::File::open(host.path(DPKG_STATUS)).is_ok()
}

/// The installed version of `package`, from dpkg's status file.
pub fn installed_version(host: &Host, package: &str) -> Option<String> {
    let text = std::fs::read_to_string(host.path(DPKG_STATUS)).ok()?;
    parse_status(&text, package)
}

fn parse_status(text: &str, package: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        (field("Package") == Some(package)
            && field("Status").is_some_and(|status| status.ends_with(" installed")))
        .then(|| field("Version").map(str::to_string))
        .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_stanzas_give_installed_versions_only() {
        let status = "Package: asterisk\nStatus: deinstall ok config-files\nVersion: 8:20.5.0-1\n\n\
                      Package: asterisk-vanilla\nStatus: install ok installed\nPriority: optional\n\
                      Version: 8:20.5.0-1wazo1\nDescription: x\n more\n";
        assert_eq!(
            parse_status(status, "asterisk-vanilla").as_deref(),
            Some("8:20.5.0-1wazo1")
        );
        assert_eq!(parse_status(status, "asterisk"), None);
        assert_eq!(parse_status(status, "asterisk-vanilla-dbg"), None);
    }
}
