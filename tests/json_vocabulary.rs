//! Every command's `--json` against `docs/json.md`: the doc's key tables are
//! parsed, and each command's real output must be an object that starts
//! with `"schema": 1`, has only documented keys of the documented types
//! (times that parse as RFC 3339, `pid` and `lwp` integers), every key the
//! doc does not mark "may be absent", and in `warnings` every warning the
//! run printed on stderr. The doc is the contract fleet scripts are written
//! against: this is what keeps it true.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::testbed::{text, wait_bounded};
use crate::common::{Sandbox, compile_c_as};

#[derive(Debug, Clone, PartialEq)]
enum Type {
    String,
    Integer,
    Number,
    Boolean,
    Time,
    Path,
    Array(Box<Type>),
    Map(Box<Type>),
    Object(String),
    Nullable(Box<Type>),
}

#[derive(Debug)]
struct Key {
    name: String,
    kind: Type,
    optional: bool,
}

/// Section name (a command or a shared object) to its keys, in doc order.
struct Vocabulary(HashMap<String, Vec<Key>>);

const COMMANDS: &[&str] = &[
    "info",
    "runbooks",
    "segfaults",
    "crash",
    "freeze",
    "graph",
    "report",
    "valgrind",
    "watch",
];

fn parse_type(text: &str) -> Type {
    let text = text.trim();
    // "array of T or null" is an array whose items may be null; a nullable
    // array is never needed (an empty one says it).
    if let Some(inner) = text.strip_prefix("array of ") {
        return Type::Array(Box::new(parse_type(inner)));
    }
    if let Some(inner) = text.strip_suffix(" or null") {
        return Type::Nullable(Box::new(parse_type(inner)));
    }
    if let Some(inner) = text.strip_prefix("map of ") {
        return Type::Map(Box::new(parse_type(inner)));
    }
    if let Some(link) = text.strip_prefix('[') {
        let (name, anchor) = link
            .split_once("](#")
            .unwrap_or_else(|| panic!("docs/json.md: a bad link in type {text:?}"));
        assert_eq!(
            anchor.strip_suffix(')'),
            Some(name),
            "docs/json.md: the link of {text:?} must be [name](#name)"
        );
        return Type::Object(name.to_string());
    }
    match text {
        "string" => Type::String,
        "integer" => Type::Integer,
        "number" => Type::Number,
        "boolean" => Type::Boolean,
        "time" => Type::Time,
        "path" => Type::Path,
        other => panic!("docs/json.md: unknown type {other:?}"),
    }
}

/// The `### \`name\`` sections and their `| \`key\` | type | meaning |` rows.
fn vocabulary() -> Vocabulary {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md");
    let doc = fs::read_to_string(&path).expect("docs/json.md");
    let mut sections: HashMap<String, Vec<Key>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            let name = heading.trim().trim_matches('`').to_string();
            assert!(
                sections.insert(name.clone(), Vec::new()).is_none(),
                "docs/json.md: section {name} twice"
            );
            current = Some(name);
            continue;
        }
        if line.starts_with("## ") {
            current = None;
        }
        let Some(section) = &current else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `key` | type | meaning |": 5 pieces with the empty ends.
        let [_, key, kind, _, _] = cells[..] else {
            continue;
        };
        let Some(name) = key.strip_prefix('`').and_then(|key| key.strip_suffix('`')) else {
            continue;
        };
        let (kind, optional) = match kind.strip_suffix(", may be absent") {
            Some(kind) => (kind, true),
            None => (kind, false),
        };
        sections.get_mut(section).unwrap().push(Key {
            name: name.to_string(),
            kind: parse_type(kind),
            optional,
        });
    }
    Vocabulary(sections)
}

impl Vocabulary {
    fn keys(&self, section: &str) -> &[Key] {
        self.0
            .get(section)
            .unwrap_or_else(|| panic!("docs/json.md has no section {section}"))
    }

