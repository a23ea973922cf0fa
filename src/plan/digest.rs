//! Images Docker pinned to a digest (docs/drift.md, "Pinned digests"). `docker stack deploy`
//! (and abra, which deploys the same way) asks the registry for the digest of every image and
//! writes `name:tag@sha256:…` into the service spec, keeping the plain reference only in the label
//! `com.docker.stack.image`. hearth never contacts a registry, so it renders `name:tag`.
//!
//! A live image that is the desired one plus a digest is therefore the same image: not drift, and
//! an update for any other reason keeps the live pin (writing the bare tag would restart every task
//! and could move it to whatever the tag points at now). A different name or tag is drift as usual.
//! Pure: works on the Docker API JSON of the two specs.

use serde_json::Value;

/// Where the image sits in a service spec.
pub const IMAGE_FIELD: &str = "TaskTemplate.ContainerSpec.Image";

fn image(spec: &Value) -> Option<&str> {
    spec.get("TaskTemplate")?
        .get("ContainerSpec")?
        .get("Image")?
        .as_str()
}

/// The live image when it is `desired` pinned to a digest (`desired@<algorithm>:<hex>`), where
/// `desired` has no digest of its own.
pub fn pinned<'a>(desired: &str, live: &'a str) -> Option<&'a str> {
    if desired.contains('@') {
        return None;
    }
    let (name, digest) = live.split_once('@')?;
    let (algorithm, hex) = digest.split_once(':')?;
    let valid =
        !algorithm.is_empty() && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (name == desired && valid).then_some(live)
}

/// Puts the live image into `want` when the live one is the same image pinned to a digest;
/// whether it did.
pub fn keep_live_pin(want: &mut Value, have: &Value) -> bool {
    let Some(live) = image(want).and_then(|w| pinned(w, image(have)?)) else {
        return false;
    };
    want["TaskTemplate"]["ContainerSpec"]["Image"] = Value::String(live.to_string());
    // The platforms docker/cli read from the registry with the digest come with it.
    let platforms = have
        .pointer("/TaskTemplate/Placement/Platforms")
        .filter(|p| !p.is_null());
    if let Some(p) = platforms
        && want.pointer("/TaskTemplate/Placement/Platforms").is_none()
    {
        let template = &mut want["TaskTemplate"];
        if !template["Placement"].is_object() {
            template["Placement"] = Value::Object(Default::default());
        }
        template["Placement"]["Platforms"] = p.clone();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: &str = "sha256:56955473cd630fea3ea2f9c9a9944b6b18047df64c8e0e492ebb3ac26626cedc";

    fn spec(image: &str) -> Value {
        json!({"Name": "s_app", "TaskTemplate": {"ContainerSpec": {"Image": image}}})
    }

    #[test]
    fn a_digest_docker_added_is_the_same_image() {
        let live = format!("127.0.0.1:5000/app:1.2@{D}");
        assert_eq!(pinned("127.0.0.1:5000/app:1.2", &live), Some(live.as_str()));
        let mut kept = spec("127.0.0.1:5000/app:1.2");
        assert!(keep_live_pin(&mut kept, &spec(&live)));
        assert_eq!(kept, spec(&live));
        assert!(crate::plan::diff::diff(&kept, &spec(&live)).is_empty());
    }

    #[test]
    fn the_platforms_resolved_with_the_digest_come_along() {
        let live = format!("app:1.2@{D}");
        let mut have = spec(&live);
        have["TaskTemplate"]["Placement"] =
            json!({"Platforms": [{"Architecture": "amd64", "OS": "linux"}]});
        let mut want = spec("app:1.2");
        assert!(keep_live_pin(&mut want, &have));
        assert_eq!(want, have);
        // Without a kept pin they stay drift.
        let mut other = spec("app:1.3");
        keep_live_pin(&mut other, &have);
        assert!(other["TaskTemplate"].get("Placement").is_none());
    }

    #[test]
    fn another_tag_name_or_a_digest_of_our_own_is_not() {
        let live = format!("app:1.2@{D}");
        assert_eq!(pinned("app:1.3", &live), None);
        assert_eq!(pinned("other:1.2", &live), None);
        assert_eq!(pinned(&format!("app:1.2@{D}"), &live), None);
        assert_eq!(pinned("app:1.2", "app:1.2"), None);
        assert_eq!(pinned("app:1.2", "app:1.2@sha256:"), None);
        assert_eq!(pinned("app:1.2", "app:1.2@sha256:xyz"), None);
        let mut other = spec("app:1.3");
        assert!(!keep_live_pin(&mut other, &spec(&live)));
        assert_eq!(other, spec("app:1.3"));
        assert!(!keep_live_pin(&mut json!({}), &spec(&live)));
    }
}
