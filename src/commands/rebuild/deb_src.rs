//! The `deb-src` line apt needs to fetch Asterisk's source: found in
//! either of Wazo's apt source files, enabled by a checked edit (and a `sed`
//! for the dry run) that the backup undoes.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::context::Context;
use crate::engine::command::Cmd;
use crate::engine::edit::FileEdit;
use crate::error::{Error, Result};
use crate::host::apt_sources::SOURCES_FILES;

static COMMENTED_DEB_SRC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^#[ \t]*deb-src([ \t])").expect("a valid regex"));
static ACTIVE_DEB_SRC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^deb-src[ \t]").expect("a valid regex"));

/// The Wazo apt sources with a `deb-src` line, commented or not. Both file
/// names, as the doc's `xivo*` glob misses `wazo-dist.list` (19.13+).
pub fn deb_src_sources(context: &Context) -> Result<Vec<(PathBuf, bool)>> {
    let mut found = Vec::new();
    for file in SOURCES_FILES {
        let path = context.host.path(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if COMMENTED_DEB_SRC.is_match(&text) {
            found.push((path, true));
        } else if ACTIVE_DEB_SRC.is_match(&text) {
            found.push((path, false));
        }
    }
    if found.is_empty() {
        return Err(Error::bad_input(format!(
            "none of {} has a deb-src line (commented or not), so apt cannot fetch Asterisk's \
             source; nothing was changed. wazo-dist writes one: run `wazo-dist -m <your mirror>`, \
             or add `deb-src URL DIST main` by hand",
            SOURCES_FILES
                .iter()
                .map(|file| context.host.path(file).display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        )));
    }
    Ok(found)
}

fn enable_deb_src(text: &str) -> std::result::Result<String, String> {
    if !COMMENTED_DEB_SRC.is_match(text) && !ACTIVE_DEB_SRC.is_match(text) {
        return Err("it has no deb-src line, so apt cannot fetch Asterisk's source".to_string());
    }
    Ok(COMMENTED_DEB_SRC
        .replace_all(text, "deb-src$1")
        .into_owned())
}

pub fn deb_src_edit(path: &Path) -> FileEdit {
    FileEdit::new(path, "uncomment the deb-src line", enable_deb_src).with_shell(Cmd::new([
        "sed".to_string(),
        "-i".to_string(),
        "-E".to_string(),
        "s/^#[[:blank:]]*deb-src([[:blank:]])/deb-src\\1/".to_string(),
        path.to_string_lossy().to_string(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_src_is_uncommented_only_where_commented() {
        let text = "\n# pelican-bookworm\ndeb http://m/debian pelican-bookworm main\n# deb-src http://m/debian pelican-bookworm main\n";
        assert_eq!(
            enable_deb_src(text).unwrap(),
            "\n# pelican-bookworm\ndeb http://m/debian pelican-bookworm main\ndeb-src http://m/debian pelican-bookworm main\n"
        );
        assert!(COMMENTED_DEB_SRC.is_match("#deb-src http://x d main"));
        assert!(!COMMENTED_DEB_SRC.is_match("# deb-src-thing"));
    }
}