    fn check_object(&self, section: &str, value: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            errors.push(format!("{at}: not an object ({section}): {value}"));
            return;
        };
        let keys = self.keys(section);
        for (name, value) in object {
            match keys.iter().find(|key| &key.name == name) {
                Some(key) => self.check_type(&key.kind, value, &format!("{at}.{name}"), errors),
                None => errors.push(format!(
                    "{at}.{name}: not in docs/json.md's {section} table"
                )),
            }
        }
        for key in keys.iter().filter(|key| !key.optional) {
            if !object.contains_key(&key.name) {
                errors.push(format!(
                    "{at}.{}: missing (docs/json.md's {section} table does not say it may be absent)",
                    key.name
                ));
            }
        }
    }

    fn check_type(&self, kind: &Type, value: &Value, at: &str, errors: &mut Vec<String>) {
        let ok = match kind {
            Type::Nullable(inner) => {
                if !value.is_null() {
                    self.check_type(inner, value, at, errors);
                }
                true
            }
            Type::String => value.is_string(),
            Type::Path => value.as_str().is_some_and(|path| !path.is_empty()),
            Type::Time => value
                .as_str()
                .is_some_and(|time| chrono::DateTime::parse_from_rfc3339(time).is_ok()),
            Type::Integer => value.is_i64() || value.is_u64(),
            Type::Number => value.is_number(),
            Type::Boolean => value.is_boolean(),
            Type::Array(inner) => match value.as_array() {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        self.check_type(inner, item, &format!("{at}[{index}]"), errors);
                    }
                    true
                }
                None => false,
            },
            Type::Map(inner) => match value.as_object() {
                Some(map) => {
                    for (name, item) in map {
                        self.check_type(inner, item, &format!("{at}[{name:?}]"), errors);
                    }
                    true
                }
                None => false,
            },
            Type::Object(section) => {
                self.check_object(section, value, at, errors);
                true
            }
        };
        if !ok {
            errors.push(format!("{at}: not {kind:?}: {value}"));
        }
    }
}

/// `pid` and `lwp` are integers (or null) and `lwps` integers wherever they are.
fn check_ids(value: &Value, at: &str, errors: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (name, item) in object {
                let here = format!("{at}.{name}");
                let id = |v: &Value| v.is_u64();
                let fine = match name.as_str() {
                    "pid" | "lwp" => item.is_null() || id(item),
                    "lwps" => item.as_array().is_some_and(|ids| ids.iter().all(id)),
                    _ => true,
                };
                if !fine {
                    errors.push(format!("{here}: not an integer id: {item}"));
                }
                check_ids(item, &here, errors);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check_ids(item, &format!("{at}[{index}]"), errors);
            }
        }
        _ => {}
    }
}

