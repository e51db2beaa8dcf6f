use super::*;

#[test]
fn command_follows_the_doc_and_quotes_the_output_path() {
    let request = Request {
        binary: PathBuf::from("/usr/sbin/asterisk"),
        target: Target::Core(PathBuf::from("/var/spool/asterisk/core.1255.1700000000")),
        commands: vec!["bt full".to_string(), "thread apply all bt".to_string()],
        text_out: PathBuf::from("bt-threads.txt"),
        analysis_out: Some(PathBuf::from("/out/it's \"here\".json")),
        full_out: None,
    };
    let cmd = request.command(Some(Path::new("/tmp/s.py")));
    assert_eq!(
        cmd.to_string(),
        "gdb -batch -nx \
         -iex 'python wazo_astdebug_out = \"/out/it'\\''s \\\"here\\\".json\"' -ix /tmp/s.py \
         -ex 'bt full' -ex 'thread apply all bt' -ex 'python wazo_astdebug_main()' \
         /usr/sbin/asterisk /var/spool/asterisk/core.1255.1700000000"
    );
}

#[test]
fn a_core_gets_bt_full_from_the_same_unwind() {
    let request = Request {
        binary: PathBuf::from("/usr/sbin/asterisk"),
        target: Target::Core(PathBuf::from("/cores/core.1")),
        commands: vec!["thread apply all bt".to_string()],
        text_out: PathBuf::from("bt-threads.txt"),
        analysis_out: Some(PathBuf::from("/out/a.json")),
        full_out: Some(PathBuf::from("/out/bt-full.txt")),
    };
    let script = Some(Path::new("/tmp/s.py"));
    assert!(request.prints_full(script));
    let cmd = request.run_command(script).to_string();
    assert!(
        cmd.contains("-iex 'python wazo_astdebug_full = True'"),
        "{cmd}"
    );
    assert!(!cmd.contains("-ex 'thread apply all bt'"), "{cmd}");
    // Live, the locals would lengthen the stop: never.
    let live = Request {
        target: Target::Pid(1),
        ..request.clone()
    };
    assert!(!live.prints_full(script));
    assert!(
        !live
            .run_command(script)
            .to_string()
            .contains("wazo_astdebug_full")
    );
}

#[test]
fn the_script_reads_only_the_libraries_the_backtraces_need() {
    let request = Request {
        binary: PathBuf::from("/usr/sbin/asterisk"),
        target: Target::Pid(1),
        commands: vec!["thread apply all bt".to_string()],
        text_out: PathBuf::from("bt-threads.txt"),
        analysis_out: Some(PathBuf::from("/out/a.json")),
        full_out: None,
    };
    let script = Some(Path::new("/tmp/s.py"));
    let lazy = "-iex 'set auto-solib-add off' -iex 'python wazo_astdebug_lazy = True'";
    let cmd = request.run_command(script).to_string();
    assert!(cmd.contains(lazy), "{cmd}");
    // Before the script: set before gdb attaches.
    assert!(cmd.find(lazy) < cmd.find("-ix /tmp/s.py"), "{cmd}");
    // What the dry run shows stays the doc's.
    assert!(!request.command(script).to_string().contains("auto-solib"));
    // A core too, with what crash prints before the script read first.
    let core = Request {
        target: Target::Core(PathBuf::from("/cores/core.1")),
        commands: vec!["bt full".to_string(), "thread apply all bt".to_string()],
        ..request.clone()
    };
    let cmd = core.run_command(script).to_string();
    assert!(cmd.contains(lazy), "{cmd}");
    assert!(
        cmd.contains(
            "-ex 'python wazo_astdebug_prepare([\"bt full\"])' -ex 'bt full' \
             -ex 'python wazo_astdebug_main()'"
        ),
        "{cmd}"
    );
    // Without the script, gdb loads them all itself.
    assert!(!request.run_command(None).to_string().contains("auto-solib"));
    assert!(!core.run_command(None).to_string().contains("prepare"));
}

#[test]
fn the_stop_line_says_which_symbols_gdb_read() {
    let lazy = threads::Solibs {
        read: 11,
        mapped: 476,
        all: false,
    };
    assert_eq!(
        describe_solibs(lazy),
        "read the symbols of 11 of the 476 shared objects mapped, those the backtraces need"
    );
    let all = threads::Solibs { all: true, ..lazy };
    assert!(describe_solibs(all).contains("all 476"));
}

#[test]
fn the_locals_of_bt_full_are_told_from_bt() {
    for local in [
        "        mutex = 0x55d0c8a1b2c0",
        "        __PRETTY_FUNCTION__ = \"ast_write\"",
        "No locals.",
        "No symbol table info available.",
    ] {
        assert!(is_full_only(local), "{local:?}");
    }
    for bt in [
        "#0  0x00007f in __lll_lock_wait () from /lib/x86_64-linux-gnu/libc.so.6",
        "Thread 2 (Thread 0x7f3a1c2f9700 (LWP 18211)):",
        "",
        "Backtrace stopped: previous frame inner to this frame (corrupt stack?)",
        "[New LWP 18211]",
        "    at bridge.c:1591",
    ] {
        assert!(!is_full_only(bt), "{bt:?}");
    }
}

#[test]
fn symbol_less_frames_are_spotted() {
    assert!(lacks_symbols("#3  0x00007f in ?? () from /lib/libc.so.6"));
    assert!(lacks_symbols("No symbol table info available."));
    assert!(!lacks_symbols("#0  crash_here (p=0x10) at crash.c:4"));
}

#[test]
fn warnings_skip_missing_glibc_sources() {
    let mut warnings = Vec::new();
    note_warning(
        "57\t./nptl/futex-internal.c: No such file or directory.",
        &mut warnings,
    );
    note_warning(
        "warning: core file may not match specified executable file.",
        &mut warnings,
    );
    assert_eq!(
        warnings,
        ["warning: core file may not match specified executable file."]
    );
}

#[test]
fn process_state_reads_our_own() {
    assert!(matches!(
        process_state(std::process::id()),
        Some('R') | Some('S')
    ));
}
