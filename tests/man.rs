//! The man pages in `man/` are generated from the clap definition; this
//! test fails when they are stale.
//!
//! Regenerate them with:
//!     WAZO_ASTDEBUG_UPDATE_MAN=1 cargo test --test integration man::

use std::path::Path;

use clap::CommandFactory;
use wazo_astdebug::cli::Cli;

const REGENERATE: &str = "WAZO_ASTDEBUG_UPDATE_MAN=1 cargo test --test integration man::";

/// Every page: the main one and one per subcommand, as `git`-style names.
fn pages() -> Vec<(String, Vec<u8>)> {
    let command = Cli::command();
    let mut pages = Vec::new();
    let mut main = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut main)
        .unwrap();
    pages.push(("wazo-astdebug.1".to_string(), main));
    for sub in command.get_subcommands() {
        let name = format!("wazo-astdebug-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page).unwrap();
        pages.push((format!("{name}.1"), page));
    }
    pages
}

#[test]
fn man_pages_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("WAZO_ASTDEBUG_UPDATE_MAN").is_some();
    let expected = pages();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, page) in &expected {
            std::fs::write(dir.join(name), page).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for (name, page) in &expected {
        if std::fs::read(dir.join(name)).ok().as_ref() != Some(page) {
            stale.push(name.clone());
        }
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    present.retain(|name| !expected.iter().any(|(known, _)| known == name));
    assert!(
        stale.is_empty() && present.is_empty(),
        "man pages are stale ({stale:?}), or left over ({present:?}); regenerate them with:\n    {REGENERATE}"
    );
}

#[test]
fn exit_codes_are_documented() {
    let (_, main) = &pages()[0];
    let main = String::from_utf8_lossy(main);
    for code in ["130", "interrupted", "bad usage"] {
        assert!(main.contains(code), "the man page does not mention {code}");
    }
}
