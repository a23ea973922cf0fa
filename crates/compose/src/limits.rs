//! Size limits hearth puts on compose files where docker/cli has none, so that a small file
//! cannot make loading and rendering take unbounded time and memory.
//!
//! Short-syntax port specs expand to one port per port of a range (`"1-65535"` is 65,535
//! ports, go-connections `ParsePortSpecs`), and every later stage (merge, the typed model, the
//! Swarm spec, its canonical JSON and hash) is linear in that count. A file of twenty such lines
//! took seconds and hundreds of megabytes; each file may expand to at most
//! [`MAX_PORTS_PER_FILE`] ports, enough for the whole port range once (a TURN server's relay
//! range in both protocols fits). Found while fuzzing (`fuzz/`, target `compose_load`).

use crate::yaml::Node;
use hearth_diag::Diagnostic;

/// The most ports the short-syntax `ports:` entries of one compose file may expand to.
pub const MAX_PORTS_PER_FILE: u64 = 65_536;

/// How many ports one short-syntax spec (`[ip:][published[-end]:]target[-end][/proto]`) can
/// expand to: the wider of its two ranges. Malformed parts count as one port (the parsers
/// reject them later with their own message).
pub fn port_spec_width(spec: &str) -> u64 {
    let rest = spec.rsplit_once('/').map_or(spec, |(r, _)| r);
    let mut parts = rest.rsplit(':');
    let width = |part: Option<&str>| {
        let Some(part) = part else { return 1 };
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b && b <= 65_535 => b - a + 1,
            _ => 1,
        }
    };
    let target = width(parts.next());
    let published = width(parts.next());
    target.max(published)
}

/// An error at the first service whose `ports:` take the file past [`MAX_PORTS_PER_FILE`].
pub fn check_port_expansion(tree: &Node, label: &str) -> Option<Diagnostic> {
    let services = tree.get("services").and_then(Node::as_map)?;
    let mut total: u64 = 0;
    for (name, (_, svc)) in services {
        let Some((pos, ports)) = svc.as_map().and_then(|m| m.get("ports")) else {
            continue;
        };
        let crate::yaml::NodeValue::Seq(items) = &ports.value else {
            continue;
        };
        for item in items {
            total += item.scalar_string().map_or(1, |s| port_spec_width(&s));
        }
        if total > MAX_PORTS_PER_FILE {
            return Some(Diagnostic::new(
                label,
                *pos,
                format!("services.{name}.ports"),
                format!(
                    "port ranges in this file expand to more than {MAX_PORTS_PER_FILE} ports; \
                     hearth refuses that many"
                ),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_yaml;

    #[test]
    fn spec_width_is_the_wider_range() {
        assert_eq!(port_spec_width("80"), 1);
        assert_eq!(port_spec_width("80:8080/udp"), 1);
        assert_eq!(port_spec_width("1-65535"), 65_535);
        assert_eq!(port_spec_width("8000-8009:9000-9009"), 10);
        assert_eq!(port_spec_width("1000-1999:80"), 1000);
        assert_eq!(port_spec_width("127.0.0.1:5000-5099:80/tcp"), 100);
        assert_eq!(port_spec_width("[::1]:80:1-10"), 10);
        // Malformed or out of range: the port parsers report those.
        assert_eq!(port_spec_width("1-99999999999"), 1);
        assert_eq!(port_spec_width("9-1"), 1);
        assert_eq!(port_spec_width("x"), 1);
        assert_eq!(port_spec_width(""), 1);
    }

    fn check(text: &str) -> Option<Diagnostic> {
        let tree = parse_yaml(text, "c.yml").unwrap_or_else(|e| panic!("{e}"));
        check_port_expansion(&tree, "c.yml")
    }

    #[test]
    fn the_whole_range_once_is_allowed() {
        let ok = "services:\n  turn:\n    ports: [\"3478:3478/udp\", \"1-65535/udp\"]\n";
        assert_eq!(check(ok), None);
        let ok = "services:\n  a:\n    ports: [80, {target: 81}]\n  b:\n    ports: \"x\"\n";
        assert_eq!(check(ok), None);
    }

    #[test]
    fn more_than_the_limit_is_an_error_at_the_service() {
        // Fuzz regression (compose_load, seed regress-port-range-blowup.yml): twenty full
        // ranges took seconds and hundreds of MB to render.
        let text = "services:\n  a:\n    ports: [\"1-40000\"]\n  b:\n    image: x\n    ports:\n      - \"1-40000\"\n";
        let d = check(text).unwrap_or_else(|| panic!("no error"));
        assert_eq!(d.field, "services.b.ports");
        assert_eq!((d.pos.line, d.pos.col), (6, 5));
        assert!(d.message.contains("65536"), "{}", d.message);
    }
}
