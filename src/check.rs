//! `moat check`: the policy gate's verdict for a run, without starting it.
//!
//! The text form is for people; `--json` prints one JSON object for scripts
//! (written by hand: it is small and flat, and moat needs no JSON parser).

use machine::policy::{LayerState, Verdict};

use crate::cli::CheckArgs;
use crate::gate::{self, Decision};
use crate::run::STATUS_USAGE;

/// Prints the verdict; exits 2 when `--isolation required` would refuse the run
/// (or the flags are wrong), else 0.
pub fn check(args: &CheckArgs) -> u8 {
    let decision = match gate::decide(&args.run) {
        Ok(decision) => decision,
        Err(message) => {
            eprintln!("moat: {message}");
            return STATUS_USAGE;
        }
    };
    if args.json {
        println!("{}", json(&decision));
    } else {
        print!("{}", text(&decision));
    }
    if decision.refusal.is_some() {
        STATUS_USAGE
    } else {
        0
    }
}

fn layer_state(state: &LayerState) -> (&'static str, Option<&str>) {
    match state {
        LayerState::Active => ("active", None),
        LayerState::Off => ("off", None),
        LayerState::Unavailable(reason) => ("unavailable", Some(reason)),
    }
}

fn text(decision: &Decision) -> String {
    let verdict = &decision.verdict;
    let mut out = format!(
        "isolation: {} ({}, --isolation {})\n",
        verdict.isolation.name(),
        verdict.accel,
        decision.mode.name()
    );
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
/// `{"accelerator", "isolation", "mode", "refused", "refusal", "weakenings":
/// [{"kind", "reason"}], "guarantees": [..], "layers": [{"name", "state",
/// "reason"}]}`.
fn json(decision: &Decision) -> String {
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
