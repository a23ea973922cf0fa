//! The `tcp` probe: the port must accept connections continuously for `stableFor`, then the
//! optional handshake (`send`, then read exactly `len(expect)` bytes and compare) must succeed.
//!
//! Stability is measured on one connection held open for the whole `stableFor` window, while a
//! new connection is also tried every [`STABLE_POLL`]: the peer closing or resetting the held
//! connection, or a new one failing, restarts the clock (mumble-like servers that listen, drop and
//! listen again are not ready, and neither is a server that accepts and then closes). Bytes the
//! server sends meanwhile are read and discarded; the handshake uses a fresh connection. A server
//! that closes idle connections sooner than `stableFor` is never stable: keep `stableFor` below
//! its idle timeout. With `stableFor` 0 one accepted connection is enough. The
//! whole check (stability window, then handshake) is bounded by `stableFor + timeout`; each
//! connection attempt by `timeout`.
//!
//! Targets: every running task's reachable address on `port`, or `address:` (`host:port` or
//! `host`) when set.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::parse_address;
use super::{Check, Round, Subject, on_every_task, target};
use crate::manifest::TcpProbe;

/// Time between a dropped or failed connection and the next attempt while measuring stability.
pub const STABLE_POLL: Duration = Duration::from_millis(250);

/// What one check of one address is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    pub stable_for: Duration,
    pub send: Option<&'a [u8]>,
    pub expect: Option<&'a [u8]>,
    pub timeout: Duration,
}

/// One probe check.
pub async fn check(round: Round<'_>, subject: &Subject, p: &TcpProbe, timeout: Duration) -> Check {
    let plan = Plan {
        stable_for: p.stable_for.unwrap_or_default(),
        send: p.send.as_ref().map(|s| s.0.as_slice()),
        expect: p.expect.as_ref().map(|s| s.0.as_slice()),
        timeout,
    };
    if let Some(address) = &p.address {
        let (host, port) = parse_address(address, p.port).map_err(|e| e.to_string())?;
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("resolve {host}: no address"))?;
        return check_addr(addr, &plan).await;
    }
    let tasks = target::resolve(round.snapshot, &subject.stack, &p.service, round.reach)
        .map_err(|e| e.to_string())?;
    on_every_task(&tasks, |t| {
        let plan = plan.clone();
        async move {
            let addr = SocketAddr::new(t.address().map_err(|e| e.to_string())?, p.port);
            check_addr(addr, &plan).await
        }
    })
    .await
}

/// Stability, then handshake, on one address.
pub async fn check_addr(addr: SocketAddr, plan: &Plan<'_>) -> Check {
    let start = Instant::now();
    let deadline = start + plan.stable_for + plan.timeout;
    let stable = wait_stable(addr, plan, deadline).await?;
    match (plan.send, plan.expect) {
        (None, None) => Ok(stable),
        (send, expect) => {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = tokio::time::timeout(left, handshake(addr, send, expect))
                .await
                .map_err(|_| format!("{addr}: handshake: no answer within {:?}", plan.timeout))?
                .map_err(|e| format!("{addr}: handshake: {e}"))?;
            judge_handshake(addr, expect.unwrap_or_default(), &got)
                .map(|m| format!("{stable}; {m}"))
        }
    }
}

