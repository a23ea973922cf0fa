//! Image references as `docker stack deploy` sends them: docker/cli's API client replaces a
//! service's image with `reference.FamiliarString(reference.TagNameOnly(ParseNormalizedNamed(image)))`
//! (`imageWithTagString` in docker/docker `client/service_create.go` and `service_update.go`), so an
//! image without tag or digest gets `:latest`, and the default registry's `docker.io/` and
//! `library/` prefixes are dropped. A reference that does not parse is sent unchanged (the daemon
//! judges it). See docs/compose-support.md ("image").

/// Docker's default registry and its legacy spelling.
const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO: &str = "library";
/// `reference.NameTotalLengthMax`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// `image` as docker/cli sends it for a service (see the module doc).
pub fn normalize_image(image: &str) -> String {
    familiar_tagged(image).unwrap_or_else(|| image.to_owned())
}

/// `FamiliarString(TagNameOnly(ParseNormalizedNamed(image)))`, `None` where docker/cli's parse fails.
fn familiar_tagged(s: &str) -> Option<String> {
    // A bare 64-hex identifier is refused (`cannot specify 64-byte hexadecimal strings`).
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote_name = remainder.split(':').next().unwrap_or_default();
    if remote_name.to_lowercase() != remote_name {
        return None;
    }
    // `Parse(domain + "/" + remainder)`: name[:tag][@digest].
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder.as_str(), None),
    };
    let (path, tag) = match name_tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (name_tag, None),
    };
    if !path.split('/').all(valid_path_component)
        || !(valid_domain(&domain) || valid_path_component(&domain))
        || domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX
        || tag.is_some_and(|t| !valid_tag(t))
        || digest.is_some_and(|d| !valid_digest(d))
    {
        return None;
    }
    // familiarizeName: the default domain and `library/` of a two-part official name go.
    let familiar = if domain == DEFAULT_DOMAIN {
        match path.split_once('/') {
            Some((OFFICIAL_REPO, rest)) if !rest.contains('/') => rest.to_owned(),
            _ => path.to_owned(),
        }
    } else {
        format!("{domain}/{path}")
    };
    let mut out = familiar;
    match (tag, digest) {
        (None, None) => out.push_str(":latest"),
        (tag, digest) => {
            if let Some(t) = tag {
                out.push(':');
                out.push_str(t);
            }
            if let Some(d) = digest {
                out.push('@');
                out.push_str(d);
            }
        }
    }
    Some(out)
}

/// `splitDockerDomain`: the registry part, when the first component looks like one (has `.` or
/// `:`, or is `localhost`), else the default registry (with `library/` for one-part names).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((d, r)) if d.contains(['.', ':']) || d == "localhost" => (d.to_owned(), r.to_owned()),
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO}/{remainder}");
    }
    (domain, remainder)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or any number of `-`.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `domainComponent(\.domainComponent)*(:[0-9]+)?`, components `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let component = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    };
    host.split('.').all(component)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()))
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// A digest go-digest accepts: a known algorithm and its exact length of lowercase hex.
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::normalize_image;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn untagged_images_get_latest() {
        assert_eq!(normalize_image("nginx"), "nginx:latest");
        assert_eq!(normalize_image("google/cadvisor"), "google/cadvisor:latest");
        assert_eq!(
            normalize_image("git.coopcloud.tech/coop-cloud/app"),
            "git.coopcloud.tech/coop-cloud/app:latest"
        );
        assert_eq!(
            normalize_image("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(normalize_image("localhost/app"), "localhost/app:latest");
        assert_eq!(normalize_image("a__b/c-d.e--f"), "a__b/c-d.e--f:latest");
    }

    #[test]
    fn tags_and_digests_stay() {
        assert_eq!(normalize_image("nginx:1.27"), "nginx:1.27");
        assert_eq!(
            normalize_image("localhost:5000/app:1.2"),
            "localhost:5000/app:1.2"
        );
        assert_eq!(normalize_image(&format!("img@{D}")), format!("img@{D}"));
        assert_eq!(normalize_image(&format!("img:1@{D}")), format!("img:1@{D}"));
        assert_eq!(
            normalize_image(&format!("reg.example:443/a/b@{D}")),
            format!("reg.example:443/a/b@{D}")
        );
        assert_eq!(
            normalize_image("hearth-fixture:test"),
            "hearth-fixture:test"
        );
    }

    #[test]
    fn default_registry_is_written_the_familiar_way() {
        // What docker/cli's FamiliarString gives: docker.io/ and library/ dropped.
        assert_eq!(normalize_image("docker.io/library/nginx"), "nginx:latest");
        assert_eq!(normalize_image("index.docker.io/nginx:1"), "nginx:1");
        assert_eq!(
            normalize_image("docker.io/google/cadvisor"),
            "google/cadvisor:latest"
        );
        assert_eq!(normalize_image("library/nginx:1"), "nginx:1");
        // Three parts under library/ keep it.
        assert_eq!(normalize_image("library/a/b"), "library/a/b:latest");
    }

    #[test]
    fn what_docker_cannot_parse_is_sent_unchanged() {
        for bad in [
            "Nginx",
            "Example.com/App",
            "nginx:",
            "nginx:-bad",
            "img@sha256:abc",
            "img@md5:0123456789abcdef0123456789abcdef",
            "a//b",
            "-a",
            "a b",
            "${IMAGE}",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(normalize_image(bad), bad, "{bad}");
        }
        // Upper case is fine in a registry name and in a tag.
        assert_eq!(normalize_image("Reg.Example/app:V1"), "Reg.Example/app:V1");
        let long = format!("a/{}", "b".repeat(260));
        assert_eq!(normalize_image(&long), long);
    }
}
