//! The HTML report in a real headless browser: the page's script draws one cell per edge of a
//! real local-backend run of the seed, marks exactly the mismatches (of the right kind) when
//! some edges are flipped, words each step's summary as the text report does, applies the
//! filters of the URL fragment, shows an edge's explanation in the details panel, renders
//! markup from a report as text, and paints a screenshot.
//!
//! Needs `chromium` (installed by scripts/setup.sh; another binary with NETPOL_CHROMIUM). When
//! it is missing the tests fail if `CI` is set and are skipped with a message otherwise. The
//! tests built on the seed run also need root, as the local backend does (see
//! tests/common). The browser never reaches the network: the page refers to nothing outside
//! itself, forbids fetches in its Content-Security-Policy, and chromium runs with background
//! networking off and every request sent to a closed loopback port.
//!
//! `NETPOL_SCREENSHOT=docs/report-screenshot.png` (a path relative to the repository root, or
//! absolute) keeps the screenshot of the seed run: `make report-screenshot`.

#[expect(
    dead_code,
    reason = "the local backend's helpers; these tests use only privileged()"
)]
mod common;

use netpol_harness::backend::{LocalBackend, LocalConfig};
use netpol_harness::report::html::{Page, ProfilePage, render};
use netpol_harness::report::matrix::{Cell, convergence_line, counts_line};
use netpol_harness::report::{
    Convergence, Counts, EdgeReport, Expected, Metadata, PhaseTimes, RunReport, StepReport, passes,
};
use netpol_harness::runner::{Fixture, Plan, RunOptions, Silent, run_fixture};
use netpol_probes::spec::Protocol;
use netpol_probes::wire::Outcome;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long chromium may take to render one page before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The browser.

/// `name` itself when it is a path, else the first file of that name on `PATH`.
fn find_program(name: &std::ffi::OsStr) -> Option<PathBuf> {
    let candidate = PathBuf::from(name);
    if candidate.components().count() > 1 {
        return candidate.is_file().then_some(candidate);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(&candidate))
        .find(|path| path.is_file())
}

/// The chromium binary, or `None` (after saying so) when the test must be skipped.
fn chromium() -> Option<PathBuf> {
    // Debian's name first, then the names Ubuntu and Chrome installs use (as scripts/setup.sh
    // accepts them).
    let (name, found) = match std::env::var_os("NETPOL_CHROMIUM") {
        Some(name) => {
            let found = find_program(&name);
            (name, found)
        }
        None => ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find_map(|name| find_program(name.as_ref()).map(|found| (name.into(), Some(found))))
            .unwrap_or_else(|| ("chromium".into(), None)),
    };
    if found.is_none() {
        let message = format!(
            "{} not found: scripts/setup.sh installs Debian's chromium (run it as root), or \
             set NETPOL_CHROMIUM to a Chromium binary",
            name.to_string_lossy()
        );
        if std::env::var_os("CI").is_some() || std::env::var_os("NETPOL_SCREENSHOT").is_some() {
            panic!(
                "{message} (CI or NETPOL_SCREENSHOT is set, so the browser test cannot be \
                 skipped)"
            );
        }
        eprintln!("skipped: {message}");
    }
    found
}

