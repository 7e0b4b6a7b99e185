//! The policy gate through the binary: `--isolation required` refuses before any
//! image is read, `moat check` reports the verdict (as JSON too), and `--user`
//! is validated up front. Only the runs that boot a guest need KVM.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::{guest, kvm_usable, moat, run, run_guest};
use serde_json::Value;

/// A kernel `moat check` can open.
const HELLO: &str = "tests/guests/bin/x86_64/hello.elf";

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
    let (status, verdict) = check_json(&["--accel", "tcg", "--kernel", HELLO]);
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

    let (status, verdict) = check_json(&[
        "--accel",
        "tcg",
        "--isolation",
        "required",
        "--kernel",
        HELLO,
    ]);
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
    let (status, verdict) = check_json(&["--accel", "kvm", "--sandbox", "off", "--kernel", HELLO]);
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
    let (_, verdict) = check_json(&["--accel", "kvm", "--kernel", HELLO]);
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

    if !common::root("the --user half of check_kvm_as_root_and_as_another_user") {
        return;
    }
    let (status, verdict) = check_json(&["--accel", "kvm", "--user", "nobody", "--kernel", HELLO]);
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
    let result = run(moat().args(["check", "--accel", "tcg", "--kernel", HELLO]));
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

/// `moat check` opens the images as `run` would: a missing one is named and
/// the status is 2, the status `run` would give.
#[test]
fn check_names_images_run_could_not_open() {
    let result = run(moat().args(["check", "--accel", "tcg", "--kernel", "/nonexistent"]));
    assert_eq!(result.status, Some(2), "{}", result.stderr);
    assert!(
        result
            .stdout
            .contains("run: cannot start:\n  - kernel '/nonexistent': No such file or directory"),
        "{}",
        result.stdout
    );
    let (status, verdict) = check_json(&[
        "--accel",
        "tcg",
        "--kernel",
        HELLO,
        "--initrd",
        "/no/such/initrd",
    ]);
    assert_eq!(status, Some(2));
    assert_eq!(verdict["problems"][0]["kind"], "image");
    assert!(
        verdict["problems"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("initrd '/no/such/initrd': "),
        "{verdict}"
    );
    let (status, verdict) = check_json(&["--accel", "tcg", "--kernel", HELLO]);
    assert_eq!(status, Some(0));
    assert_eq!(verdict["problems"], Value::Array(Vec::new()));
}

/// A scratch file standing in for /dev/kvm, removed when dropped.
struct FakeDevice(std::path::PathBuf);

impl FakeDevice {
    fn new(name: &str) -> FakeDevice {
        let dir = std::env::temp_dir().join(format!("moat-kvm-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kvm");
        std::fs::write(&path, b"").unwrap();
        FakeDevice(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `moat check` and `moat run` with the KVM device pointed at `device`
/// (test-hooks builds honour MOAT_TEST_KVM_DEVICE).
fn with_device(device: &str, args: &[&str]) -> common::Run {
    run(moat().env("MOAT_TEST_KVM_DEVICE", device).args(args))
}

/// A KVM device that is missing or is not KVM: `check` says so with the
/// status `run` gives, and `--isolation required` under `--accel auto` names
/// KVM, not emulation the user never asked for.
#[test]
fn check_and_run_meet_the_same_unusable_kvm_device() {
    if !common::test_hooks("check_and_run_meet_the_same_unusable_kvm_device") {
        return;
    }
    let file = FakeDevice::new("file");
    for (device, expected) in [
        ("/no/such/kvm", "/no/such/kvm does not exist"),
        (
            "/dev/null",
            "/dev/null is not a KVM device (character device 1:3",
        ),
        (file.path(), "is not a KVM device (a regular file"),
    ] {
        let check = with_device(
            device,
            &["check", "--json", "--accel", "kvm", "--kernel", HELLO],
        );
        assert_eq!(check.status, Some(2), "{device}: {}", check.stderr);
        let verdict: Value = serde_json::from_str(&check.stdout).unwrap();
        assert_eq!(verdict["isolation"], "unsupported", "{verdict}");
        assert_eq!(verdict["problems"][0]["kind"], "accel-unavailable");
        let reason = verdict["problems"][0]["reason"].as_str().unwrap();
        assert!(reason.starts_with("kvm unavailable: "), "{reason}");
        assert!(reason.contains(expected), "{device}: {reason}");
        assert!(!reason.contains("API version -1"), "{reason}");

        let run_kvm = with_device(device, &["run", "--accel", "kvm", "--kernel", HELLO]);
        assert_eq!(run_kvm.status, Some(2), "{device}: {}", run_kvm.stderr);
        assert!(run_kvm.stderr.contains(expected), "{}", run_kvm.stderr);

        let required = with_device(
            device,
            &[
                "run",
                "--isolation",
                "required",
                "--kernel",
                "/no/such/kernel",
            ],
        );
        assert_eq!(required.status, Some(2));
        assert!(
            required
                .stderr
                .starts_with("moat: --isolation required refuses this run: kvm unavailable: "),
            "{}",
            required.stderr
        );
        assert!(required.stderr.contains(expected), "{}", required.stderr);
        assert!(
            !required.stderr.contains("emulation"),
            "{}",
            required.stderr
        );

        // best-effort auto emulates, and says why.
        let auto = with_device(device, &["check", "--json", "--kernel", HELLO]);
        assert_eq!(auto.status, Some(0), "{}", auto.stderr);
        let verdict: Value = serde_json::from_str(&auto.stdout).unwrap();
        assert_eq!(verdict["accelerator"], "tcg");
        assert!(
            verdict["kvm_unavailable"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{verdict}"
        );
        let emulated = with_device(device, &["run", "--kernel", HELLO]);
        assert_eq!(emulated.stdout, "Hello from moat guest!\n");
        assert!(
            emulated.stderr.contains("--accel auto emulates with TCG: "),
            "{}",
            emulated.stderr
        );
    }
}

/// The advice for a device the user may not open follows its owner and mode:
/// joining a group helps only when the group may use the device.
#[test]
fn permission_advice_follows_owner_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !common::test_hooks("permission_advice_follows_owner_and_mode")
        || !common::root("permission_advice_follows_owner_and_mode")
    {
        return;
    }
    let device = FakeDevice::new("perm");
    let as_nobody = |args: &[&str]| {
        run(moat()
            .env("MOAT_TEST_KVM_DEVICE", device.path())
            .uid(65534)
            .gid(65534)
            .args(args))
    };
    std::fs::set_permissions(&device.0, std::fs::Permissions::from_mode(0o600)).unwrap();
    let result = as_nobody(&["run", "--accel", "kvm", "--kernel", HELLO]);
    assert_eq!(result.status, Some(2), "{}", result.stderr);
    assert!(
        result.stderr.contains(&format!(
            "permission denied opening {} (root:root 0600): only root can open it",
            device.path()
        )),
        "{}",
        result.stderr
    );
    assert!(
        !result.stderr.contains("add your user"),
        "{}",
        result.stderr
    );
    let check = as_nobody(&["check", "--accel", "kvm", "--kernel", HELLO]);
    assert_eq!(check.status, Some(2));
    assert!(
        check.stdout.contains("(root:root 0600)"),
        "{}",
        check.stdout
    );

    // Group 100 ("users" on Debian) may read and write it.
    let path = std::ffi::CString::new(device.path()).unwrap();
    // SAFETY: chown takes a NUL-terminated path and two integers.
    assert_eq!(unsafe { libc::chown(path.as_ptr(), 0, 100) }, 0);
    std::fs::set_permissions(&device.0, std::fs::Permissions::from_mode(0o660)).unwrap();
    let result = as_nobody(&["run", "--accel", "kvm", "--kernel", HELLO]);
    assert_eq!(result.status, Some(2), "{}", result.stderr);
    assert!(
        result.stderr.contains("0660): add your user to the "),
        "{}",
        result.stderr
    );
}
