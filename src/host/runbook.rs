//! Version eras as data.
//!
//! Which dist tool, mirror names and package names apply to a Wazo version
//! changes with every Debian release, and the doc is always behind. So the
//! eras live in `runbooks/eras.toml`, embedded at build time and replaceable
//! with `--runbooks DIR`: a support engineer facing a Wazo newer than this
//! binary edits a copy instead of waiting for a release.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::host::version::WazoVersion;

/// The runbook files shipped inside the binary, by file name.
/// The first version with a packaged vanilla Asterisk.
pub const FIRST_VANILLA: &str = "19.13";

pub const EMBEDDED: &[(&str, &str)] = &[(
    "eras.toml",
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/eras.toml")),
)];

const ERAS_FILE: &str = "eras.toml";

/// The placeholders a command template may use.
const PLACEHOLDERS: &[&str] = &["{version}"];

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunbookSource {
    BuiltIn,
    Directory { path: PathBuf },
}

impl fmt::Display for RunbookSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunbookSource::BuiltIn => f.write_str("built in"),
            RunbookSource::Directory { path } => write!(f, "{}", path.display()),
        }
    }
}

/// Every era, oldest first, and the known holes of the public mirror.
#[derive(Debug, Clone, Serialize)]
pub struct Runbooks {
    pub source: RunbookSource,
    pub minimum: WazoVersion,
    /// The newest version the file was checked against, if it says.
    pub newest: Option<WazoVersion>,
    pub eras: Vec<Era>,
    pub holes: Vec<Hole>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Era {
    pub floor: WazoVersion,
    pub name: String,
    pub debian: String,
    pub dist_tool: String,
    archive: Vec<String>,
    production: Vec<String>,
    apt_target: String,
    pub sources_list: String,
    pub base_packages: Vec<String>,
    debug_packages: Vec<DebugPackage>,
    /// Wazo's Asterisk without Wazo's patches (19.13+), and its symbols.
    vanilla_packages: Vec<DebugPackage>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DebugPackage {
    pub name: String,
    pub from: Option<WazoVersion>,
    pub before: Option<WazoVersion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hole {
    pub from: WazoVersion,
    pub through: WazoVersion,
    pub reason: String,
}

/// One era applied to one version: templates filled in, renames resolved.
#[derive(Debug, Clone, Serialize)]
pub struct EraPlan {
    pub era: String,
    pub debian: String,
    pub dist_tool: String,
    pub archive: Vec<String>,
    pub production: Vec<String>,
    pub apt_target: String,
    pub sources_list: String,
    pub base_packages: Vec<String>,
    pub debug_packages: Vec<String>,
    /// Empty where the era has no packaged vanilla Asterisk.
    pub vanilla_packages: Vec<String>,
    pub notes: Vec<String>,
    pub holes: Vec<String>,
    /// Set when the version is newer than the newest one the runbooks know:
    /// the newest era's commands are used, and this says so.
    pub beyond: Option<String>,
}

impl Runbooks {
    /// The built-in runbooks, or those of `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Runbooks> {
        match dir {
            None => {
                let text = EMBEDDED
                    .iter()
                    .find(|(name, _)| *name == ERAS_FILE)
                    .map(|(_, text)| *text)
                    .unwrap_or_default();
                parse(
                    text,
                    &format!("(built in) {ERAS_FILE}"),
                    RunbookSource::BuiltIn,
                )
            }
            Some(dir) => {
                let path = dir.join(ERAS_FILE);
                let bytes =
                    crate::host::files::read_bounded(&path, crate::host::files::TEXT_LIMIT)?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::bad_input(format!("runbook {} is not UTF-8 text", path.display()))
                })?;
                parse(
                    &text,
                    &path.display().to_string(),
                    RunbookSource::Directory {
                        path: dir.to_path_buf(),
                    },
                )
            }
        }
    }

    /// The era that applies to `version`, refusing versions the doc does not cover.
    pub fn era_for(&self, version: &WazoVersion) -> Result<&Era> {
        if version < &self.minimum {
            return Err(Error::bad_input(format!(
                "Wazo/XiVO {version} is older than {}, the oldest version the \"Debugging Asterisk\" \
                 procedures cover; install gdb and the debug packages by hand, as your version's \
                 documentation says",
                self.minimum
            )));
        }
        self.eras
            .iter()
            .rev()
            .find(|era| &era.floor <= version)
            .ok_or_else(|| Error::bad_input(format!("no era in the runbooks covers {version}")))
    }