/// The command that starts `browser`. As root it runs in a network namespace of its own,
/// which has nothing but a loopback that is down: chromium tries the network despite its
/// flags (component updates, account checks), and there it cannot reach anything. Without
/// root, the flags of [`run_chromium`] send every request to a closed loopback port.
fn browser_command(browser: &Path) -> Command {
    match find_program("unshare".as_ref()) {
        Some(unshare) if nix::unistd::Uid::effective().is_root() => {
            let mut command = Command::new(unshare);
            command.arg("--net").arg("--").arg(browser);
            command
        }
        _ => Command::new(browser),
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "netpol-html-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs chromium headless on `url` with `extra` arguments, its standard output written to
/// `stdout`; kills its whole process group after [`BROWSER_TIMEOUT`].
fn run_chromium(browser: &Path, dir: &Path, url: &str, extra: &[String], stdout: &Path) {
    let profile = dir.join("profile");
    let stderr = dir.join("chromium.stderr");
    let mut command = browser_command(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--disable-sync",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--no-default-browser-check",
            "--no-first-run",
            "--hide-scrollbars",
            // Whatever still tries the network meets a closed loopback port.
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout).expect("create chromium's output file"))
        .stderr(std::fs::File::create(&stderr).expect("create chromium's error file"))
        .process_group(0);
    let mut child = command.spawn().expect("start chromium");
    let group = child.id() as libc::pid_t;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break Some(status);
        }
        if start.elapsed() > BROWSER_TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The group is chromium's alone (process_group(0) above): end any helper process left.
    // SAFETY: kill(2) with a negative pid signals that process group and nothing else.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
    let errors = std::fs::read_to_string(&stderr).unwrap_or_default();
    let tail: String = errors
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    match status {
        None => {
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?} on {url}; killed\n{tail}")
        }
        Some(status) if !status.success() => panic!("chromium failed ({status}) on {url}\n{tail}"),
        Some(_) => {}
    }
}

/// A page written to a temporary directory, loaded by chromium.
struct Rendered {
    dir: TempDir,
    file: PathBuf,
    browser: PathBuf,
}

impl Rendered {
    fn new(browser: PathBuf, label: &str, html: &str) -> Rendered {
        let dir = TempDir::new(label);
        let file = dir.0.join("report.html");
        std::fs::write(&file, html).expect("write the page");
        Rendered { dir, file, browser }
    }

    fn url(&self, fragment: &str) -> String {
        let url = format!("file://{}", self.file.display());
        if fragment.is_empty() {
            url
        } else {
            format!("{url}#{fragment}")
        }
    }

    /// The DOM after the page's script ran, with `fragment` as the URL fragment.
    fn dom(&self, fragment: &str) -> Dom {
        let out = self.dir.0.join("dom.html");
        run_chromium(
            &self.browser,
            &self.dir.0,
            &self.url(fragment),
            &["--dump-dom".to_owned()],
            &out,
        );
        let text = std::fs::read_to_string(&out).expect("chromium's DOM is UTF-8");
        assert!(
            text.contains("</html>"),
            "chromium printed no DOM: {text:.500}"
        );
        Dom::parse(text)
    }

    /// A 1400 x 1000 screenshot of the page, as PNG bytes.
    fn screenshot(&self, fragment: &str) -> Vec<u8> {
        let png = self.dir.0.join("screenshot.png");
        let args = [
            format!("--screenshot={}", png.display()),
            "--window-size=1400,1000".to_owned(),
        ];
        run_chromium(
            &self.browser,
            &self.dir.0,
            &self.url(fragment),
            &args,
            &self.dir.0.join("out"),
        );
        std::fs::read(&png).expect("chromium wrote the screenshot")
    }
}

// ---------------------------------------------------------------------------------------------
// The DOM as chromium serializes it.

/// One element's start tag.
#[derive(Debug)]
struct Element {
    name: String,
    attributes: BTreeMap<String, String>,
    /// Where its content starts in the DOM text.
    content: usize,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    fn has_class(&self, class: &str) -> bool {
        self.attribute("class")
            .is_some_and(|classes| classes.split_whitespace().any(|c| c == class))
    }
}

/// The serialized DOM and its elements, in document order.
struct Dom {
    text: String,
    elements: Vec<Element>,
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

impl Dom {
    /// Reads the start tags of `text`. The serializer quotes every attribute value with `"`
    /// (escaped inside as `&quot;`) and escapes `<` in text, so outside script and style
    /// elements a `<` starts a tag, and a tag ends at the first `>` outside quotes.
    fn parse(text: String) -> Dom {
        let bytes = text.as_bytes();
        let mut elements = Vec::new();
        let mut at = 0;
        while let Some(offset) = text[at..].find('<') {
            let start = at + offset;
            if text[start..].starts_with("<!--") {
                at = start
                    + text[start..]
                        .find("-->")
                        .map_or(text.len() - start, |e| e + 3);
                continue;
            }
            let mut end = start + 1;
            let mut quoted = false;
            while end < bytes.len() && (quoted || bytes[end] != b'>') {
                if bytes[end] == b'"' {
                    quoted = !quoted;
                }
                end += 1;
            }
            let tag = &text[start + 1..end.min(text.len())];
            at = (end + 1).min(text.len());
            if tag.starts_with('/') || tag.starts_with('!') {
                continue;
            }
            let element = Element {
                name: tag
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase(),
                attributes: attributes(tag),
                content: at,
            };
            if element.name == "script" || element.name == "style" {
                let close = format!("</{}", element.name);
                at += text[at..].find(&close).unwrap_or(text.len() - at);
            }
            elements.push(element);
        }
        Dom { text, elements }
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements.iter().filter(move |e| e.name == name)
    }

