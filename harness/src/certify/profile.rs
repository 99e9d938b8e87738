//! Profiles: what a certification runs. A profile is one YAML file `profiles/<name>.yaml`:
//!
//! ```yaml
//! description: the seed application's policies, through pod IPs, Services and DNS
//! fixtures: [fixtures/meeting-app]   # fixture directories, relative to the repository root
//! modes: [pod, service, dns]         # probe modes, each edge once per mode (default [pod])
//! requires: [pinned-pod-ips]         # what a backend must offer (optional, see Requirement)
//! ```
//!
//! The file's name is the profile's name (kebab-case). Fixture paths are relative to the
//! *root*: the directory that holds the profiles directory (the repository root for
//! `profiles/`), so a profile names fixtures as the README does.
//!
//! Errors name the file, the field path (`fixtures[1]`) and the line.

use super::error::{Error, Result};
use crate::backend::Via;
use crate::input::FieldError;
use crate::runner::BackendKind;
use crate::runner::fixture::TOPOLOGY_FILE;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable naming the profiles directory, read when `--profiles-dir` is
/// absent.
pub const PROFILES_DIR_ENV: &str = "NETPOL_PROFILES_DIR";

/// The profiles directory when neither `--profiles-dir` nor [`PROFILES_DIR_ENV`] names one:
/// `profiles/` in the working directory, as `--fixtures fixtures/...` is.
pub const DEFAULT_PROFILES_DIR: &str = "profiles";

/// A loaded, validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The file's name without `.yaml`.
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    /// The fixture directories as written in the file (relative to the root), for reports.
    pub fixtures: Vec<String>,
    /// The fixture directories resolved against the root, each holding a topology file.
    pub fixture_dirs: Vec<PathBuf>,
    /// In the order written; never empty.
    pub modes: Vec<Via>,
    pub requires: Vec<Requirement>,
}

/// Something a profile's fixtures need from a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    /// The fixtures must run where pods get the topology's addresses (`ip:`), i.e. the local
    /// backend. The shipped profiles do not need it: the runner rewrites `ipBlock`s for the
    /// addresses a cluster gives (`runner::readdress`); a user's profile whose blocks name
    /// bare addresses that cannot follow the pods can declare it to be skipped on a cluster.
    PinnedPodIps,
}

impl Requirement {
    /// Every requirement, as written in profile files.
    pub const ALL: [Requirement; 1] = [Requirement::PinnedPodIps];

    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::PinnedPodIps => "pinned-pod-ips",
        }
    }

    /// Whether backend `kind` offers this.
    pub fn met_by(self, kind: BackendKind) -> bool {
        match self {
            Requirement::PinnedPodIps => kind == BackendKind::Local,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Profile {
    /// The requirements backend `kind` does not meet; empty when the profile can run there.
    pub fn unmet(&self, kind: BackendKind) -> Vec<Requirement> {
        self.requires
            .iter()
            .copied()
            .filter(|r| !r.met_by(kind))
            .collect()
    }

    /// The backends that meet every requirement.
    pub fn backends(&self) -> Vec<BackendKind> {
        [BackendKind::Local, BackendKind::Kube]
            .into_iter()
            .filter(|kind| self.unmet(*kind).is_empty())
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: Spanned<String>,
    fixtures: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    modes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    requires: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Every profile in `dir` (its `*.yaml` files), in name order.
///
/// # Errors
/// [`Error::Read`] when `dir` cannot be listed; [`Error::NoProfiles`] when it has none.
/// Profiles that fail to load are returned as errors in the list, so that one bad file does
/// not hide the others.
pub fn load_all(dir: &Path) -> Result<Vec<Result<Profile>>> {
    let mut files = profile_files(dir)?;
    files.sort();
    Ok(files.iter().map(|file| load_file(file, dir)).collect())
}

/// The profile called `name` in `dir` (`<dir>/<name>.yaml`).
///
/// # Errors
/// [`Error::UnknownProfile`] listing the profiles there; the errors of [`load_file`].
pub fn load(dir: &Path, name: &str) -> Result<Profile> {
    let file = dir.join(format!("{name}.yaml"));
    if !file.is_file() {
        let mut known: Vec<String> = profile_files(dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        known.sort();
        return Err(Error::UnknownProfile {
            name: name.to_owned(),
            dir: dir.to_owned(),
            known,
        });
    }
    load_file(&file, dir)
}

fn profile_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let read_error = |source| Error::Read {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::NoProfiles {
            dir: dir.to_owned(),
        });
    }
    Ok(files)
}

/// The directory profile paths are relative to: the one holding the profiles directory.
pub fn root_of(dir: &Path) -> PathBuf {
    match dir.file_name() {
        Some(_) => dir.parent().map(Path::to_owned).unwrap_or_default(),
        // `.` or `..`: the parent is one level further up.
        None => dir.join(".."),
    }
}

/// Reads and validates the profile file `file` of profiles directory `dir`.
///
/// # Errors
/// The file cannot be read, is not valid YAML of this format, or a field is invalid: an
/// unknown mode or requirement, a duplicate, or a fixture directory that does not exist or
/// holds no topology file.
pub fn load_file(file: &Path, dir: &Path) -> Result<Profile> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
        path: file.to_owned(),
        source,
    })?;
    parse(&text, file, &root_of(dir))
}

