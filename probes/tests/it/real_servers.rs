//! The Postgres, Redis and DNS checks against real servers started by `servers`, on loopback
//! and inside a network namespace.

use crate::common::{TestNetns, free_addr, privileged, probe, target};
use netpol_probes::servers::{
    DnsmasqOptions, PostgresOptions, PostgresTemplate, RedisOptions, start_dnsmasq, start_postgres,
    start_redis,
};
use netpol_probes::spec::{Check, Protocol};
use netpol_probes::wire::Outcome;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Instant;

#[tokio::test]
async fn postgres_check_connects_to_a_real_postgres_with_and_without_a_template() {
    let started = Instant::now();
    let fresh = start_postgres(&PostgresOptions::new(free_addr()))
        .await
        .unwrap();
    let initdb_and_start = started.elapsed();
    let result = probe(&target("pg", fresh.addr(), Protocol::Tcp, Check::Postgres)).await;
    assert_eq!(result.outcome, Outcome::Connected, "{result:?}");
    assert_eq!(result.detail, "SELECT 1 answered");

    let template = PostgresTemplate::create(Path::new(netpol_probes::servers::POSTGRES_BIN_DIR))
        .await
        .unwrap();
    let mut options = PostgresOptions::new(free_addr());
    options.template = Some(template.data_dir());
    options.cluster_name = Some("x/a".to_owned());
    let started = Instant::now();
    let copied = start_postgres(&options).await.unwrap();
    let copy_and_start = started.elapsed();
    let result = probe(&target("pg", copied.addr(), Protocol::Tcp, Check::Postgres)).await;
    assert_eq!(result.outcome, Outcome::Connected, "{result:?}");
    eprintln!(
        "postgres: initdb+start {initdb_and_start:?}, template copy+start {copy_and_start:?}"
    );

    let dir = copied.dir().to_owned();
    drop(copied);
    assert!(
        !dir.exists(),
        "the work dir {} outlived its server",
        dir.display()
    );
    let refused = probe(&target(
        "pg",
        options.listen,
        Protocol::Tcp,
        Check::Postgres,
    ))
    .await;
    assert_eq!(refused.outcome, Outcome::Refused, "{refused:?}");
}