    /// The `td.cell[data-edge]` elements: one per edge drawn.
    fn cells(&self) -> Vec<&Element> {
        self.all("td")
            .filter(|e| e.has_class("cell") && e.attribute("data-edge").is_some())
            .collect()
    }

    fn mismatches(&self) -> Vec<&Element> {
        self.cells()
            .into_iter()
            .filter(|e| e.has_class("mismatch"))
            .collect()
    }

    /// The text inside `element` (which must not contain an element of its own name), tags
    /// removed and entities decoded.
    fn text_of(&self, element: &Element) -> String {
        let rest = &self.text[element.content..];
        let inner = &rest[..rest
            .find(&format!("</{}>", element.name))
            .unwrap_or(rest.len())];
        let mut text = String::new();
        let mut in_tag = false;
        let mut quoted = false;
        for c in inner.chars() {
            match (in_tag, c) {
                (false, '<') => in_tag = true,
                (false, c) => text.push(c),
                (true, '"') => quoted = !quoted,
                (true, '>') if !quoted => in_tag = false,
                (true, _) => {}
            }
        }
        unescape(&text)
    }

    fn by_id(&self, id: &str) -> &Element {
        self.elements
            .iter()
            .find(|e| e.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no element #{id}"))
    }

    /// The text of each table's `p.summary`, by its step name (`step` or `step@mode`).
    fn summaries(&self) -> BTreeMap<String, String> {
        self.all("p")
            .filter(|e| e.has_class("summary"))
            .map(|e| {
                (
                    e.attribute("data-step").unwrap_or("").to_owned(),
                    self.text_of(e),
                )
            })
            .collect()
    }
}

fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    let mut rest = tag
        .trim_start_matches(|c: char| !c.is_whitespace())
        .trim_start();
    while !rest.is_empty() && !rest.starts_with('/') {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = &rest[name_end..];
        let value = if let Some(quoted) = rest.strip_prefix("=\"") {
            let close = quoted.find('"').unwrap_or(quoted.len());
            rest = quoted.get(close + 1..).unwrap_or("");
            unescape(&quoted[..close])
        } else {
            String::new()
        };
        attributes.insert(name, value);
        rest = rest.trim_start();
    }
    attributes
}

// ---------------------------------------------------------------------------------------------
// Reports and what the page must say about them.

/// The seed, run once on the local backend for every test of this binary; `None` when the
/// privileged tests are skipped.
fn seed_report() -> Option<&'static RunReport> {
    static REPORT: OnceLock<RunReport> = OnceLock::new();
    if !common::privileged() {
        return None;
    }
    Some(REPORT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meeting-app");
        let fixture = Fixture::load(&dir).expect("the seed fixture loads");
        let plan = Plan::new(&fixture).expect("the seed plans");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let options = RunOptions {
            handle_ctrl_c: false,
            ..RunOptions::default()
        };
        let mut backend = LocalBackend::new(LocalConfig::default());
        runtime
            .block_on(run_fixture(
                &mut backend,
                &fixture,
                &plan,
                &options,
                &Silent,
            ))
            .expect("the seed run completes")
    }))
}

fn facts(report: &RunReport) -> Vec<(String, String)> {
    vec![
        ("Backend".to_owned(), report.metadata.backend.clone()),
        (
            "Harness".to_owned(),
            report.metadata.harness_version.clone(),
        ),
        ("Fixture".to_owned(), report.metadata.fixture.clone()),
        ("Started".to_owned(), report.metadata.started_at.clone()),
    ]
}

