//! Short-syntax parsers of the compose file, as docker/cli's loader applies them at load time:
//! port specs (`[ip:]published:target[/proto]`, ranges) and volume specs (`source:target:options`).

/// One published port, in compose's long form (`ServicePortConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePort {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(deserialize_with = "super::scalars::opt_u32", default)]
    pub target: Option<u32>,
    #[serde(deserialize_with = "super::scalars::opt_u32", default)]
    pub published: Option<u32>,
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A service volume in compose's long form (`ServiceVolumeConfig`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "super::scalars::bool_")]
    pub read_only: bool,
    #[serde(default)]
    pub consistency: Option<String>,
    #[serde(default)]
    pub bind: Option<BindOptions>,
    #[serde(default)]
    pub volume: Option<VolumeOptions>,
    #[serde(default)]
    pub tmpfs: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    #[serde(default)]
    pub propagation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    #[serde(default, deserialize_with = "super::scalars::bool_")]
    pub nocopy: bool,
    #[serde(default)]
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    #[serde(default)]
    pub size: Option<super::scalars::UnitBytes>,
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Parses a short port spec like go-connections `ParsePortSpec` + docker/cli
/// `ConvertPortToPortConfig`: one spec may give several ports (ranges), each published in
/// ingress mode; the results are ordered by `"<target>/<proto>"` string as docker/cli orders them.
pub(crate) fn parse_port_spec(raw: &str) -> Result<Vec<ServicePort>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.len() {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        n => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = match container.split_once('/') {
        Some((port, proto)) => (port, if proto.is_empty() { "tcp" } else { proto }),
        None => (container, "tcp"),
    };
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let ip = ip
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(&ip);
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    let (start, end) =
        port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        let (hs, he) = port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?;
        if end - start != he - hs && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
        Some((hs, he))
    };
    let mut keyed: Vec<(String, Vec<ServicePort>)> = Vec::new();
    let count = end - start + 1;
    for i in 0..count {
        let target = start + i;
        // A single container port with a host range publishes every host port of the range.
        let published: Vec<u32> = match host_range {
            None => vec![0],
            Some((hs, he)) if count == 1 && hs != he => (hs..=he).collect(),
            Some((hs, _)) => vec![hs + i],
        };
        let ports = published
            .into_iter()
            .map(|p| ServicePort {
                mode: Some("ingress".into()),
                target: Some(target),
                published: Some(p),
                protocol: Some(proto.clone()),
            })
            .collect();
        keyed.push((format!("{target}/{proto}"), ports));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().flat_map(|(_, p)| p).collect())
}

fn port_range(s: &str) -> Result<(u32, u32), ()> {
    let num = |p: &str| -> Result<u32, ()> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        p.parse::<u32>().ok().filter(|n| *n <= 65535).ok_or(())
    };
    match s.split_once('-') {
        None => num(s).map(|n| (n, n)),
        Some((a, b)) if a == b => num(a).map(|n| (n, n)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a { Err(()) } else { Ok((a, b)) }
        }
    }
}

/// Parses a short volume spec like docker/cli's `volumespec.Parse`:
/// `[source:]target[:options]`, options `ro`, `rw`, `nocopy` and bind propagations; a source
/// starting with `.`, `/` or `~` (or a Windows drive) makes a bind mount.
pub(crate) fn parse_volume_spec(spec: &str) -> Result<ServiceVolume, String> {
    let mut vol = ServiceVolume::default();
    let chars: Vec<char> = spec.chars().collect();
    match chars.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            vol.target = Some(spec.to_owned());
            vol.kind = "volume".into();
            return Ok(vol);
        }
        _ => {}
    }
    let mut buffer: Vec<char> = Vec::new();
    let end = chars.len();
    for i in 0..=end {
        let c = chars.get(i).copied();
        let is_drive = c == Some(':') && buffer.len() == 1 && buffer[0].is_alphabetic();
        if is_drive {
            buffer.push(':');
        } else if c == Some(':') || c.is_none() {
            populate(&mut vol, &buffer, c.is_none())
                .map_err(|e| format!("invalid spec: {spec}: {e}"))?;
            buffer.clear();
        } else if let Some(c) = c {
            buffer.push(c);
        }
    }
    vol.kind = match vol.source.as_deref() {
        Some(src) if is_file_path(src) => "bind".into(),
        _ => "volume".into(),
    };
    Ok(vol)
}