    /// The era of `version`, with everything resolved for it.
    pub fn plan_for(&self, version: &WazoVersion) -> Result<EraPlan> {
        let era = self.era_for(version)?;
        let fill = |template: &str| template.replace("{version}", version.as_str());
        Ok(EraPlan {
            era: era.name.clone(),
            debian: era.debian.clone(),
            dist_tool: era.dist_tool.clone(),
            archive: era.archive.iter().map(|word| fill(word)).collect(),
            production: era.production.iter().map(|word| fill(word)).collect(),
            apt_target: fill(&era.apt_target),
            sources_list: era.sources_list.clone(),
            base_packages: era.base_packages.clone(),
            debug_packages: era
                .debug_packages
                .iter()
                .filter(|package| package.applies_to(version))
                .map(|package| package.name.clone())
                .collect(),
            vanilla_packages: era
                .vanilla_packages
                .iter()
                .filter(|package| package.applies_to(version))
                .map(|package| package.name.clone())
                .collect(),
            notes: era.notes.clone(),
            holes: self
                .holes
                .iter()
                .filter(|hole| &hole.from <= version && version <= &hole.through)
                .map(|hole| hole.reason.clone())
                .collect(),
            beyond: self
                .newest
                .as_ref()
                .filter(|newest| version > *newest)
                .map(|newest| {
                    format!(
                        "Wazo {version} is newer than the newest version these runbooks know \
                     ({newest}): the commands of the newest era ({}) are used, and may be wrong \
                     if Wazo has moved on (a new Debian, renamed packages). Check them first; to \
                     add an era: `wazo-astdebug runbooks --export DIR`, edit DIR/eras.toml, then \
                     run with `--runbooks DIR`",
                        era.name
                    )
                }),
        })
    }
}

impl DebugPackage {
    fn applies_to(&self, version: &WazoVersion) -> bool {
        self.from.as_ref().is_none_or(|from| from <= version)
            && self.before.as_ref().is_none_or(|before| version < before)
    }
}

impl Era {
    /// The dist commands as templates, for `runbooks`.
    pub fn archive_template(&self) -> &[String] {
        &self.archive
    }

    pub fn production_template(&self) -> &[String] {
        &self.production
    }

    pub fn debug_packages(&self) -> &[DebugPackage] {
        &self.debug_packages
    }
}

// The file as written. Spans let semantic errors point at a line too.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    minimum: Spanned<String>,
    #[serde(default)]
    newest: Option<Spanned<String>>,
    #[serde(rename = "era")]
    eras: Vec<RawEra>,
    #[serde(rename = "hole", default)]
    holes: Vec<RawHole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEra {
    floor: Spanned<String>,
    name: String,
    debian: String,
    dist_tool: Spanned<String>,
    archive: Spanned<Vec<String>>,
    production: Spanned<Vec<String>>,
    apt_target: Spanned<String>,
    sources_list: Spanned<String>,
    base_packages: Vec<String>,
    debug_packages: Spanned<Vec<RawPackage>>,
    #[serde(default)]
    vanilla_packages: Option<Spanned<Vec<RawPackage>>>,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: String,
    from: Option<Spanned<String>>,
    before: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHole {
    from: Spanned<String>,
    through: Spanned<String>,
    reason: String,
}

/// Parses and checks one `eras.toml`; `file` names it in errors.
pub fn parse(text: &str, file: &str, source: RunbookSource) -> Result<Runbooks> {
    let checker = Checker { text, file };
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        checker.error(
            error.span().unwrap_or(0..0),
            error.message().trim().to_string(),
        )
    })?;
    let minimum = checker.version("minimum", &raw.minimum)?;
    let newest = raw
        .newest
        .as_ref()
        .map(|newest| checker.version("newest", newest))
        .transpose()?;
    let mut eras = Vec::with_capacity(raw.eras.len());
    for era in raw.eras {
        eras.push(checker.era(era)?);
    }
    if eras.is_empty() {
        return Err(checker.error(0..0, "no [[era]] is defined".to_string()));
    }
    for pair in eras.windows(2) {
        if pair[0].floor >= pair[1].floor {
            return Err(Error::Runbook {
                file: file.to_string(),
                line: 1,
                message: format!(
                    "field `floor`: eras must be listed oldest first, but {} comes before {}",
                    pair[0].floor, pair[1].floor
                ),
            });
        }
    }
    let mut holes = Vec::with_capacity(raw.holes.len());
    for hole in raw.holes {
        holes.push(Hole {
            from: checker.version("from", &hole.from)?,
            through: checker.version("through", &hole.through)?,
            reason: hole.reason,
        });
    }
    Ok(Runbooks {
        source,
        minimum,
        newest,
        eras,
        holes,
    })
}

