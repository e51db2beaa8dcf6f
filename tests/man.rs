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
        add_pages(sub, "wazo-astdebug", &mut pages);
    }
    pages
}

/// The page of `sub` (`wazo-astdebug-vanilla.1`), and of its own
/// subcommands (`wazo-astdebug-vanilla-install.1`), which its page lists.
fn add_pages(sub: &clap::Command, parent: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let name = format!("{}-{}", parent.replace(' ', "-"), sub.get_name());
    // The page is wazo-astdebug-graph(1), git-style; its synopsis is what a
    // user types: `wazo-astdebug graph ...`.
    let typed = format!("{parent} {}", sub.get_name());
    let page_command = sub.clone().name(name.clone()).bin_name(typed.clone());
    let mut page = Vec::new();
    clap_mangen::Man::new(page_command)
        .render(&mut page)
        .unwrap();
    pages.push((format!("{name}.1"), page));
    for nested in sub.get_subcommands() {
        add_pages(nested, &typed, pages);
    }
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

#[test]
fn pages_refer_only_to_pages_that_exist_and_show_what_users_type() {
    let pages = pages();
    let names: Vec<String> = pages.iter().map(|(name, _)| name.clone()).collect();
    for (name, page) in &pages {
        let text = String::from_utf8_lossy(page).replace("\\-", "-");
        for word in text.split_whitespace() {
            if let Some(page_ref) = word.strip_suffix("(1)") {
                let referred = format!("{}.1", page_ref.trim_start_matches("\\fB"));
                assert!(
                    names.contains(&referred),
                    "{name} refers to {referred}, which does not exist"
                );
            }
        }
        if name != "wazo-astdebug.1" {
            let typed = name
                .trim_end_matches(".1")
                .replace('-', " ")
                .replace("wazo astdebug", "wazo-astdebug")
                .replace("setup dbg", "setup-dbg");
            let synopsis = text.split(".SH DESCRIPTION").next().unwrap_or_default();
            assert!(synopsis.contains(&typed), "{name}: synopsis {synopsis}");
        }
    }
}