/// Checks `json` (the text printed or written) as `command`'s object, and
/// that each warning in `stderr` is in its `warnings`.
pub(crate) fn check(command: &str, json: &[u8], stderr: &str) -> Value {
    let text = String::from_utf8_lossy(json);
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{command}: not one JSON value ({error}): {text}"));
    let first_key = text
        .trim_start()
        .strip_prefix('{')
        .map(str::trim_start)
        .unwrap_or_default();
    assert!(
        first_key.starts_with("\"schema\":"),
        "{command}: schema is not the first key: {text}"
    );
    assert_eq!(value["schema"], 1, "{command}: {value:#}");
    let mut errors = Vec::new();
    vocabulary().check_object(command, &value, command, &mut errors);
    check_ids(&value, command, &mut errors);
    let warnings: Vec<&str> = value["warnings"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for line in stderr.lines() {
        let Some(warning) = line.strip_prefix("wazo-astdebug: warning: ") else {
            continue;
        };
        if !warnings
            .iter()
            .any(|kept| kept.lines().next() == Some(warning))
        {
            errors.push(format!(
                "{command}: printed the warning {warning:?}, not in its JSON's warnings {warnings:?}"
            ));
        }
    }
    assert!(errors.is_empty(), "{}\n\n{value:#}", errors.join("\n"));
    value
}

fn checked(command: &str, output: &Output) -> Value {
    assert!(output.status.success(), "{command}: {}", text(output));
    check(
        command,
        &output.stdout,
        &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn the_doc_keeps_its_own_rules() {
    let vocabulary = vocabulary();
    for command in COMMANDS {
        let keys = vocabulary.keys(command);
        assert_eq!(keys[0].name, "schema", "{command}: schema comes first");
        let warnings = keys.iter().find(|key| key.name == "warnings");
        assert_eq!(
            warnings.map(|key| (&key.kind, key.optional)),
            Some((&Type::Array(Box::new(Type::String)), false)),
            "{command}: warnings, an array of strings, always there"
        );
    }
    let mut referenced: BTreeSet<&str> = COMMANDS.iter().copied().collect();
    for (section, keys) in &vocabulary.0 {
        for key in keys {
            let mut kind = &key.kind;
            loop {
                kind = match kind {
                    Type::Nullable(inner) | Type::Array(inner) | Type::Map(inner) => inner,
                    _ => break,
                };
            }
            if let Type::Object(name) = kind {
                vocabulary.keys(name);
                referenced.insert(name);
            }
            let base = match &key.kind {
                Type::Nullable(inner) => inner,
                other => other,
            };
            let name = key.name.as_str();
            if matches!(name, "pid" | "lwp") {
                assert_eq!(base, &Type::Integer, "{section}.{name}");
            }
            if name == "time" || name.ends_with("_at") || name == "started" {
                assert_eq!(base, &Type::Time, "{section}.{name}");
            }
        }
    }
    let documented: BTreeSet<&str> = vocabulary.0.keys().map(String::as_str).collect();
    assert_eq!(
        documented, referenced,
        "every section is a command or used by one"
    );
}

const SIP_CONF: &str = "[general]\nsecret=hunter2-vocabulary\n";

#[test]
fn info_runbooks_segfaults_graph_and_report() {
    let sandbox = Sandbox::new(&[]);
    sandbox.host_file("/usr/share/wazo/WAZO-VERSION", b"18.05\n");
    sandbox.host_file("/run/asterisk/asterisk.pid", b"not a pid\n");
    sandbox.host_file(
        "/etc/apt/sources.list.d/wazo-dist.list",
        b"\n# pelican-bookworm\ndeb http://mirror.example/debian pelican-bookworm main\n",
    );
    let output = sandbox.command().args(["--json", "info"]).output().unwrap();
    let info = checked("info", &output);
    assert!(
        info["warnings"].as_array().unwrap().len() >= 2,
        "a mirror hole and the bad pidfile: {info:#}"
    );

    let output = sandbox
        .command()
        .args(["--json", "runbooks"])
        .output()
        .unwrap();
    checked("runbooks", &output);

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let binary = sandbox.path("binary.log");
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    bytes.extend_from_slice(b"\nasterisk[7]: segfault at 1 ip 2 sp 3 error 4\n");
    fs::write(&binary, bytes).unwrap();
    for since in ["7d", "-7d"] {
        let output = sandbox
            .command()
            .env("TZ", "UTC")
            .args(["--json", "segfaults", "--since", since, "--log"])
            .arg(fixtures.join("syslog/syslog"))
            .output()
            .unwrap();
        checked("segfaults", &output);
    }
    let output = sandbox
        .command()
        .env("TZ", "UTC")
        .args(["--json", "segfaults", "--log"])
        .arg(fixtures.join("syslog/syslog.2.gz"))
        .arg("--log")
        .arg(fixtures.join("syslog/kern.log"))
        .arg("--log")
        .arg(&binary)
        .output()
        .unwrap();
    let segfaults = checked("segfaults", &output);
    assert!(
        segfaults["segfaults"].as_array().unwrap().len() >= 2,
        "{segfaults:#}"
    );
    assert!(!segfaults["warnings"].as_array().unwrap().is_empty());

    for dump in ["ast13-lwp.txt", "seed-excerpt.txt", "ast21-timing.txt"] {
        // Not sandbox.command(): its --output-dir is graph's output file.
        let output = assert_cmd::Command::cargo_bin("wazo-astdebug")
            .unwrap()
            .args(["graph", "-f", "json"])
            .arg(fixtures.join("locks").join(dump))
            .output()
            .unwrap();
        checked("graph", &output);
    }

    let run = sandbox.path("runs/20261128-041243-pbx1");
    fs::create_dir_all(&run).unwrap();
    fs::write(run.join("sip.conf"), SIP_CONF).unwrap();
    fs::write(
        run.join("notes.txt"),
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x04\0",
    )
    .unwrap();
    let output = sandbox
        .command()
        .args(["--json", "report", "--mask-ids"])
        .arg(&run)
        .output()
        .unwrap();
    let report = checked("report", &output);
    assert!(report["bundle_bytes"].as_u64().is_some(), "{report:#}");
    // A dry run beside the bundle: the notes, no size.
    let output = sandbox
        .command()
        .args(["--json", "--dry-run", "report"])
        .arg(&run)
        .output()
        .unwrap();
    let report = checked("report", &output);
    assert!(report["notes"].is_array(), "{report:#}");
}

#[test]
fn crash() {
    let crashed = crate::crash::crashed();
    let sandbox = &crashed.sandbox;
    sandbox.host_file(
        "/var/log/asterisk/full",
        b"[2026-11-28 04:00:01] VERBOSE[100] pbx.c: Executing [s@default:1]\n",
    );
    let output = sandbox
        .command()
        .env("TZ", "UTC")
        .args([
            "--yes",
            "--json",
            "--wazo-version",
            "25.15",
            "crash",
            "--at",
            "2026-11-28 04:10",
        ])
        .arg("--core")
        .arg(&crashed.core)
        .arg("--asterisk-bin")
        .arg(&crashed.program)
        .output()
        .unwrap();
    let crash = checked("crash", &output);
    assert!(crash["core"].is_object(), "{crash:#}");
    assert!(
        crash["artefacts"].as_array().unwrap().len() >= 3,
        "{crash:#}"
    );
}

/// A deadlocked fixture, named as freeze wants it (asterisk*, not `asterisk`).
struct Deadlocked(std::process::Child);

impl Drop for Deadlocked {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_and_the_freeze_it_runs() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk", "logger"]);
    sandbox.prints("systemctl", "active\n");
    sandbox.prints("asterisk", "Unable to connect to remote asterisk\n");
    sandbox.fails("asterisk", 1);
    let program = compile_c_as("deadlock", "asterisk-vocab", &sandbox.path(""));
    let (child, _) = crate::common::start_ready::<&str>(&program, &[]);
    let target = Deadlocked(child);
    let pid = target.0.id().to_string();

    let tool = {
        use std::os::unix::process::CommandExt;
        Process::new(assert_cmd::cargo::cargo_bin("wazo-astdebug"))
            .env("PATH", sandbox.path_var())
            .env("STANDIN_DIR", sandbox.path("ctl"))
            .arg("--root")
            .arg(sandbox.path("root"))
            .arg("--output-dir")
            .arg(sandbox.path("out"))
            .args(["--json", "watch", "--pid", &pid, "--interval", "1"])
            .args(["--confirm", "2", "--once", "--gcore", "--asterisk-bin"])
            .arg(&program)
            // A failing pager: a warning, which must reach the JSON too.
            .args(["--on-freeze", "exit 3"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let (output, _) = wait_bounded(tool, Duration::from_secs(120));
    let watch = checked("watch", &output);
    assert!(
        watch["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| warning.as_str().unwrap().contains("--on-freeze")),
        "{watch:#}"
    );
    let run_dir = PathBuf::from(watch["run_dir"].as_str().unwrap());
    check("watch", &fs::read(run_dir.join("watch.json")).unwrap(), "");
    let said = fs::read_to_string(run_dir.join("freeze-output.txt")).unwrap_or_default();
    let freeze = check(
        "freeze",
        &fs::read(run_dir.join("freeze.json")).unwrap(),
        &said,
    );
    assert!(freeze["core"].is_object(), "--gcore's core: {freeze:#}");
    assert!(freeze["proc_graph"].is_object(), "{freeze:#}");
    drop(target);
}

#[test]
fn valgrind() {
    require_root!();
    let server = crate::valgrind::server();
    let output = server
        .sandbox
        .command()
        .arg("--json")
        .args(server.args(""))
        .output()
        .unwrap();
    let valgrind = checked("valgrind", &output);
    assert!(valgrind["leak_summary"].is_object(), "{valgrind:#}");
    assert!(
        !valgrind["errors_by_kind"].as_array().unwrap().is_empty(),
        "{valgrind:#}"
    );
}
