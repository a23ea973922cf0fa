//! The fixture-recipe helper makes repos shaped like Co-op Cloud recipe repos: one tag per version
//! directory, oldest first, each tag holding exactly that version's files.

mod common;

use common::recipes::{fixtures_dir, git, recipe_repos, version_key};

#[test]
fn every_version_directory_becomes_a_tag_with_its_files() {
    let repos = recipe_repos(&[]);
    let mut recipes = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let repo = repos.path().join(&name);
        let mut versions: Vec<String> = std::fs::read_dir(entry.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort_by_key(|v| version_key(v));
        assert!(
            versions.len() >= 2,
            "{name}: every fixture recipe has two or more versions"
        );

        let tags: Vec<String> = git(&repo, &["tag", "--sort=creatordate", "-l"])
            .lines()
            .map(str::to_string)
            .collect();
        let mut sorted_tags = tags.clone();
        sorted_tags.sort_by_key(|v| version_key(v));
        assert_eq!(
            sorted_tags, versions,
            "{name}: one tag per version directory"
        );

        for v in &versions {
            let at_tag = git(&repo, &["show", &format!("{v}:compose.yml")]);
            let on_disk =
                std::fs::read_to_string(entry.path().join(v).join("compose.yml")).unwrap();
            assert_eq!(at_tag, on_disk, "{name}@{v}: compose.yml at the tag");
            let files = git(&repo, &["ls-tree", "-r", "--name-only", v]);
            assert!(
                files.lines().any(|f| f == ".env.sample"),
                "{name}@{v}: .env.sample"
            );
        }
        // The newest version is checked out, as after `abra recipe fetch`.
        let head = git(&repo, &["describe", "--tags", "--exact-match", "HEAD"]);
        assert_eq!(head.trim(), versions.last().unwrap());
        recipes += 1;
    }
    assert!(recipes >= 6, "fixture recipes: {recipes}");
}

#[test]
fn version_order_is_numeric_not_lexical() {
    let mut v = vec!["1.10.0+a", "1.9.0+b", "1.9.0+a", "0.2.0"];
    v.sort_by_key(|s| version_key(s));
    assert_eq!(v, ["0.2.0", "1.9.0+a", "1.9.0+b", "1.10.0+a"]);
}
