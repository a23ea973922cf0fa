//! `hearth healthcheck`: the container image's `HEALTHCHECK`. GETs `/healthz` of the hearth running
//! in the same container (at `--listen`, i.e. `HEARTH_LISTEN`, an unspecified address probed on
//! loopback) and exits 0 on HTTP 200, 1 otherwise. The image needs no curl or wget for it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use super::common::runtime;
use super::status_cmd;

/// Pure: the URL that reaches a server listening on `listen` from the same network namespace.
pub fn probe_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

pub fn run(listen: SocketAddr, timeout: Duration) -> ExitCode {
    let url = probe_url(listen);
    let res = runtime().block_on(async {
        tokio::time::timeout(timeout, status_cmd::get(&url, "/healthz", None, None))
            .await
            .unwrap_or_else(|_| Err(format!("GET {url}/healthz: no answer within {timeout:?}")))
    });
    match res {
        Ok((200, _)) => ExitCode::SUCCESS,
        Ok((status, _)) => {
            eprintln!("GET {url}/healthz: HTTP {status}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        let p = |s: &str| probe_url(s.parse().expect("addr"));
        assert_eq!(p("0.0.0.0:9480"), "http://127.0.0.1:9480");
        assert_eq!(p("[::]:9480"), "http://[::1]:9480");
        assert_eq!(p("10.1.2.3:81"), "http://10.1.2.3:81");
        assert_eq!(p("127.0.0.1:9480"), "http://127.0.0.1:9480");
    }

    #[test]
    fn fails_when_nothing_listens() {
        // Bind then drop a listener: the port is closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind")
            .port();
        let code = run(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2),
        );
        assert_eq!(code, ExitCode::from(1));
    }
}