/// Parses the text of profile file `file`, resolving fixture paths against `root`.
///
/// # Errors
/// As [`load_file`].
pub fn parse(text: &str, file: &Path, root: &Path) -> Result<Profile> {
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let at = |field: &str, line: u64, message: String| {
        Error::Profile(FieldError {
            file: file.to_owned(),
            field: field.to_owned(),
            line,
            message,
        })
    };
    if !is_kebab_case(&name) {
        let message = format!(
            "the file name {name:?} is the profile's name: use lowercase letters, digits and \
             dashes"
        );
        return Err(at("", 0, message));
    }
    // Errors are one line each, so that they fit a log line and an exit message.
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let raw: RawProfile =
        serde_saphyr::from_str_with_options(text, options).map_err(|source| Error::Syntax {
            file: file.to_owned(),
            source: Box::new(source),
        })?;

    let description = raw.description.value.trim().to_owned();
    if description.is_empty() {
        let line = raw.description.referenced.line();
        return Err(at("description", line, "must not be empty".to_owned()));
    }

    let mut fixtures = Vec::new();
    let mut fixture_dirs = Vec::new();
    if raw.fixtures.value.is_empty() {
        let line = raw.fixtures.referenced.line();
        return Err(at("fixtures", line, "name at least one fixture".to_owned()));
    }
    for (i, path) in raw.fixtures.value.into_iter().enumerate() {
        let field = format!("fixtures[{i}]");
        let line = path.referenced.line();
        let written = path.value;
        if written.trim().is_empty() {
            return Err(at(&field, line, "empty path".to_owned()));
        }
        if fixtures.contains(&written) {
            return Err(at(&field, line, format!("{written} is listed twice")));
        }
        let dir = root.join(&written);
        if !dir.is_dir() {
            let message = format!(
                "fixture directory {} does not exist (paths are relative to {})",
                dir.display(),
                shown(root)
            );
            return Err(at(&field, line, message));
        }
        if !dir.join(TOPOLOGY_FILE).is_file() {
            let message = format!(
                "{} holds no {TOPOLOGY_FILE}: name a fixture directory",
                dir.display()
            );
            return Err(at(&field, line, message));
        }
        fixtures.push(written);
        fixture_dirs.push(dir);
    }

    let modes = match raw.modes {
        None => vec![Via::Pod],
        Some(list) => {
            if list.value.is_empty() {
                let line = list.referenced.line();
                return Err(at(
                    "modes",
                    line,
                    "name at least one of pod, service, dns".into(),
                ));
            }
            let mut modes = Vec::new();
            for (i, mode) in list.value.into_iter().enumerate() {
                let field = format!("modes[{i}]");
                let line = mode.referenced.line();
                let via: Via = mode.value.parse().map_err(|m| at(&field, line, m))?;
                if modes.contains(&via) {
                    return Err(at(&field, line, format!("{via} is listed twice")));
                }
                modes.push(via);
            }
            modes
        }
    };

    let mut requires = Vec::new();
    for (i, item) in raw
        .requires
        .map(|r| r.value)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let field = format!("requires[{i}]");
        let line = item.referenced.line();
        let Some(requirement) = Requirement::ALL
            .into_iter()
            .find(|r| r.as_str() == item.value)
        else {
            let known: Vec<&str> = Requirement::ALL.iter().map(|r| r.as_str()).collect();
            let message = format!(
                "unknown requirement {:?}: expected one of {}",
                item.value,
                known.join(", ")
            );
            return Err(at(&field, line, message));
        };
        if requires.contains(&requirement) {
            return Err(at(&field, line, format!("{requirement} is listed twice")));
        }
        requires.push(requirement);
    }

    Ok(Profile {
        name,
        file: file.to_owned(),
        description,
        fixtures,
        fixture_dirs,
        modes,
        requires,
    })
}

fn shown(root: &Path) -> String {
    if root.as_os_str().is_empty() {
        "the working directory".to_owned()
    } else {
        root.display().to_string()
    }
}

