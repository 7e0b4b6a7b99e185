//! `moat check`: the policy gate's verdict for a run, without starting it,
//! and what would stop that run: `check` meets what `run` would (it opens the
//! KVM device and asks its API version, and opens the images) but creates no
//! VM and reads no image.
//!
//! The text form is for people; `--json` prints one JSON object for scripts
//! (written by hand: it is small and flat, and moat needs no JSON parser).

use machine::AccelKind;
use machine::policy::{LayerState, Verdict, Weakening};

use crate::cli::{self, CheckArgs, RunArgs};
use crate::gate::{self, Decision};
use crate::run::{self, STATUS_USAGE};

/// Something that would make `moat run` with these flags fail before the
/// guest starts (exit status 2).
struct Problem {
    /// A stable identifier for scripts.
    kind: &'static str,
    reason: String,
}

/// Prints the verdict and every problem; exits 2 when `--isolation required`
/// would refuse the run, the run could not start, or the flags are wrong,
/// else 0.
pub fn check(args: &CheckArgs) -> u8 {
    if let Err(message) = cli::contradictions(&args.run) {
        eprintln!("moat: {message}");
        return STATUS_USAGE;
    }
    let decision = match gate::decide(&args.run) {
        Ok(decision) => decision,
        Err(message) => {
            eprintln!("moat: {message}");
            return STATUS_USAGE;
        }
    };
    let problems = problems(&args.run, &decision);
    if args.json {
        println!("{}", json(&decision, &problems));
    } else {
        print!("{}", text(&decision, &problems));
    }
    if decision.verdict.accel == AccelKind::Kvm {
        for warning in cli::ignored_under_kvm(&args.run) {
            eprintln!("moat: warning: {warning}");
        }
    }
    if decision.refusal.is_some() || !problems.is_empty() {
        STATUS_USAGE
    } else {
        0
    }
}

/// What `moat run` would stop at, in the order it would meet it (a refusal by
/// `--isolation required` comes before all of these and is reported apart).
fn problems(args: &RunArgs, decision: &Decision) -> Vec<Problem> {
    let mut problems = Vec::new();
    let images = [
        Some(("kernel", &args.kernel)),
        args.initrd.as_ref().map(|path| ("initrd", path)),
    ];
    for (what, path) in images.into_iter().flatten() {
        if let Err(reason) = run::open_image(what, path, args.memory) {
            problems.push(Problem {
                kind: "image",
                reason,
            });
        }
    }
    for weakening in &decision.verdict.weakenings {
        if let Weakening::AccelUnavailable { .. } = weakening {
            problems.push(Problem {
                kind: "accel-unavailable",
                reason: weakening.to_string(),
            });
        }
    }
    problems
}

fn layer_state(state: &LayerState) -> (&'static str, Option<&str>) {
    match state {
        LayerState::Active => ("active", None),
        LayerState::Off => ("off", None),
        LayerState::Unavailable(reason) => ("unavailable", Some(reason)),
    }
}

fn text(decision: &Decision, problems: &[Problem]) -> String {
    let verdict = &decision.verdict;
    let mut out = format!(
        "isolation: {} ({}, --isolation {})\n",
        verdict.isolation.name(),
        verdict.accel,
        decision.mode.name()
    );
    if verdict.accel == AccelKind::Tcg
        && let Some(reason) = &decision.input.accel_unavailable
    {
        out.push_str(&format!(
            "kvm: unavailable, so --accel auto emulates: {reason}\n"
        ));
    }
    if problems.is_empty() {
        out.push_str("run: can start\n");
    } else {
        out.push_str("run: cannot start:\n");
        for problem in problems {
            out.push_str(&format!("  - {}\n", problem.reason));
        }
    }
    if let Some(refusal) = &decision.refusal {
        out.push_str(&format!("refused: {refusal}\n"));
    }
    out.push_str("weakenings:\n");
    if verdict.weakenings.is_empty() {
        out.push_str("  none\n");
    }
    for weakening in &verdict.weakenings {
        out.push_str(&format!("  - {weakening}\n"));
    }
    out.push_str("guarantees:\n");
    for guarantee in &verdict.guarantees {
        out.push_str(&format!("  - {guarantee}\n"));
    }
    out.push_str("sandbox layers:\n");
    for (layer, state) in &verdict.layers {
        let (name, reason) = layer_state(state);
        match reason {
            Some(reason) => out.push_str(&format!("  {layer}: {name} ({reason})\n")),
            None => out.push_str(&format!("  {layer}: {name}\n")),
        }
    }
    out
}

/// A JSON string literal.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

fn object(fields: &[(&str, String)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", string(key)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The decision as one JSON object:
/// `{"accelerator", "isolation", "mode", "refused", "refusal", "kvm_unavailable",
/// "problems": [{"kind", "reason"}], "weakenings": [{"kind", "reason"}],
/// "guarantees": [..], "layers": [{"name", "state", "reason"}]}`.
fn json(decision: &Decision, problems: &[Problem]) -> String {
    let verdict: &Verdict = &decision.verdict;
    let weakenings = verdict.weakenings.iter().map(|weakening| {
        object(&[
            ("kind", string(weakening.kind())),
            ("reason", string(&weakening.to_string())),
        ])
    });
    let layers = verdict.layers.iter().map(|(layer, state)| {
        let (name, reason) = layer_state(state);
        object(&[
            ("name", string(layer.name())),
            ("state", string(name)),
            ("reason", reason.map_or_else(|| "null".to_string(), string)),
        ])
    });
    object(&[
        ("accelerator", string(verdict.accel.name())),
        ("isolation", string(verdict.isolation.name())),
        ("mode", string(decision.mode.name())),
        ("refused", decision.refusal.is_some().to_string()),
        (
            "refusal",
            decision.refusal.as_ref().map_or_else(
                || "null".to_string(),
                |refusal| string(&refusal.to_string()),
            ),
        ),
        (
            "kvm_unavailable",
            decision
                .input
                .accel_unavailable
                .as_deref()
                .map_or_else(|| "null".to_string(), string),
        ),
        (
            "problems",
            array(problems.iter().map(|problem| {
                object(&[
                    ("kind", string(problem.kind)),
                    ("reason", string(&problem.reason)),
                ])
            })),
        ),
        ("weakenings", array(weakenings)),
        (
            "guarantees",
            array(verdict.guarantees.iter().map(|guarantee| string(guarantee))),
        ),
        ("layers", array(layers)),
    ])
}

#[cfg(test)]
mod tests {
    use super::string;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
