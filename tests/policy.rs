//! The policy gate through the binary: `--isolation required` refuses before any
//! image is read, `moat check` reports the verdict (as JSON too), and `--user`
//! is validated up front. Only the runs that boot a guest need KVM.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::{guest, kvm_usable, moat, run, run_guest};
use serde_json::Value;

/// `moat check --json ARGS...`, parsed, with its exit status.
fn check_json(args: &[&str]) -> (Option<i32>, Value) {
    let result = run(moat().args(["check", "--json"]).args(args));
    let value = serde_json::from_str(&result.stdout)
        .unwrap_or_else(|error| panic!("{error}: {:?} / {}", result.stdout, result.stderr));
    (result.status, value)
}

fn weakening_kinds(verdict: &Value) -> Vec<&str> {
    verdict["weakenings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|weakening| weakening["kind"].as_str().unwrap())
        .collect()
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[test]
fn required_isolation_refuses_tcg_before_reading_the_image() {
    for extra in [
        &[][..],
        &["--sandbox", "off"],
        &["--initrd", "/no/such/initrd"],
    ] {
        let result = run(moat()
            .args(["run", "--isolation", "required", "--accel", "tcg"])
            .args(["--kernel", "/no/such/kernel"])
            .args(extra));
        assert_eq!(result.status, Some(2), "{extra:?}: {}", result.stderr);
        assert_eq!(result.stdout, "");
        assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
        assert!(
            result
                .stderr
                .starts_with("moat: --isolation required refuses this run: "),
            "{}",
            result.stderr
        );
        assert!(
            result.stderr.contains("emulation: not a security boundary"),
            "{}",
            result.stderr
        );
        // The policy error, not a file error: the image was never opened.
        assert!(!result.stderr.contains("/no/such"), "{}", result.stderr);
    }
}

#[test]
fn check_reports_tcg_as_emulation() {
    let (status, verdict) = check_json(&["--accel", "tcg", "--kernel", "/no/such/kernel"]);
    assert_eq!(status, Some(0));
    assert_eq!(verdict["accelerator"], "tcg");
    assert_eq!(verdict["isolation"], "unsupported");
    assert_eq!(verdict["mode"], "best-effort");
    assert_eq!(verdict["refused"], false);
    assert_eq!(verdict["refusal"], Value::Null);
    assert_eq!(weakening_kinds(&verdict)[0], "emulation");
    assert_eq!(
        verdict["weakenings"][0]["reason"],
        "emulation: not a security boundary"
    );
    // The layers still apply to TCG runs, as defence in depth.
    let layers: Vec<&str> = verdict["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        [
            "inherited-fds",
            "rlimits",
            "namespaces",
            "landlock",
            "privileges",
            "no-new-privs",
            "seccomp"
        ]
    );
    for layer in verdict["layers"].as_array().unwrap() {
        let state = layer["state"].as_str().unwrap();
        assert!(state == "active" || state == "unavailable", "{layer}");
        assert_eq!(
            layer["reason"].is_string(),
            state == "unavailable",
            "{layer}"
        );
    }

    let (status, verdict) =
        check_json(&["--accel", "tcg", "--isolation", "required", "--kernel", "k"]);
    assert_eq!(status, Some(2));
    assert_eq!(verdict["refused"], true);
    assert!(
        verdict["refusal"]
            .as_str()
            .unwrap()
            .contains("emulation: not a security boundary")
    );
}

#[test]
fn check_with_the_sandbox_off() {
    let (status, verdict) = check_json(&["--accel", "kvm", "--sandbox", "off", "--kernel", "k"]);
    assert_eq!(status, Some(0));
    assert_eq!(verdict["accelerator"], "kvm");
    assert_eq!(verdict["isolation"], "unsupported");
    assert!(weakening_kinds(&verdict).contains(&"sandbox-off"));
    for layer in verdict["layers"].as_array().unwrap() {
        assert_eq!(layer["state"], "off", "{layer}");
    }
}

#[test]
fn check_kvm_as_root_and_as_another_user() {
    let (_, verdict) = check_json(&["--accel", "kvm", "--kernel", "k"]);
    let kinds = weakening_kinds(&verdict);
    assert_eq!(kinds.contains(&"running-as-root"), euid() == 0, "{verdict}");
    assert!(!kinds.contains(&"emulation"));
    assert!(
        verdict["guarantees"]
            .as_array()
            .unwrap()
            .iter()
            .any(|guarantee| guarantee
                .as_str()
                .unwrap()
                .contains("hardware virtualization")),
        "{verdict}"
    );

    if euid() != 0 {
        eprintln!("SKIPPED the --user half of check_kvm_as_root_and_as_another_user: needs root");
        return;
    }
    let (status, verdict) = check_json(&["--accel", "kvm", "--user", "nobody", "--kernel", "k"]);
    assert_eq!(status, Some(0));
    // Supported unless an essential layer is missing on this host, which the
    // verdict must then name.
    let kinds = weakening_kinds(&verdict);
    assert!(
        kinds.iter().all(|kind| *kind == "layer-unavailable"),
        "{verdict}"
    );
    assert_eq!(verdict["isolation"] == "supported", kinds.is_empty());

    // Root without --user is refused under --isolation required.
    let result = run(moat().args([
        "run",
        "--isolation",
        "required",
        "--accel",
        "kvm",
        "--kernel",
        "/no/such/kernel",
    ]));
    assert_eq!(result.status, Some(2));
    assert!(
        result.stderr.contains("running as root"),
        "{}",
        result.stderr
    );
    assert!(!result.stderr.contains("/no/such"), "{}", result.stderr);
}

#[test]
fn check_text_output() {
    let result = run(moat().args(["check", "--accel", "tcg", "--kernel", "k"]));
    assert_eq!(result.status, Some(0));
    assert!(
        result
            .stdout
            .starts_with("isolation: unsupported (tcg, --isolation best-effort)\n"),
        "{}",
        result.stdout
    );
    assert!(
        result
            .stdout
            .contains("  - emulation: not a security boundary\n")
    );
    assert!(result.stdout.contains("sandbox layers:\n  inherited-fds: "));
}

#[test]
fn bad_users_are_usage_errors() {
    for user in ["no-such-user-anywhere", "root:wheel", ""] {
        let result = run(moat()
            .args(["run", "--user", user, "--kernel"])
            .arg(guest("hello.elf")));
        assert_eq!(result.status, Some(2), "{user}: {}", result.stderr);
        assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
        assert!(
            result.stderr.starts_with("moat: --user"),
            "{}",
            result.stderr
        );
    }
}

#[test]
fn required_isolation_runs_a_confined_kvm_guest() {
    if !kvm_usable("required_isolation_runs_a_confined_kvm_guest") {
        return;
    }
    let mut extra = vec!["--isolation", "required", "--verbose"];
    if euid() == 0 {
        extra.extend(["--user", "nobody"]);
    }
    let result = run_guest("kvm", "hello.elf", &extra);
    assert_eq!(result.stdout, "Hello from moat guest!\n");
    assert_eq!(result.status, Some(1), "{}", result.stderr);
    assert!(
        result.stderr.starts_with("moat: isolation supported (kvm)"),
        "{}",
        result.stderr
    );
}

/// Every TCG run warns once on stderr, unless --quiet or --isolation off.
#[test]
fn tcg_runs_warn() {
    let tcg_run = |extra: &[&str]| {
        run(moat()
            .args(["run", "--accel", "tcg", "--kernel"])
            .arg(guest("hello.elf"))
            .args(extra))
    };
    let result = tcg_run(&[]);
    assert_eq!(result.stdout, "Hello from moat guest!\n");
    let first = result.stderr.lines().next().unwrap_or("");
    assert_eq!(
        first,
        "moat: warning: emulation: not a security boundary: tcg does not isolate the guest from the host"
    );
    assert_eq!(result.stderr.matches("warning").count(), 1);
    for quiet in [&["--quiet"][..], &["--isolation", "off"]] {
        let result = tcg_run(quiet);
        assert!(
            !result.stderr.contains("warning"),
            "{quiet:?}: {}",
            result.stderr
        );
    }
}
