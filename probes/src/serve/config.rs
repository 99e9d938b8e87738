//! What `serve` serves: the pod identity, the ports, the addresses and the ready file.

use crate::spec::{Check, PortSpec, Protocol};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// Errors in a serve configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid port {arg:?}: {reason} (expected PORT/PROTOCOL[/CHECK[/NAME]], e.g. 80/TCP/http/web)"
    )]
    PortArg { arg: String, reason: String },
    #[error("failed to read port spec {path}")]
    ReadSpec {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to parse port spec {path} as a JSON or YAML list of ports")]
    ParseSpec {
        path: PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("port {port}/{protocol} cannot serve check {check}: it needs {needs}")]
    Mismatch {
        port: u16,
        protocol: Protocol,
        check: Check,
        needs: Protocol,
    },
}

/// Everything `serve` needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// `namespace/name` of the pod, sent by every server.
    pub identity: String,
    pub ports: Vec<PortSpec>,
    /// Addresses to bind; empty means `0.0.0.0` and `::` (IPv6 skipped if the host has none).
    pub bind: Vec<IpAddr>,
    /// Written (with the identity) once every listener is bound; removed on shutdown.
    pub ready_file: Option<PathBuf>,
}

impl ServeConfig {
    /// The addresses to bind and whether failing to bind them is tolerated.
    pub(crate) fn bind_addrs(&self) -> Vec<(IpAddr, bool)> {
        if self.bind.is_empty() {
            vec![
                (Ipv4Addr::UNSPECIFIED.into(), false),
                (Ipv6Addr::UNSPECIFIED.into(), true),
            ]
        } else {
            self.bind.iter().map(|ip| (*ip, false)).collect()
        }
    }

    /// Checks that every agent-served port's check fits its protocol.
    ///
    /// # Errors
    ///
    /// [`Error::Mismatch`] for the first port whose check needs another protocol.
    pub fn validate(&self) -> Result<(), Error> {
        for spec in &self.ports {
            let check = spec.effective_check();
            if let Some(needs) = transport_of(check).filter(|needs| *needs != spec.protocol) {
                return Err(Error::Mismatch {
                    port: spec.port,
                    protocol: spec.protocol,
                    check,
                    needs,
                });
            }
        }
        Ok(())
    }
}

/// The protocol a check runs over; `None` for DNS, which runs over UDP and TCP.
pub fn transport_of(check: Check) -> Option<Protocol> {
    match check {
        Check::Http | Check::Websocket | Check::Postgres | Check::Redis | Check::Tcp => {
            Some(Protocol::Tcp)
        }
        Check::Udp => Some(Protocol::Udp),
        Check::Sctp => Some(Protocol::Sctp),
        Check::Dns => None,
    }
}

/// Parses a `--port` argument: `PORT/PROTOCOL[/CHECK[/NAME]]`, e.g. `3000/TCP/http/web`.
///
/// The protocol is case-insensitive here; the check defaults to the protocol's transport check.
///
/// # Errors
///
/// [`Error::PortArg`] naming what is wrong.
pub fn parse_port(arg: &str) -> Result<PortSpec, Error> {
    let fail = |reason: String| Error::PortArg {
        arg: arg.to_owned(),
        reason,
    };
    let mut parts = arg.split('/');
    let port = parts.next().unwrap_or_default();
    let port: u16 = port
        .parse()
        .map_err(|_| fail(format!("{port:?} is not a port number")))?;
    let protocol = match parts.next() {
        Some(p) => p.to_ascii_uppercase().parse().map_err(fail)?,
        None => Protocol::Tcp,
    };
    let check = match parts.next().filter(|c| !c.is_empty()) {
        Some(c) => Some(
            serde_json::from_value(serde_json::Value::String(c.to_ascii_lowercase()))
                .map_err(|_| fail(format!("unknown check {c:?}")))?,
        ),
        None => None,
    };
    let name = parts.next().filter(|n| !n.is_empty()).map(str::to_owned);
    if parts.next().is_some() {
        return Err(fail("too many `/`-separated parts".to_owned()));
    }
    Ok(PortSpec {
        port,
        protocol,
        name,
        check,
    })
}

/// Reads a list of [`PortSpec`] from a JSON or YAML file.
///
/// # Errors
///
/// [`Error::ReadSpec`] or [`Error::ParseSpec`].
pub fn load_spec(path: &Path) -> Result<Vec<PortSpec>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSpec {
        path: path.to_owned(),
        source,
    })?;
    if let Ok(ports) = serde_json::from_str(&text) {
        return Ok(ports);
    }
    serde_saphyr::from_str(&text).map_err(|source| Error::ParseSpec {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_argument_with_all_parts_parses() {
        let spec = parse_port("3000/tcp/http/web").unwrap();
        assert_eq!(
            spec,
            PortSpec {
                port: 3000,
                protocol: Protocol::Tcp,
                name: Some("web".into()),
                check: Some(Check::Http)
            }
        );
    }

    #[test]
    fn port_argument_without_check_uses_the_transport_check() {
        let spec = parse_port("53/UDP").unwrap();
        assert_eq!(spec.effective_check(), Check::Udp);
        assert_eq!(spec.name, None);
    }

    #[test]
    fn port_argument_with_a_bad_port_is_rejected() {
        let err = parse_port("http/TCP").unwrap_err().to_string();
        assert!(err.contains("not a port number"), "{err}");
    }

    #[test]
    fn port_argument_with_an_unknown_check_is_rejected() {
        assert!(parse_port("80/TCP/gopher").is_err());
        assert!(parse_port("80/TCP/http/a/b").is_err());
    }

    #[test]
    fn http_over_udp_is_a_mismatch() {
        let config = ServeConfig {
            identity: "x/a".into(),
            ports: vec![parse_port("80/UDP/http").unwrap()],
            bind: vec![],
            ready_file: None,
        };
        assert!(matches!(config.validate(), Err(Error::Mismatch { .. })));
    }

    #[test]
    fn spec_file_may_be_yaml_or_json() {
        let dir = std::env::temp_dir().join(format!("nph-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("ports.yaml");
        std::fs::write(
            &yaml,
            "- port: 80\n  check: http\n- port: 53\n  protocol: UDP\n",
        )
        .unwrap();
        let json = dir.join("ports.json");
        std::fs::write(
            &json,
            r#"[{"port": 80, "check": "http"}, {"port": 53, "protocol": "UDP"}]"#,
        )
        .unwrap();
        let from_yaml = load_spec(&yaml).unwrap();
        assert_eq!(from_yaml, load_spec(&json).unwrap());
        assert_eq!(from_yaml[1].protocol, Protocol::Udp);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
