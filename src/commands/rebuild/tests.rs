use super::*;

#[test]
fn flags_are_names_and_deduplicated() {
    let flags = |list: &[&str]| list.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    assert_eq!(
        check_flags(&flags(&["DONT_OPTIMIZE", " DONT_OPTIMIZE", "MALLOC_DEBUG"])).unwrap(),
        ["DONT_OPTIMIZE", "MALLOC_DEBUG"]
    );
    assert!(check_flags(&flags(&["dont; rm -rf /"])).is_err());
    assert!(check_flags(&[]).is_err());
}

#[test]
fn built_debs_match_the_version_without_epoch() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "asterisk_20.5.0-1wazo1+debug1_amd64.deb",
        "asterisk-dbgsym_20.5.0-1wazo1+debug1_amd64.deb",
        "asterisk_20.5.0-1wazo1_amd64.deb",
        "asterisk_20.5.0-1wazo1+debug1_amd64.buildinfo",
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let debs = built_debs(dir.path(), "8:20.5.0-1wazo1+debug1");
    let packages: Vec<&str> = debs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(packages, ["asterisk", "asterisk-dbgsym"]);
}