fn page(title: &str, report: &RunReport) -> String {
    let facts = facts(report);
    let reports = std::slice::from_ref(report);
    let profiles = [ProfilePage {
        name: "local backend (network namespaces + nftables)",
        reports,
    }];
    render(&Page {
        title,
        facts: &facts,
        profiles: &profiles,
    })
}

/// Each table of `report` (a step, or a step and probe mode as `step@mode`) with its edges,
/// as the text matrix splits them.
fn tables(report: &RunReport) -> BTreeMap<String, (&StepReport, Vec<&EdgeReport>)> {
    let mut tables = BTreeMap::new();
    for step in &report.steps {
        let all_pod = step.edges.iter().all(|e| e.via == "pod");
        for edge in &step.edges {
            let name = if all_pod || edge.via == "pod" {
                step.name.clone()
            } else {
                format!("{}@{}", step.name, edge.via)
            };
            tables
                .entry(name)
                .or_insert_with(|| (step, Vec::new()))
                .1
                .push(edge);
        }
    }
    tables
}

fn counts(edges: &[&EdgeReport]) -> Counts {
    let mut counts = Counts::default();
    for edge in edges {
        if edge.passed {
            counts.passed += 1;
            continue;
        }
        counts.failed += 1;
        match Cell::of(edge) {
            Cell::Broken => counts.broken += 1,
            Cell::BlockedAllow => counts.blocked_allows += 1,
            _ => counts.leaked_denies += 1,
        }
    }
    counts
}

/// Each table's summary as the text report words it.
fn expected_summaries(report: &RunReport) -> BTreeMap<String, String> {
    tables(report)
        .into_iter()
        .map(|(name, (step, edges))| {
            let line = format!(
                "{}; {}",
                counts_line(&counts(&edges)),
                convergence_line(step)
            );
            (name, line)
        })
        .collect()
}

fn edge_names<'a>(edges: impl Iterator<Item = &'a EdgeReport>) -> Vec<String> {
    let mut names: Vec<String> = edges.map(|e| e.name.clone()).collect();
    names.sort();
    names
}

fn drawn_names(cells: &[&Element]) -> Vec<String> {
    let mut names: Vec<String> = cells
        .iter()
        .map(|e| e.attribute("data-edge").unwrap_or("").to_owned())
        .collect();
    names.sort();
    names
}

/// Fails with the edges drawn but not expected and expected but not drawn.
#[track_caller]
fn assert_same_edges(drawn: &[String], expected: &[String], what: &str) {
    if drawn == expected {
        return;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !drawn.contains(e))
        .take(10)
        .collect();
    let extra: Vec<&String> = drawn
        .iter()
        .filter(|e| !expected.contains(e))
        .take(10)
        .collect();
    panic!(
        "{what}: {} cells drawn, {} edges expected\nnot drawn (first 10): {missing:#?}\n\
         drawn but not expected (first 10): {extra:#?}",
        drawn.len(),
        expected.len()
    );
}

fn namespace(pod: &str) -> &str {
    pod.split_once('/').map_or("", |(namespace, _)| namespace)
}

/// `text` percent-encoded for a URL fragment parameter.
fn fragment_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The seed's report with three edges of its first step flipped: an allowed edge seen
/// closed, a denied edge seen open, an allowed edge answered by the wrong pod; and one
/// denied edge of its last step seen open.
fn flipped(seed: &RunReport) -> RunReport {
    let mut report = seed.clone();
    let last = report.steps.len() - 1;
    let mut flip = |step: usize, expected: Expected, observed: Outcome, skip: usize| {
        let edge = report.steps[step]
            .edges
            .iter_mut()
            .filter(|e| e.expected == expected && e.passed)
            .nth(skip)
            .expect("an edge to flip");
        edge.observed = observed;
        edge.passed = passes(edge.expected, observed);
        edge.detail = format!("flipped by the test to {observed}");
    };
    flip(0, Expected::Allow, Outcome::Timeout, 0);
    flip(0, Expected::Deny, Outcome::Connected, 0);
    flip(0, Expected::Allow, Outcome::WrongIdentity, 1);
    flip(last, Expected::Allow, Outcome::Refused, 0);
    report
}

