//! Editing files without an editor, and putting them back byte for byte.
//!
//! The doc's procedures say "vim debian/rules", "edit modules.conf",
//! "uncomment the deb-src line". At night, on a broken PBX, that is where
//! things go wrong: a typo in `asterisk.conf`, a `deb-src` line left enabled
//! for years. Here an edit is a plan step (`engine::edit::FileEdit`) whose new content is
//! computed from what the file holds when the step runs, and an edit of a
//! server file is preceded by a guarded backup ([`guarded_edit`]).
//!
//! The backup and the restore are ordinary commands (`install`, `cp`,
//! `chmod`, `rm`) rather than in-process code, so that the `--dry-run`
//! script shows exactly what runs, the run log records it, and the
//! executor's guaranteed unwind (failure, Ctrl-C, panic) puts the file back
//! like any other undo. The backup sits beside the file, mode 0600, with a
//! name apt and Asterisk both ignore: if the tool is killed with SIGKILL, the
//! journal holds its restore for `recover`, the engineer finds it next to the
//! file it belongs to, and no run backs up the edited file over it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::engine::command::Cmd;
use crate::engine::edit::FileEdit;
use crate::engine::plan::Plan;
use crate::error::{Error, Result};

/// Appended to a file's name to name its backup.
pub const SUFFIX: &str = ".wazo-astdebug.bak";

pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(SUFFIX);
    PathBuf::from(name)
}

/// Adds to `plan` a backup of `path` whose restore is guaranteed, then the
/// edit. Checked now, before anything runs: the file must exist and no
/// backup of an earlier run may be in the way. [`Plan::undo`] releases the
/// restore on the success path; otherwise it runs at the end.
pub fn guarded_edit(plan: &mut Plan, edit: FileEdit) -> Result<()> {
    guard(plan, edit.path())?;
    plan.edit(edit);
    Ok(())
}

/// Adds to `plan` a backup of `path` whose restore is guaranteed, for a
/// file that something else rewrites (wazo-dist) before it is edited.
pub fn guard(plan: &mut Plan, path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    let metadata = std::fs::metadata(&path).map_err(|source| Error::read(&path, source))?;
    if !metadata.is_file() {
        return Err(Error::NotARegularFile {
            path,
            kind: crate::host::sys::file_kind(&metadata).to_string(),
            hint: "not editing it".to_string(),
        });
    }
    let backup = backup_path(&path);
    if backup.exists() || backup.is_symlink() {
        return Err(Error::LeftoverBackup {
            backup: crate::engine::shell::quote(&backup.to_string_lossy()),
            file: crate::engine::shell::quote(&path.to_string_lossy()),
        });
    }
    let mode = format!("{:o}", metadata.permissions().mode() & 0o7777);
    push_guard(plan, &path, &mode);
    Ok(())
}

/// [`guard`] for a `--dry-run` on a machine without the file: the mode
/// put back is 644, the one wazo-dist writes its apt source with.
pub fn guard_assumed(plan: &mut Plan, path: &Path) {
    push_guard(plan, path, "644");
}

