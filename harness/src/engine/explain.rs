//! Verdicts in words: which policies isolate the edge's two pods, and which rules admit the
//! edge or that none does. The CLI's `explain` command, lint findings and test failure
//! messages print these.

use super::model::{Direction, Edge};
use super::verdict::{DirectionVerdict, Engine};
use serde::Serialize;
use std::fmt;

/// A verdict with every policy, rule and pod named, ready to print.
///
/// `Display` prints a headline (`meeting-app/frontend -> meeting-app/redis 6379/TCP: deny`)
/// and one indented line for each side of the edge. It serializes (e.g. to JSON) without
/// the edge's pod indices, which mean nothing outside the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    #[serde(skip)]
    pub edge: Edge,
    /// `namespace/name` of the source pod.
    pub src: String,
    /// `namespace/name` of the destination pod.
    pub dst: String,
    pub allowed: bool,
    /// The source pod's egress side.
    pub egress: SideExplanation,
    /// The destination pod's ingress side.
    pub ingress: SideExplanation,
}

/// One side of an explained edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideExplanation {
    /// Implied by the field that holds the side in [`Explanation`].
    #[serde(skip)]
    pub direction: Direction,
    /// `namespace/name` of the pod whose side this is (the subject of its policies).
    pub pod: String,
    /// `namespace/name` of the pod on the other side of the edge (the rules' peer).
    pub peer: String,
    /// `port/PROTOCOL` of the edge.
    pub port: String,
    /// `namespace/name` of each policy isolating the pod in this direction.
    pub isolated_by: Vec<String>,
    /// Each admitting rule, named like `ingress rule 0 of meeting-app/postgres-policy`.
    pub allowed_by: Vec<String>,
}

impl SideExplanation {
    /// Whether this side lets the edge through: not isolated, or a rule admits it.
    pub fn allows(&self) -> bool {
        self.isolated_by.is_empty() || !self.allowed_by.is_empty()
    }

    /// The role of the side's pod in the edge.
    fn role(&self) -> &'static str {
        match self.direction {
            Direction::Ingress => "destination",
            Direction::Egress => "source",
        }
    }
}

/// One sentence: e.g. `destination meeting-app/redis is isolated for ingress by
/// meeting-app/redis-policy, and no ingress rule admits meeting-app/frontend on 6379/TCP`.
impl fmt::Display for SideExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (role, pod, direction) = (self.role(), &self.pod, self.direction.as_lowercase());
        if self.isolated_by.is_empty() {
            return write!(
                f,
                "{role} {pod} is not isolated for {direction} (no policy selecting it \
                 isolates {direction}), so {direction} allows it"
            );
        }
        let isolated_by = self.isolated_by.join(", ");
        write!(
            f,
            "{role} {pod} is isolated for {direction} by {isolated_by}"
        )?;
        if self.allowed_by.is_empty() {
            let verb = match self.direction {
                Direction::Ingress => "admits",
                Direction::Egress => "allows",
            };
            write!(
                f,
                ", and no {direction} rule {verb} {} on {}",
                self.peer, self.port
            )
        } else {
            write!(f, "; allowed by {}", self.allowed_by.join(", "))
        }
    }
}

impl Explanation {
    /// Why the edge is denied, in one line: the sentence of each denying side, joined by
    /// `; `. `allowed` for an allowed edge.
    pub fn reason(&self) -> String {
        if self.allowed {
            return "allowed".to_owned();
        }
        let denying = [&self.egress, &self.ingress]
            .into_iter()
            .filter(|side| !side.allows());
        denying
            .map(SideExplanation::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `src -> dst port/PROTOCOL`.
    pub fn flow(&self) -> String {
        format!("{} -> {} {}", self.src, self.dst, self.egress.port)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "allow" } else { "deny" };
        writeln!(f, "{}: {verdict}", self.flow())?;
        writeln!(f, "  egress: {}", self.egress)?;
        write!(f, "  ingress: {}", self.ingress)
    }
}

impl Engine<'_> {
    /// The verdict for `edge`, with every policy, rule and pod named.
    pub fn explain(&self, edge: Edge) -> Explanation {
        let verdict = self.verdict(edge);
        let side = |direction| self.explain_side(direction, edge, verdict.side(direction));
        Explanation {
            edge,
            src: self.pod_name(edge.src),
            dst: self.pod_name(edge.dst),
            allowed: verdict.allowed(),
            egress: side(Direction::Egress),
            ingress: side(Direction::Ingress),
        }
    }

    fn explain_side(
        &self,
        direction: Direction,
        edge: Edge,
        verdict: &DirectionVerdict,
    ) -> SideExplanation {
        SideExplanation {
            direction,
            pod: self.pod_name(edge.subject(direction)),
            peer: self.pod_name(edge.peer(direction)),
            port: format!("{}/{}", edge.port, edge.protocol),
            isolated_by: verdict
                .isolated_by
                .iter()
                .map(|&p| self.policy_name(p))
                .collect(),
            allowed_by: verdict
                .allowed_by
                .iter()
                .map(|&r| self.rule_name(r))
                .collect(),
        }
    }
}