fn write_screenshot_if_asked(png: &[u8]) {
    let Some(path) = std::env::var_os("NETPOL_SCREENSHOT") else {
        return;
    };
    let mut path = PathBuf::from(path);
    if path.is_relative() {
        path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    }
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("screenshot written to {}", path.display());
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_clean_seed_run_draws_one_cell_per_edge_no_mismatch_and_each_steps_summary() {
    let Some(browser) = chromium() else { return };
    let Some(seed) = seed_report() else { return };
    assert!(seed.passed(), "the seed run itself must pass");

    let rendered = Rendered::new(
        browser,
        "clean",
        &page("meeting-app on the local backend", seed),
    );
    let dom = rendered.dom("");
    let cells = dom.cells();
    assert_eq!(
        cells.len(),
        seed.edges().count(),
        "one cell per edge of every step"
    );
    assert_same_edges(
        &drawn_names(&cells),
        &edge_names(seed.edges()),
        "every edge",
    );
    assert_eq!(dom.mismatches().len(), 0);
    for cell in &cells {
        let edge = seed
            .edges()
            .find(|e| Some(e.name.as_str()) == cell.attribute("data-edge"))
            .unwrap();
        assert_eq!(cell.attribute("data-kind"), Some(Cell::of(edge).name()));
        let title = cell
            .attribute("title")
            .expect("a cell explains itself on hover");
        assert!(title.contains(&edge.explanation), "{title}");
        assert!(title.contains(&edge.dialled), "{title}");
    }
    assert_eq!(dom.summaries(), expected_summaries(seed));
    let verdict = dom.text_of(dom.by_id("verdict"));
    assert!(
        verdict.starts_with(&format!("PASS {}", counts_line(&seed.counts()))),
        "{verdict}"
    );
    let steps: Vec<&str> = dom
        .all("section")
        .filter(|e| e.has_class("step"))
        .filter_map(|e| e.attribute("data-step"))
        .collect();
    assert_eq!(steps, ["policies", "delete-all-policies"]);

    // The screenshot shows an explained denial in the details panel.
    let denied = seed.steps[0]
        .edges
        .iter()
        .find(|e| e.expected == Expected::Deny && e.src.ends_with("/frontend"))
        .expect("the seed denies something to its frontend");
    let png = rendered.screenshot(&format!("edge={}", fragment_value(&denied.name)));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let dimension = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!(
        (dimension(16), dimension(20)),
        (1400, 1000),
        "IHDR width and height"
    );
    assert!(
        png.len() > 30_000,
        "a {} byte screenshot is too plain to be the report",
        png.len()
    );
    write_screenshot_if_asked(&png);
}

#[test]
fn flipped_edges_are_drawn_as_mismatches_of_their_kind_and_counted() {
    let Some(browser) = chromium() else { return };
    let Some(seed) = seed_report() else { return };
    let report = flipped(seed);
    let failed: Vec<&EdgeReport> = report.edges().filter(|e| !e.passed).collect();
    assert_eq!(failed.len(), 4);
    let leaked = failed
        .iter()
        .find(|e| e.expected == Expected::Deny)
        .expect("a leaked deny");

    let rendered = Rendered::new(browser, "flipped", &page("flipped", &report));
    let dom = rendered.dom(&format!("edge={}", fragment_value(&leaked.name)));
    assert_eq!(dom.cells().len(), report.edges().count());
    let mismatches = dom.mismatches();
    let failed_names = edge_names(failed.iter().copied());
    assert_same_edges(&drawn_names(&mismatches), &failed_names, "the mismatches");
    let kinds: BTreeSet<&str> = mismatches
        .iter()
        .filter_map(|e| e.attribute("data-kind"))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["blocked-allow", "broken", "leaked-deny"])
    );
    for cell in &mismatches {
        let edge = failed
            .iter()
            .find(|e| Some(e.name.as_str()) == cell.attribute("data-edge"))
            .unwrap();
        assert_eq!(cell.attribute("data-kind"), Some(Cell::of(edge).name()));
        let symbol = Cell::of(edge).symbol().to_string();
        assert_eq!(
            dom.text_of(cell),
            symbol,
            "a mismatch is marked by its symbol"
        );
    }
    let summaries = dom.summaries();
    assert_eq!(summaries, expected_summaries(&report));
    assert!(
        summaries["policies"].contains("3 failed (1 allow blocked, 1 deny open, 1 broken)"),
        "{summaries:?}"
    );
    let verdict = dom.text_of(dom.by_id("verdict"));
    assert!(verdict.starts_with("FAIL "), "{verdict}");

    // The fragment selected the leaked deny: the details panel explains it.
    let details = dom.by_id("details");
    assert_eq!(details.attribute("data-edge"), Some(leaked.name.as_str()));
    let text = dom.text_of(details);
    assert!(
        text.contains("MISMATCH: expected deny, seen allowed"),
        "{text}"
    );
    assert!(text.contains(&leaked.explanation), "{text}");
    assert!(text.contains(&leaked.detail), "{text}");
    let selected: Vec<&Element> = dom
        .cells()
        .into_iter()
        .filter(|e| e.has_class("selected"))
        .collect();
    assert_eq!(selected.len(), 1);
    assert_eq!(
        selected[0].attribute("data-edge"),
        Some(leaked.name.as_str())
    );
}