/// Connects and holds the connection until it has stayed open for `stable_for`, reconnecting
/// after each drop, or fails at `deadline`.
async fn wait_stable(addr: SocketAddr, plan: &Plan<'_>, deadline: Instant) -> Check {
    let mut longest = Duration::ZERO;
    let mut drops = 0u32;
    let mut last_err = String::new();
    loop {
        let now = Instant::now();
        let attempt = plan.timeout.min(deadline.saturating_duration_since(now));
        match tokio::time::timeout(attempt, TcpStream::connect(addr)).await {
            Ok(Ok(mut stream)) => {
                if plan.stable_for.is_zero() {
                    return Ok(format!("{addr} accepts connections"));
                }
                let since = Instant::now();
                let end = (since + plan.stable_for).min(deadline);
                let held = hold(&mut stream, addr, plan.timeout, end).await;
                let up = Instant::now().saturating_duration_since(since);
                longest = longest.max(up);
                match held {
                    Ok(()) if up >= plan.stable_for => {
                        return Ok(format!(
                            "{addr} kept a connection open for {:?}",
                            plan.stable_for
                        ));
                    }
                    Ok(()) => {
                        return Err(unstable_message(
                            addr,
                            plan.stable_for,
                            Some(up),
                            longest,
                            drops,
                            &last_err,
                        ));
                    }
                    Err(e) => {
                        drops += 1;
                        last_err = e;
                    }
                }
            }
            Ok(Err(e)) => last_err = e.to_string(),
            Err(_) => last_err = format!("connect timed out after {attempt:?}"),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(unstable_message(
                addr,
                plan.stable_for,
                None,
                longest,
                drops,
                &last_err,
            ));
        }
        tokio::time::sleep(STABLE_POLL.min(deadline - now)).await;
    }
}

/// Keeps `stream` open until `end`, reading (and discarding) what the peer sends, and meanwhile
/// checks every [`STABLE_POLL`] that the port still accepts new connections; `Err` when the peer
/// closes or resets the held connection, or a new connection fails, first.
async fn hold(
    stream: &mut TcpStream,
    addr: SocketAddr,
    timeout: Duration,
    end: Instant,
) -> Result<(), String> {
    let since = Instant::now();
    let held = async {
        let mut buf = [0u8; 512];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => {
                    return format!(
                        "connection closed by the peer after {:?}",
                        Duration::from_millis(since.elapsed().as_millis() as u64)
                    );
                }
                Ok(_) => {}
                Err(e) => return format!("connection lost: {e}"),
            }
        }
    };
    let accepting = async {
        loop {
            tokio::time::sleep(STABLE_POLL).await;
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => drop(s),
                Ok(Err(e)) => return e.to_string(),
                Err(_) => return format!("connect timed out after {timeout:?}"),
            }
        }
    };
    tokio::select! {
        e = held => Err(e),
        e = accepting => Err(e),
        () = tokio::time::sleep_until(end) => Ok(()),
    }
}

/// Why the port was not stable (pure; the message the operator reads). `up_now` is how long the
/// port had been accepting when time ran out, `longest` the longest such run, `drops` how many
/// runs ended in a failed connection.
pub fn unstable_message(
    addr: SocketAddr,
    stable_for: Duration,
    up_now: Option<Duration>,
    longest: Duration,
    drops: u32,
    last_err: &str,
) -> String {
    let ms = |d: Duration| Duration::from_millis(d.as_millis() as u64);
    if up_now.is_none() && longest.is_zero() {
        return format!("{addr} not accepting connections: {last_err}");
    }
    let mut msg = format!(
        "{addr} not stable for {stable_for:?}: dropped {drops} times, longest up {:?}",
        ms(longest)
    );
    if let Some(up) = up_now {
        msg.push_str(&format!(", up {:?} when time ran out", ms(up)));
    }
    if !last_err.is_empty() {
        msg.push_str(&format!("; last error: {last_err}"));
    }
    msg
}