fn is_kebab_case(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root with fixture directories `a` and `b` (each with a topology file) and `empty`.
    fn root() -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "nph-profile-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        for fixture in ["fixtures/a", "fixtures/b"] {
            std::fs::create_dir_all(root.join(fixture)).unwrap();
            std::fs::write(root.join(fixture).join(TOPOLOGY_FILE), "").unwrap();
        }
        std::fs::create_dir_all(root.join("fixtures/empty")).unwrap();
        root
    }

    fn parse_named(name: &str, text: &str) -> Result<Profile> {
        let root = root();
        let result = parse(text, &root.join("profiles").join(name), &root);
        std::fs::remove_dir_all(&root).unwrap();
        result
    }

    fn error(text: &str) -> String {
        parse_named("p.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_profile_names_its_fixtures_modes_and_requirements() {
        let profile = parse_named(
            "two-fixtures.yaml",
            "description: both\nfixtures: [fixtures/a, fixtures/b]\nmodes: [service, pod]\n\
             requires: [pinned-pod-ips]\n",
        )
        .unwrap();
        assert_eq!(profile.name, "two-fixtures");
        assert_eq!(profile.fixtures, ["fixtures/a", "fixtures/b"]);
        assert!(profile.fixture_dirs[1].ends_with("fixtures/b"));
        assert_eq!(profile.modes, [Via::Service, Via::Pod]);
        assert_eq!(profile.requires, [Requirement::PinnedPodIps]);
        assert_eq!(profile.backends(), [BackendKind::Local]);
        assert_eq!(
            profile.unmet(BackendKind::Kube),
            [Requirement::PinnedPodIps]
        );
    }

    #[test]
    fn modes_default_to_pod_and_requirements_to_none() {
        let profile = parse_named("p.yaml", "description: d\nfixtures: [fixtures/a]\n").unwrap();
        assert_eq!(profile.modes, [Via::Pod]);
        assert!(profile.requires.is_empty());
        assert_eq!(profile.backends(), [BackendKind::Local, BackendKind::Kube]);
    }

    #[test]
    fn a_missing_fixture_directory_names_the_field_line_and_where_paths_are_relative_to() {
        let message = error("description: d\nfixtures:\n  - fixtures/a\n  - fixtures/upstream\n");
        assert!(
            message.contains("p.yaml: fixtures[1]: fixture directory"),
            "{message}"
        );
        assert!(
            message.contains("fixtures/upstream does not exist"),
            "{message}"
        );
        assert!(message.contains("(line 4)"), "{message}");
    }

    #[test]
    fn a_directory_without_a_topology_is_not_a_fixture() {
        let message = error("description: d\nfixtures: [fixtures/empty]\n");
        assert!(message.contains("fixtures[0]"), "{message}");
        assert!(message.contains("holds no topology.yaml"), "{message}");
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases = [
            (
                "description: d\nfixtures: [fixtures/a]\nmodes: [pod, ssh]\n",
                "modes[1]",
            ),
            (
                "description: d\nfixtures: [fixtures/a]\nmodes: [pod, pod]\n",
                "listed twice",
            ),
            (
                "description: d\nfixtures: [fixtures/a]\nmodes: []\n",
                "modes:",
            ),
            (
                "description: d\nfixtures: []\n",
                "name at least one fixture",
            ),
            (
                "description: ' '\nfixtures: [fixtures/a]\n",
                "description: must not be empty",
            ),
            (
                "description: d\nfixtures: [fixtures/a]\nrequires: [gpu]\n",
                "requires[0]",
            ),
            (
                "description: d\nfixtures: [fixtures/a, fixtures/a]\n",
                "fixtures[1]",
            ),
            (
                "description: d\nfixtures: [fixtures/a]\nbackend: kube\n",
                "invalid profile",
            ),
            ("fixtures: [fixtures/a]\n", "invalid profile"),
        ];
        for (text, expected) in cases {
            let message = format!(
                "{:#}",
                anyhow::Error::from(parse_named("p.yaml", text).unwrap_err())
            );
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn the_file_name_must_be_a_kebab_case_profile_name() {
        let message = parse_named(
            "My Profile.yaml",
            "description: d\nfixtures: [fixtures/a]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("the profile's name"), "{message}");
    }

    #[test]
    fn the_root_is_the_directory_holding_the_profiles_directory() {
        assert_eq!(root_of(Path::new("profiles")), PathBuf::new());
        assert_eq!(root_of(Path::new("/repo/profiles")), PathBuf::from("/repo"));
        assert_eq!(root_of(Path::new(".")), PathBuf::from("./.."));
    }

    #[test]
    fn the_shipped_profiles_load_and_an_unknown_name_lists_them() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles");
        let seed = load(&dir, "meeting-app").unwrap();
        assert_eq!(seed.fixtures, ["fixtures/meeting-app"]);
        assert_eq!(seed.modes, [Via::Pod, Via::Service, Via::Dns]);
        assert!(seed.fixture_dirs[0].join("topology.yaml").is_file());
        let semantics = load(&dir, "semantics").unwrap();
        assert!(
            semantics.requires.is_empty(),
            "ipBlocks follow the pods on a cluster"
        );
        let upstream = load(&dir, "upstream-model").unwrap();
        assert_eq!(upstream.fixtures, ["fixtures/upstream-model"]);
        assert!(upstream.requires.is_empty());
        let message = load(&dir, "nope").unwrap_err().to_string();
        assert!(
            message.contains("meeting-app, semantics, upstream-model"),
            "{message}"
        );
    }
}