struct Checker<'a> {
    text: &'a str,
    file: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, message: String) -> Error {
        let line = self.text[..span.start.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1;
        Error::Runbook {
            file: self.file.to_string(),
            line,
            message,
        }
    }

    fn version(&self, field: &str, value: &Spanned<String>) -> Result<WazoVersion> {
        WazoVersion::parse(value.get_ref()).ok_or_else(|| {
            self.error(
                value.span(),
                format!(
                    "field `{field}`: {:?} is not a version like 25.15",
                    value.get_ref()
                ),
            )
        })
    }

    fn argv(&self, field: &str, value: &Spanned<Vec<String>>) -> Result<Vec<String>> {
        if value.get_ref().is_empty() || value.get_ref()[0].trim().is_empty() {
            return Err(self.error(
                value.span(),
                format!("field `{field}`: a command needs at least a program name"),
            ));
        }
        for word in value.get_ref() {
            self.template(field, word, value.span())?;
        }
        Ok(value.get_ref().clone())
    }

    fn template(&self, field: &str, word: &str, span: Range<usize>) -> Result<()> {
        let mut rest = word;
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').map(|end| start + end + 1);
            let placeholder = end.map(|end| &rest[start..end]);
            match placeholder {
                Some(placeholder) if PLACEHOLDERS.contains(&placeholder) => {
                    rest = &rest[start + placeholder.len()..];
                }
                _ => {
                    return Err(self.error(
                        span,
                        format!(
                            "field `{field}`: {word:?} uses an unknown placeholder; only {} is known",
                            PLACEHOLDERS.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn era(&self, raw: RawEra) -> Result<Era> {
        let floor = self.version("floor", &raw.floor)?;
        self.template(
            "apt_target",
            raw.apt_target.get_ref(),
            raw.apt_target.span(),
        )?;
        if !raw.sources_list.get_ref().starts_with('/') {
            return Err(self.error(
                raw.sources_list.span(),
                "field `sources_list`: must be an absolute path".to_string(),
            ));
        }
        if raw.dist_tool.get_ref().trim().is_empty() {
            return Err(self.error(
                raw.dist_tool.span(),
                "field `dist_tool`: is empty".to_string(),
            ));
        }
        let debug_packages = self.packages("debug_packages", raw.debug_packages)?;
        let vanilla_packages = match raw.vanilla_packages {
            Some(packages) => self.packages("vanilla_packages", packages)?,
            None => Vec::new(),
        };
        Ok(Era {
            floor,
            name: raw.name,
            debian: raw.debian,
            dist_tool: raw.dist_tool.into_inner(),
            archive: self.argv("archive", &raw.archive)?,
            production: self.argv("production", &raw.production)?,
            apt_target: raw.apt_target.into_inner(),
            sources_list: raw.sources_list.into_inner(),
            base_packages: raw.base_packages,
            debug_packages,
            vanilla_packages,
            notes: raw.notes,
        })
    }

    fn packages(&self, field: &str, raw: Spanned<Vec<RawPackage>>) -> Result<Vec<DebugPackage>> {
        let span = raw.span();
        let mut packages = Vec::new();
        for package in raw.into_inner() {
            if package.name.trim().is_empty() {
                return Err(self.error(
                    span.clone(),
                    format!("field `{field}`: a package has an empty name"),
                ));
            }
            packages.push(DebugPackage {
                from: package
                    .from
                    .as_ref()
                    .map(|v| self.version("from", v))
                    .transpose()?,
                before: package
                    .before
                    .as_ref()
                    .map(|v| self.version("before", v))
                    .transpose()?,
                name: package.name,
            });
        }
        Ok(packages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Runbooks {
        Runbooks::load(None).expect("the built-in runbooks parse")
    }

    fn v(text: &str) -> WazoVersion {
        WazoVersion::parse(text).unwrap()
    }

    #[test]
    fn builtin_covers_every_era_of_the_facts_file() {
        let runbooks = builtin();
        let floors: Vec<String> = runbooks
            .eras
            .iter()
            .map(|era| era.floor.to_string())
            .collect();
        assert_eq!(
            floors,
            [
                "16.01", "16.16", "18.01", "18.03", "19.04", "19.13", "23.06", "25.15"
            ]
        );
    }

    #[test]
    fn renames_follow_the_version() {
        let runbooks = builtin();
        assert_eq!(
            runbooks.plan_for(&v("18.12")).unwrap().debug_packages,
            ["asterisk-dbg", "xivo-libsccp-dbg"]
        );
        assert_eq!(
            runbooks.plan_for(&v("18.13")).unwrap().debug_packages,
            ["asterisk-dbg", "wazo-libsccp-dbg"]
        );
        assert_eq!(
            runbooks.plan_for(&v("23.03")).unwrap().debug_packages,
            ["asterisk-dbg", "wazo-libsccp-dbg"]
        );
        assert_eq!(
            runbooks.plan_for(&v("23.04")).unwrap().debug_packages,
            ["asterisk-dbgsym", "wazo-libsccp-dbg"]
        );
    }

    #[test]
    fn vanilla_packages_exist_from_19_13_and_follow_the_dbgsym_rename() {
        let runbooks = builtin();
        assert!(
            runbooks
                .plan_for(&v("19.12"))
                .unwrap()
                .vanilla_packages
                .is_empty()
        );
        assert_eq!(
            runbooks.plan_for(&v("19.13")).unwrap().vanilla_packages,
            ["asterisk-vanilla", "asterisk-vanilla-dbg"]
        );
        assert_eq!(
            runbooks.plan_for(&v("23.04")).unwrap().vanilla_packages,
            ["asterisk-vanilla", "asterisk-vanilla-dbgsym"]
        );
        assert_eq!(
            runbooks.plan_for(&v("25.15")).unwrap().vanilla_packages,
            ["asterisk-vanilla", "asterisk-vanilla-dbgsym"]
        );
    }

    #[test]
    fn templates_take_the_version_as_written() {
        let plan = builtin().plan_for(&v("16.01")).unwrap();
        assert_eq!(plan.archive, ["xivo-dist", "xivo-16.01"]);
        assert_eq!(plan.apt_target, "xivo-16.01");
        assert_eq!(plan.holes.len(), 1);
    }

    #[test]
    fn too_old_is_refused() {
        let error = builtin().plan_for(&v("15.20")).unwrap_err();
        assert!(error.to_string().contains("older than 16.01"), "{error}");
    }

    fn parse_err(text: &str) -> String {
        parse(text, "test.toml", RunbookSource::BuiltIn)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn malformed_files_name_line_and_field() {
        let good = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/eras.toml"));
        let missing = good.replacen("debian = \"stretch\"\n", "", 1);
        let message = parse_err(&missing);
        assert!(
            message.contains("test.toml, line") && message.contains("debian"),
            "{message}"
        );

        let typo = good.replacen("floor = \"19.04\"", "flor = \"19.04\"", 1);
        let message = parse_err(&typo);
        assert!(message.contains("flor"), "{message}");

        let bad_version = good.replacen("floor = \"19.04\"", "floor = \"nineteen\"", 1);
        let line = good
            .lines()
            .position(|line| line == "floor = \"19.04\"")
            .unwrap()
            + 1;
        let message = parse_err(&bad_version);
        assert!(
            message.contains(&format!("line {line}:")) && message.contains("`floor`"),
            "{message}"
        );

        let placeholder = good.replacen("wazo-{version}", "wazo-{vers}", 1);
        assert!(parse_err(&placeholder).contains("unknown placeholder"));

        let unordered = good.replacen("floor = \"19.04\"", "floor = \"17.01\"", 1);
        assert!(parse_err(&unordered).contains("oldest first"));

        assert!(parse_err("").contains("minimum"));
        assert!(parse_err("minimum = \"16.01\"\nera = []\n").contains("no [[era]]"));
    }
}

#[cfg(test)]
mod fuzz_tests;