#[test]
fn the_filters_of_the_url_fragment_hide_namespaces_protocols_and_matching_edges() {
    let Some(browser) = chromium() else { return };
    let Some(seed) = seed_report() else { return };
    let report = flipped(seed);
    let rendered = Rendered::new(browser, "filters", &page("filters", &report));
    let total = report.edges().count();

    let dom = rendered.dom("hide-proto=UDP");
    let tcp = report.edges().filter(|e| e.protocol != Protocol::Udp);
    let drawn = drawn_names(&dom.cells());
    assert!(drawn.len() < total, "the seed has UDP edges to hide");
    assert_same_edges(&drawn, &edge_names(tcp), "UDP hidden");
    let boxes: Vec<&Element> = dom
        .all("input")
        .filter(|e| e.attribute("name") == Some("proto"))
        .collect();
    let unchecked: Vec<&str> = boxes
        .iter()
        .filter(|e| e.attribute("checked").is_none())
        .filter_map(|e| e.attribute("value"))
        .collect();
    assert_eq!(unchecked, ["UDP"], "the checkboxes show the filter");

    let dom = rendered.dom("hide-ns=meeting-app");
    let elsewhere = report
        .edges()
        .filter(|e| namespace(&e.src) != "meeting-app" && namespace(&e.dst) != "meeting-app");
    let drawn = drawn_names(&dom.cells());
    assert!(!drawn.is_empty() && drawn.len() < total);
    assert_same_edges(
        &drawn,
        &edge_names(elsewhere),
        "namespace meeting-app hidden",
    );
    assert!(dom.all("p").any(|e| e.has_class("filtered")));

    // Only the rows and columns with a mismatch: every mismatch stays in view.
    let dom = rendered.dom("only=mismatches");
    let mut expected = Vec::new();
    for (_, edges) in tables(&report).values() {
        let rows: BTreeSet<&str> = edges
            .iter()
            .filter(|e| !e.passed)
            .map(|e| e.src.as_str())
            .collect();
        let columns: BTreeSet<(&str, u16, Protocol)> = edges
            .iter()
            .filter(|e| !e.passed)
            .map(|e| (e.dst.as_str(), e.port, e.protocol))
            .collect();
        expected.extend(edges.iter().copied().filter(|e| {
            rows.contains(e.src.as_str()) && columns.contains(&(e.dst.as_str(), e.port, e.protocol))
        }));
    }
    let expected = edge_names(expected.into_iter());
    assert_same_edges(
        &drawn_names(&dom.cells()),
        &expected,
        "only mismatching rows and columns",
    );
    assert_eq!(dom.mismatches().len(), 4);
}

