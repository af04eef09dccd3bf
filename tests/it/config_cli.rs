//! `--validate` on every file in conf/ and on broken files; the binary's --help.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::BIN;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn validate(path: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(BIN);
    command.arg("--validate").arg("-c").arg(path);
    for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("ROUTER_")) {
        command.env_remove(var);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_file_in_conf_is_valid() {
    let mut files = Vec::new();
    yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("conf"),
        &mut files,
    );
    assert!(
        files.len() >= 2,
        "conf/ has the reference file and examples"
    );
    for file in files {
        let (ok, text) = validate(&file, &[]);
        assert!(ok, "{}: {text}", file.display());
        assert!(text.contains("configuration is valid"));
    }
}

#[test]
fn broken_file_lists_every_error_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "threds: 2\nrouter:\n  port: 0\n  colour: red\n  log: {level: loud}\n  pools:\n    - name: a\n      nodes:\n        - url: ftp://x:1\n          wieght: 3\n",
    )
    .unwrap();
    let (ok, text) = validate(&path, &[("ROUTER_LOG_FORMAT", "xml")]);
    assert!(!ok);
    for expected in [
        "7 configuration errors",
        "scheme \"ftp\" is not supported",
        "threds: unknown top-level key",
        "router.colour: unknown key",
        "router.pools[0].nodes[0].wieght: unknown key",
        "router.port: must be between 1 and 65535",
        "router.log.level: \"loud\"",
        "ROUTER_LOG_FORMAT=\"xml\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn missing_file_and_type_errors_are_explained() {
    let (ok, text) = validate(Path::new("/nonexistent/router.yaml"), &[]);
    assert!(!ok);
    assert!(text.contains("cannot read the file"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.yaml");
    std::fs::write(&path, "router:\n  upstream:\n    max_attempts: lots\n").unwrap();
    let (ok, text) = validate(&path, &[]);
    assert!(!ok);
    assert!(
        text.contains("router.upstream.max_attempts: invalid type"),
        "{text}"
    );
}

#[test]
fn help_mentions_validate_and_environment() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        text.contains("--validate") && text.contains("ROUTER_OLLAMA_URL"),
        "{text}"
    );
}

/// A damaged or foreign classifier weights file stops `--validate` (and the router) with the
/// setting and the reason; the shipped one and `classifier: keywords` pass.
#[test]
fn a_bad_classifier_weights_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plugins/smarterrouter/data/classifier.bin"
    );
    let mut damaged = std::fs::read(shipped).unwrap();
    damaged[4096] ^= 1;
    let bad = dir.path().join("damaged.bin");
    std::fs::write(&bad, &damaged).unwrap();
    let mut old = std::fs::read(shipped).unwrap();
    old[8] = 0;
    let old_path = dir.path().join("old.bin");
    std::fs::write(&old_path, &old).unwrap();
    let conf = |name: &str, routing: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("router:\n  routing:\n{routing}")).unwrap();
        path
    };
    let (ok, text) = validate(
        &conf(
            "bad.yaml",
            format!("    classifier_weights: {}\n", bad.display()),
        ),
        &[],
    );
    assert!(!ok);
    assert!(
        text.contains("router.routing.classifier_weights")
            && text.contains("checksum does not match"),
        "{text}"
    );
    let (ok, text) = validate(
        &conf(
            "old.yaml",
            format!("    classifier_weights: {}\n", old_path.display()),
        ),
        &[],
    );
    assert!(!ok);
    assert!(text.contains("format version 0"), "{text}");
    let (ok, text) = validate(
        &conf(
            "shipped.yaml",
            format!("    classifier_weights: {shipped}\n"),
        ),
        &[],
    );
    assert!(ok, "{text}");
    let (ok, text) = validate(
        &conf("keywords.yaml", "    classifier: keywords\n".into()),
        &[],
    );
    assert!(ok, "{text}");
    let (ok, text) = validate(&conf("typo.yaml", "    classifier: neural\n".into()), &[]);
    assert!(!ok && text.contains("router.routing.classifier"), "{text}");
}