fn populate(vol: &mut ServiceVolume, buffer: &[char], end: bool) -> Result<(), String> {
    let s: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons".into());
    }
    if vol.source.is_none() && end {
        vol.target = Some(s);
        return Ok(());
    }
    if vol.source.is_none() {
        vol.source = Some(s);
        return Ok(());
    }
    if vol.target.is_none() {
        vol.target = Some(s);
        return Ok(());
    }
    if !end {
        return Err("too many colons".into());
    }
    for option in s.split(',') {
        match option {
            "ro" => vol.read_only = true,
            "rw" => vol.read_only = false,
            "nocopy" => {
                vol.volume = Some(VolumeOptions {
                    nocopy: true,
                    subpath: None,
                })
            }
            p if PROPAGATIONS.contains(&p) => {
                vol.bind = Some(BindOptions {
                    propagation: Some(p.to_owned()),
                })
            }
            _ => {} // docker/cli ignores unknown options
        }
    }
    Ok(())
}

fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if matches!(first, '.' | '/' | '~') {
        return true;
    }
    let Some(second) = chars.next() else {
        return false;
    };
    source.starts_with("\\\\") || (first.is_alphabetic() && second == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(target: u32, published: u32, proto: &str) -> ServicePort {
        ServicePort {
            mode: Some("ingress".into()),
            target: Some(target),
            published: Some(published),
            protocol: Some(proto.into()),
        }
    }

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_port_spec("80:8080").unwrap(),
            vec![p(8080, 80, "tcp")]
        );
        assert_eq!(parse_port_spec("80").unwrap(), vec![p(80, 0, "tcp")]);
        assert_eq!(
            parse_port_spec("53:53/UDP").unwrap(),
            vec![p(53, 53, "udp")]
        );
        assert_eq!(
            parse_port_spec("127.0.0.1:80:80").unwrap(),
            vec![p(80, 80, "tcp")]
        );
        assert_eq!(
            parse_port_spec("[::1]:80:80").unwrap(),
            vec![p(80, 80, "tcp")]
        );
        assert_eq!(
            parse_port_spec("8000-8001:9000-9001").unwrap(),
            vec![p(9000, 8000, "tcp"), p(9001, 8001, "tcp")]
        );
        assert_eq!(
            parse_port_spec("8000-8002:80").unwrap(),
            vec![p(80, 8000, "tcp"), p(80, 8001, "tcp"), p(80, 8002, "tcp")]
        );
        // Ordered by "<target>/<proto>" as strings, as docker/cli sorts its map keys.
        let got: Vec<u32> = parse_port_spec("9-10")
            .unwrap()
            .iter()
            .map(|p| p.target.unwrap())
            .collect();
        assert_eq!(got, vec![10, 9]);
        assert!(parse_port_spec("80:80/xyz").is_err());
        assert!(parse_port_spec("8000-8001:80-82").is_err());
        assert!(parse_port_spec("80:70000").is_err());
        assert!(parse_port_spec("nope:80").is_err());
        assert!(parse_port_spec("").is_err());
    }

    #[test]
    fn volume_specs() {
        let v = parse_volume_spec("data:/var/lib/data:ro").unwrap();
        assert_eq!(v.kind, "volume");
        assert_eq!(v.source.as_deref(), Some("data"));
        assert_eq!(v.target.as_deref(), Some("/var/lib/data"));
        assert!(v.read_only);

        let v = parse_volume_spec("/var/run/docker.sock:/var/run/docker.sock:ro,rslave").unwrap();
        assert_eq!(v.kind, "bind");
        assert!(v.read_only);
        assert_eq!(v.bind.unwrap().propagation.as_deref(), Some("rslave"));

        let v = parse_volume_spec("/anon").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source, v.target.as_deref()),
            ("volume", None, Some("/anon"))
        );

        let v = parse_volume_spec("data:/d:nocopy").unwrap();
        assert!(v.volume.unwrap().nocopy);

        let v = parse_volume_spec("./cfg:/cfg").unwrap();
        assert_eq!(v.kind, "bind");
        let v = parse_volume_spec("c:\\data:/data").unwrap();
        assert_eq!(v.source.as_deref(), Some("c:\\data"));
        assert_eq!(v.kind, "bind");

        // docker/cli reads a one-letter source as a Windows drive: "v:/v" is an anonymous volume.
        let v = parse_volume_spec("v:/v").unwrap();
        assert_eq!((v.source, v.target.as_deref()), (None, Some("v:/v")));

        assert!(parse_volume_spec("").is_err());
        assert!(parse_volume_spec("ab::c").is_err());
        assert!(parse_volume_spec("ab:cd:ro:x").is_err());
    }
}