#[tokio::test]
async fn postgres_check_counts_an_authentication_error_as_reached() {
    let pg = start_postgres(&PostgresOptions::new(free_addr()))
        .await
        .unwrap();
    let hba = pg.dir().join("data/pg_hba.conf");
    std::fs::write(&hba, "local all all trust\nhost all all all reject\n").unwrap();
    // SIGHUP makes Postgres reload pg_hba.conf; the reload takes a moment.
    let pid = nix::unistd::Pid::from_raw(pg.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    let result = loop {
        let result = probe(&target("pg", pg.addr(), Protocol::Tcp, Check::Postgres)).await;
        if result.detail.contains("28000") || Instant::now() > deadline {
            break result;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(result.outcome, Outcome::Connected, "{result:?}");
    assert!(
        result.detail.starts_with("server answered 28000"),
        "{result:?}"
    );
}

#[tokio::test]
async fn redis_check_connects_to_a_real_redis_and_http_against_it_is_a_protocol_error() {
    let redis = start_redis(&RedisOptions::new(free_addr())).await.unwrap();
    let result = probe(&target("redis", redis.addr(), Protocol::Tcp, Check::Redis)).await;
    assert_eq!(result.outcome, Outcome::Connected, "{result:?}");
    assert_eq!(result.detail, "PONG");
    let http = probe(&target("http", redis.addr(), Protocol::Tcp, Check::Http)).await;
    assert_eq!(http.outcome, Outcome::ProtocolError, "{http:?}");
    let ws = probe(&target("ws", redis.addr(), Protocol::Tcp, Check::Websocket)).await;
    assert_eq!(ws.outcome, Outcome::ProtocolError, "{ws:?}");
}

fn dnsmasq_options(listen: SocketAddr) -> DnsmasqOptions {
    let mut options = DnsmasqOptions::new(listen);
    let ips: Vec<IpAddr> = vec!["10.96.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    options
        .records
        .insert("kubernetes.default.svc.cluster.local".to_owned(), ips);
    options
}

#[tokio::test]
async fn dns_check_connects_to_dnsmasq_over_udp_and_tcp() {
    let dns = start_dnsmasq(&dnsmasq_options(free_addr())).await.unwrap();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let known = probe(&target("dns", dns.addr(), protocol, Check::Dns)).await;
        assert_eq!(known.outcome, Outcome::Connected, "{protocol}: {known:?}");
        assert!(known.detail.starts_with("NOERROR, 1 answers"), "{known:?}");

        let mut unknown = target("dns", dns.addr(), protocol, Check::Dns);
        unknown.dns_name = Some("nothing.x.svc.cluster.local.".to_owned());
        let unknown = probe(&unknown).await;
        assert_eq!(
            unknown.outcome,
            Outcome::Connected,
            "{protocol}: {unknown:?}"
        );
        assert!(unknown.detail.starts_with("NXDOMAIN"), "{unknown:?}");

        let mut outside = target("dns", dns.addr(), protocol, Check::Dns);
        outside.dns_name = Some("example.org.".to_owned());
        let outside = probe(&outside).await;
        assert_eq!(
            outside.outcome,
            Outcome::ProtocolError,
            "{protocol}: {outside:?}"
        );
    }
    let redis_check = probe(&target("redis", dns.addr(), Protocol::Tcp, Check::Redis)).await;
    assert_ne!(redis_check.outcome, Outcome::Connected, "{redis_check:?}");
}

#[tokio::test]
async fn a_silent_tcp_client_does_not_stall_dnsmasq() {
    // A DNS-over-TCP connection that never sends its query, as a probe's connection is left
    // when a policy change cuts it: the server must go on answering everyone else.
    let dns = start_dnsmasq(&dnsmasq_options(free_addr())).await.unwrap();
    let _silent = tokio::net::TcpStream::connect(dns.addr()).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(dns.addr()).await.unwrap();
    // A length prefix that promises more than is ever sent.
    tokio::io::AsyncWriteExt::write_all(&mut partial, &[0, 40, 1, 2])
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let mut check = target("dns", dns.addr(), protocol, Check::Dns);
        check.timeout_ms = 2000;
        let answer = probe(&check).await;
        assert_eq!(answer.outcome, Outcome::Connected, "{protocol}: {answer:?}");
    }
}

#[tokio::test]
async fn servers_started_in_a_network_namespace_answer_inside_it() {
    if !privileged("servers_started_in_a_network_namespace_answer_inside_it") {
        return;
    }
    let netns = TestNetns::new();
    // 127.0.0.1 in the namespace is not ours: only a probe from inside can reach it.
    let redis_addr: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let dns_addr: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let pg_addr: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let mut redis = RedisOptions::new(redis_addr);
    redis.netns = Some(netns.name.clone());
    let mut dns = dnsmasq_options(dns_addr);
    dns.netns = Some(netns.name.clone());
    let mut pg = PostgresOptions::new(pg_addr);
    pg.netns = Some(netns.name.clone());
    let (redis, dns, pg) = tokio::try_join!(
        start_redis(&redis),
        start_dnsmasq(&dns),
        start_postgres(&pg)
    )
    .unwrap();
    for (guard, protocol, check) in [
        (&redis, Protocol::Tcp, Check::Redis),
        (&dns, Protocol::Udp, Check::Dns),
        (&dns, Protocol::Tcp, Check::Dns),
        (&pg, Protocol::Tcp, Check::Postgres),
    ] {
        let inside = netns
            .probe(target("in", guard.addr(), protocol, check))
            .await;
        assert_eq!(
            inside.outcome,
            Outcome::Connected,
            "{check}/{protocol}: {inside:?}"
        );
    }
    drop((redis, dns, pg));
}

/// The local backend starts every pod's servers at once: 14 pods, each with Postgres (from a
/// template), Redis, dnsmasq and the agent, each pod in its own namespace.
#[tokio::test]
#[ignore = "a measurement, about 60 processes; run with --ignored"]
async fn fourteen_pods_start_their_servers_concurrently() {
    use futures_util::future::try_join_all;
    use netpol_probes::servers::{AgentOptions, ServerGuard, start_agent};
    if !privileged("fourteen_pods_start_their_servers_concurrently") {
        return;
    }
    let bin = Path::new(netpol_probes::servers::POSTGRES_BIN_DIR);
    let started = Instant::now();
    let template = PostgresTemplate::create(bin).await.unwrap();
    let initdb = started.elapsed();
    let namespaces: Vec<TestNetns> = (0..14).map(|_| TestNetns::new()).collect();
    let started = Instant::now();
    let pods = namespaces.iter().enumerate().map(|(i, netns)| {
        let ns = Some(netns.name.clone());
        let mut pg = PostgresOptions::new("127.0.0.1:5432".parse().unwrap());
        pg.template = Some(template.data_dir());
        pg.netns = ns.clone();
        pg.cluster_name = Some(format!("x/pod{i}"));
        let mut redis = RedisOptions::new("127.0.0.1:6379".parse().unwrap());
        redis.netns = ns.clone();
        let mut dns = dnsmasq_options("127.0.0.1:53".parse().unwrap());
        dns.netns = ns.clone();
        let port = netpol_probes::serve::parse_port("80/TCP/http").unwrap();
        let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_netpol-probe"));
        let mut agent = AgentOptions::new(binary, "x", &format!("pod{i}"), vec![port]);
        agent.netns = ns;
        async move {
            let (pg, redis, dns, agent) = tokio::try_join!(
                start_postgres(&pg),
                start_redis(&redis),
                start_dnsmasq(&dns),
                start_agent(&agent)
            )?;
            Ok::<Vec<ServerGuard>, netpol_probes::servers::Error>(vec![pg, redis, dns, agent])
        }
    });
    let guards = try_join_all(pods).await.unwrap();
    let all_started = started.elapsed();
    let started = Instant::now();
    netpol_probes::servers::stop_all(guards.into_iter().flatten());
    let all_stopped = started.elapsed();
    eprintln!(
        "template initdb {initdb:?}; 14 pods x (postgres, redis, dnsmasq, agent) ready in \
         {all_started:?}; stopped in {all_stopped:?}"
    );
}

#[tokio::test]
async fn a_missing_server_binary_names_the_apt_package_to_install() {
    let mut options = PostgresOptions::new(free_addr());
    options.bin_dir = "/nonexistent/postgresql/15/bin".into();
    let error = start_postgres(&options).await.unwrap_err().to_string();
    assert!(
        error.contains("install the apt package `postgresql`"),
        "{error}"
    );

    let agent = netpol_probes::servers::AgentOptions::new(
        "/nonexistent/netpol-probe".into(),
        "x",
        "a",
        vec![],
    );
    let error = netpol_probes::servers::start_agent(&agent)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cargo build -p netpol-probes"), "{error}");
}

#[tokio::test]
async fn a_target_by_name_is_resolved_through_its_resolver_and_a_failed_resolution_is_dns_failure()
{
    // The resolver is asked on port 53, which needs root.
    if !privileged("a_target_by_name_is_resolved_through_its_resolver") {
        return;
    }
    let server = std::net::TcpListener::bind(free_addr()).unwrap();
    let served = server.local_addr().unwrap();
    let mut options = DnsmasqOptions::new(SocketAddr::new(crate::common::loopback_ip(), 53));
    options
        .records
        .insert("web.app.svc.cluster.local".to_owned(), vec![served.ip()]);
    let dns = start_dnsmasq(&options).await.unwrap();
    let by_name = |host: &str, resolver: IpAddr| {
        let mut target = target("web", served, Protocol::Tcp, Check::Tcp);
        target.ip = "10.96.1.0".parse().unwrap();
        target.host = Some(host.to_owned());
        target.resolver = Some(resolver);
        target.timeout_ms = 500;
        target
    };

    let known = probe(&by_name("web.app.svc.cluster.local", dns.addr().ip())).await;
    assert_eq!(known.outcome, Outcome::Connected, "{known:?}");
    let expected = format!("web.app.svc.cluster.local resolved to {}", served.ip());
    assert!(known.detail.starts_with(&expected), "{known:?}");

    let unknown = probe(&by_name("nothing.app.svc.cluster.local", dns.addr().ip())).await;
    assert_eq!(unknown.outcome, Outcome::DnsFailure, "{unknown:?}");
    assert!(unknown.detail.contains("NXDOMAIN"), "{unknown:?}");

    let closed = probe(&by_name(
        "web.app.svc.cluster.local",
        crate::common::loopback_ip(),
    ))
    .await;
    assert_eq!(closed.outcome, Outcome::DnsFailure, "{closed:?}");

    // A resolver that drops the query: the probe fails as dns_failure, not as a timeout on
    // the target.
    let silent_ip = crate::common::loopback_ip();
    let _silent = std::net::UdpSocket::bind((silent_ip, 53)).unwrap();
    let dropped = probe(&by_name("web.app.svc.cluster.local", silent_ip)).await;
    assert_eq!(dropped.outcome, Outcome::DnsFailure, "{dropped:?}");
    assert!(
        dropped.detail.contains("no answer within 500 ms"),
        "{dropped:?}"
    );
}