#[test]
fn a_step_probed_through_several_modes_is_drawn_as_one_table_per_mode() {
    let Some(browser) = chromium() else { return };
    let Some(seed) = seed_report() else { return };
    let mut report = seed.clone();
    let through_service: Vec<EdgeReport> = report.steps[0]
        .edges
        .iter()
        .map(|edge| EdgeReport {
            name: edge
                .name
                .replacen("::policies::", "::policies@service::", 1),
            via: "service".to_owned(),
            ..edge.clone()
        })
        .collect();
    report.steps[0].edges.extend(through_service);

    let rendered = Rendered::new(browser, "modes", &page("modes", &report));
    let dom = rendered.dom("");
    assert_same_edges(
        &drawn_names(&dom.cells()),
        &edge_names(report.edges()),
        "both modes",
    );
    let summaries = dom.summaries();
    let tables: Vec<&str> = summaries.keys().map(String::as_str).collect();
    assert_eq!(
        tables,
        ["delete-all-policies", "policies", "policies@service"]
    );
    assert_eq!(summaries, expected_summaries(&report));
}

/// A small report whose pod names, detail and explanation carry markup.
fn report_with_markup() -> RunReport {
    let evil = "app/</script><b>bold</b><!--";
    let edge = |src: &str, dst: &str, expected: Expected, observed: Outcome| EdgeReport {
        name: format!("demo::policies::{src}->{dst}:80/TCP::{expected}"),
        src: src.to_owned(),
        dst: dst.to_owned(),
        port: 80,
        protocol: Protocol::Tcp,
        expected,
        via: "pod".to_owned(),
        dialled: "10.0.0.2:80".to_owned(),
        observed,
        latency_ms: 2000.0,
        detail: "<i>no answer</i> & \"quotes\"".to_owned(),
        explanation: format!("{src} -> {dst}: {expected}</pre><script>alert(1)</script>"),
        passed: passes(expected, observed),
    };
    RunReport {
        metadata: Metadata {
            fixture: "demo <b>".to_owned(),
            backend: "fake".to_owned(),
            harness_version: "0.1.0".to_owned(),
            topology_hash: "0".to_owned(),
            started_at: "2026-12-03T16:00:00.000Z".to_owned(),
            finished_at: "2026-12-03T16:00:01.000Z".to_owned(),
            probe_timeout_ms: 2000,
            converge_timeout_ms: 30000,
            faults: vec![],
            pods: 2,
            readdressed: Vec::new(),
            phases: PhaseTimes::default(),
        },
        steps: vec![StepReport {
            name: "policies".to_owned(),
            description: Some("<em>described</em>".to_owned()),
            convergence: Convergence {
                converged: true,
                time_ms: Some(10.0),
                resolution_ms: Some(5.0),
                rounds: 2,
                elapsed_ms: 20.0,
            },
            edges: vec![
                edge(evil, "app/web", Expected::Deny, Outcome::Timeout),
                edge("app/web", evil, Expected::Allow, Outcome::Connected),
            ],
        }],
    }
}

#[test]
fn markup_in_a_report_is_drawn_as_text_never_as_elements() {
    let Some(browser) = chromium() else { return };
    let report = report_with_markup();
    let rendered = Rendered::new(browser, "markup", &page("markup <b>", &report));
    let dom = rendered.dom(&format!(
        "edge={}",
        fragment_value(&report.steps[0].edges[0].name)
    ));
    for name in ["b", "i", "em"] {
        assert_eq!(dom.all(name).count(), 0, "a <{name}> element from a report");
    }
    assert_eq!(dom.all("script").count(), 2, "only the page's own scripts");
    assert_eq!(dom.cells().len(), 2, "the script ran despite the markup");
    let rows: Vec<String> = dom
        .all("th")
        .filter(|e| e.has_class("row"))
        .map(|e| dom.text_of(e))
        .collect();
    assert!(
        rows.iter().any(|r| r == "app/</script><b>bold</b><!--"),
        "{rows:?}"
    );
    let details = dom.text_of(dom.by_id("details"));
    assert!(
        details.contains("</pre><script>alert(1)</script>"),
        "{details}"
    );
    assert!(
        details.contains("<i>no answer</i> & \"quotes\""),
        "{details}"
    );
}