/// Writes `send` (if any) and reads exactly `len(expect)` bytes; returns what was read.
async fn handshake(
    addr: SocketAddr,
    send: Option<&[u8]>,
    expect: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if let Some(send) = send {
        s.write_all(send).await.map_err(|e| format!("write: {e}"))?;
    }
    let want = expect.map_or(0, <[u8]>::len);
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match s.read(&mut buf[got..]).await {
            Ok(0) => {
                return Err(format!(
                    "connection closed after {got} of {want} expected bytes (got {})",
                    show(&buf[..got])
                ));
            }
            Ok(n) => got += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(buf)
}

/// Compares the bytes read with `expect` (pure).
pub fn judge_handshake(addr: SocketAddr, expect: &[u8], got: &[u8]) -> Check {
    if got == expect {
        Ok(format!("handshake ok ({})", show(got)))
    } else {
        Err(format!(
            "{addr}: handshake: expected {}, got {}",
            show(expect),
            show(got)
        ))
    }
}

/// Bytes for messages: `hex:0002`.
fn show(bytes: &[u8]) -> String {
    format!("hex:{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(stable_ms: u64) -> Plan<'static> {
        Plan {
            stable_for: Duration::from_millis(stable_ms),
            send: None,
            expect: None,
            timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn messages() {
        let a: SocketAddr = "10.0.0.1:64738".parse().unwrap();
        assert_eq!(
            judge_handshake(a, &[0, 2], &[0, 2]),
            Ok("handshake ok (hex:0002)".into())
        );
        assert_eq!(
            judge_handshake(a, &[0, 3], &[0, 2]),
            Err("10.0.0.1:64738: handshake: expected hex:0003, got hex:0002".into())
        );
        let s = Duration::from_secs(3);
        assert_eq!(
            unstable_message(a, s, None, Duration::ZERO, 0, "refused"),
            "10.0.0.1:64738 not accepting connections: refused"
        );
        assert_eq!(
            unstable_message(a, s, None, Duration::from_millis(1004), 2, "refused"),
            "10.0.0.1:64738 not stable for 3s: dropped 2 times, longest up 1.004s; last error: refused"
        );
        assert_eq!(
            unstable_message(
                a,
                s,
                Some(Duration::from_millis(500)),
                Duration::from_millis(480),
                1,
                ""
            ),
            "10.0.0.1:64738 not stable for 3s: dropped 1 times, longest up 480ms, up 500ms when time ran out"
        );
    }

    #[tokio::test]
    async fn stable_port_with_handshake() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 2];
                    if s.read_exact(&mut b).await.is_ok() && b == [0, 1] {
                        let _ = s.write_all(&[0, 2]).await;
                    }
                });
            }
        });
        let ok = check_addr(
            addr,
            &Plan {
                send: Some(&[0, 1]),
                expect: Some(&[0, 2]),
                ..plan(600)
            },
        )
        .await;
        assert!(
            ok.as_ref().is_ok_and(|m| m.contains("handshake ok")),
            "{ok:?}"
        );
        let bad = check_addr(
            addr,
            &Plan {
                send: Some(&[0, 9]),
                expect: Some(&[0, 2]),
                ..plan(0)
            },
        )
        .await;
        assert!(
            bad.as_ref()
                .is_err_and(|m| m.contains("closed after 0 of 2")),
            "{bad:?}"
        );
    }

    /// A server that accepts and closes at once is never stable; one that keeps the connection
    /// open is, and one connection stayed open for the whole window.
    #[tokio::test]
    async fn stable_for_holds_one_connection() {
        let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closing_addr = closing.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = closing.accept().await {
                drop(s);
            }
        });
        let err = check_addr(closing_addr, &plan(600)).await.unwrap_err();
        assert!(err.contains("not stable for 600ms"), "{err}");
        assert!(err.contains("closed by the peer"), "{err}");

        let keeping = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let keeping_addr = keeping.local_addr().unwrap();
        // How long each connection stayed open, as the server saw it.
        let open_for = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = open_for.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = keeping.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let _ = s.write_all(b"banner\n").await;
                    let mut b = [0u8; 16];
                    while matches!(s.read(&mut b).await, Ok(n) if n > 0) {}
                    seen.lock().unwrap().push(t0.elapsed());
                });
            }
        });
        let ok = check_addr(keeping_addr, &plan(600)).await;
        assert_eq!(
            ok,
            Ok(format!("{keeping_addr} kept a connection open for 600ms"))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let longest = open_for.lock().unwrap().iter().max().copied();
        assert!(
            longest.is_some_and(|d| d >= Duration::from_millis(600)),
            "{:?}",
            open_for.lock().unwrap()
        );
    }

    #[tokio::test]
    async fn closed_port_fails_within_the_bound() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let start = std::time::Instant::now();
        let err = check_addr(addr, &plan(300)).await.unwrap_err();
        assert!(err.contains("not accepting connections"), "{err}");
        assert!(start.elapsed() < Duration::from_millis(300 + 500 + 300));
    }
}