fn push_guard(plan: &mut Plan, path: &Path, mode: &str) {
    let backup = backup_path(path);
    let file = path.to_string_lossy().to_string();
    let saved = backup.to_string_lossy().to_string();
    plan.guarded_while(
        Cmd::new(["install", "-p", "-m", "600", &file, &saved]),
        vec![
            // Into the existing file: same inode, so owner and links stay.
            Cmd::new(["cp", "--preserve=timestamps", &saved, &file]),
            Cmd::new(["chmod", mode, &file]),
            Cmd::new(["rm", "-f", &saved]),
        ],
        backup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::executor::Executor;
    use crate::engine::interrupt::Interrupt;

    /// The executor's run log goes to `dir`; the interrupt flag is the
    /// process's own (installed once, shared by every test).
    fn interrupt() -> &'static Interrupt {
        static INTERRUPT: std::sync::OnceLock<Interrupt> = std::sync::OnceLock::new();
        INTERRUPT.get_or_init(|| Interrupt::install().unwrap())
    }

    fn upper(text: &str) -> std::result::Result<String, String> {
        Ok(text.to_uppercase())
    }

    const ORIGINAL: &[u8] = b"highpriority = yes\n; no newline at the end";

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("asterisk.conf");
        std::fs::write(&file, ORIGINAL).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        (dir, file)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_failed_step_puts_the_file_back_byte_for_byte() {
        let (dir, file) = setup();
        let mut plan = Plan::new();
        guarded_edit(&mut plan, FileEdit::new(&file, "shout", upper)).unwrap();
        plan.run(Cmd::new([
            "sh",
            "-c",
            "grep -q HIGHPRIORITY \"$0\" && exit 3",
            &file.to_string_lossy(),
        ]))
        .undo();
        let error = Executor::new(dir.path(), interrupt())
            .unwrap()
            .execute(&plan)
            .unwrap_err();
        assert!(error.to_string().contains("exit status 3"), "{error}");
        assert_eq!(std::fs::read(&file).unwrap(), ORIGINAL);
        assert_eq!(mode(&file), 0o640);
        assert!(!backup_path(&file).exists());
    }

    #[test]
    fn the_backup_is_private_while_the_edit_holds() {
        let (dir, file) = setup();
        let mut plan = Plan::new();
        guarded_edit(&mut plan, FileEdit::new(&file, "shout", upper)).unwrap();
        let mut executor = Executor::new(dir.path(), interrupt()).unwrap();
        executor.begin(&plan).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "HIGHPRIORITY = YES\n; NO NEWLINE AT THE END"
        );
        assert_eq!(mode(&file), 0o640);
        assert_eq!(mode(&backup_path(&file)), 0o600);
        assert_eq!(std::fs::read(backup_path(&file)).unwrap(), ORIGINAL);
        executor.finish().unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), ORIGINAL);
        assert_eq!(mode(&file), 0o640);
        assert!(!backup_path(&file).exists());
    }

    #[test]
    fn a_refused_edit_changes_nothing() {
        let (dir, file) = setup();
        let mut plan = Plan::new();
        guarded_edit(
            &mut plan,
            FileEdit::new(&file, "refuse", |_: &str| Err("not this shape".to_string())),
        )
        .unwrap();
        let error = Executor::new(dir.path(), interrupt())
            .unwrap()
            .execute(&plan)
            .unwrap_err();
        assert!(error.to_string().contains("not this shape"), "{error}");
        assert_eq!(std::fs::read(&file).unwrap(), ORIGINAL);
        assert!(!backup_path(&file).exists());
    }

    #[test]
    fn a_leftover_backup_stops_the_plan_before_it_runs() {
        let (_dir, file) = setup();
        std::fs::write(backup_path(&file), b"old").unwrap();
        let mut plan = Plan::new();
        let error = guarded_edit(&mut plan, FileEdit::new(&file, "shout", upper)).unwrap_err();
        assert!(error.to_string().contains("already exists"), "{error}");
        assert!(plan.steps().is_empty());
        let error =
            guarded_edit(&mut plan, FileEdit::new("/nonexistent/x", "shout", upper)).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn the_script_backs_up_edits_and_restores_byte_for_byte() {
        let mut plan = Plan::new();
        let (_dir, file) = setup();
        let f = file.display().to_string();
        guarded_edit(
            &mut plan,
            FileEdit::new(&file, "shout", upper).with_shell(Cmd::new([
                "sed",
                "-i",
                "s/.*/\\U&/",
                &f,
            ])),
        )
        .unwrap();
        // A later step fails: the script's trap puts the file back.
        plan.run(Cmd::new(["false"])).undo();
        let script = plan.script("");
        assert!(
            script.contains(&format!(
                "install -p -m 600 {f} {f}.wazo-astdebug.bak\n# From here on"
            )),
            "{script}"
        );
        assert!(script.contains("# Edit "), "{script}");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{script}");
        assert_eq!(std::fs::read(&file).unwrap(), ORIGINAL);
        assert_eq!(mode(&file), 0o640);
        assert!(!backup_path(&file).exists());
    }
}
