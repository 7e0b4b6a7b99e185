//! moat against an independent A64 implementation: random instruction
//! sequences (tests/common/gen.rs) over random registers, flags and memory
//! run on moat's JIT and, through `scripts/a64-oracle.py` as a separate
//! process, on Unicorn (QEMU's CPU core as a library; never linked). Both
//! must end with the same registers, NZCV, FPSR and memory window, or take
//! an exception at the same instruction.
//!
//! Where the two disagree and the Arm ARM says moat is right, the case is
//! a documented exception ([`documented`]); anything else fails the test
//! with the words, the inputs and both results.
//!
//! Without python3 or its `unicorn` module the test says SKIPPED (a failure
//! under `MOAT_REQUIRE_UNICORN=1`, as CI runs it); `scripts/test` installs
//! the module.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::random::{BASE, REACH, Rng, SCRATCH, sequence};
use common::*;
use frontend_aarch64::disasm::disassemble;
use serde_json::{Value, json};
use vm_memory::{Bytes, GuestAddress};

/// The fixed seed: every run checks the same cases.
const SEED: u64 = 0x6d6f_6174_a64;
/// How many sequences.
const CASES: usize = 3000;
/// The longest sequence.
const MAX_LEN: u64 = 24;
/// The memory window: [`REACH`] bytes either side of [`BASE`]'s value.
const WINDOW: u64 = DATA;
const WINDOW_SIZE: usize = 2 * REACH as usize;
const TEST: &str = "unicorn_oracle::moat_matches_unicorn";

/// One test case: code and the state it starts from (EL1h, MMU off).
#[derive(Debug, Clone)]
struct Case {
    code: Vec<u32>,
    x: [u64; 31],
    sp: u64,
    nzcv: u64,
    v: [[u64; 2]; 32],
    fpcr: u64,
    mem: Vec<u8>,
}

/// How a run ended, in the terms both sides can report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    x: [u64; 31],
    sp: u64,
    nzcv: u64,
    fpsr: u64,
    v: [[u64; 2]; 32],
    mem: Vec<u8>,
    /// The address of the instruction that took an exception.
    exception: Option<u64>,
    /// moat's ESR_EL1 after an exception (not compared: Unicorn has none).
    esr: u64,
}

fn case(rng: &mut Rng) -> Case {
    let len = 1 + rng.below(MAX_LEN) as usize;
    let code = sequence(rng, len);
    let mut x = [0; 31];
    for r in x.iter_mut() {
        *r = rng.value();
    }
    x[BASE as usize] = WINDOW + REACH;
    let mut v = [[0; 2]; 32];
    for q in v.iter_mut() {
        *q = [rng.value(), rng.value()];
    }
    let mut mem = vec![0; WINDOW_SIZE];
    for chunk in mem.chunks_mut(8) {
        chunk.copy_from_slice(&rng.value().to_le_bytes());
    }
    Case {
        code,
        x,
        // Any value: SP is only an operand here, never a base.
        sp: rng.value(),
        nzcv: rng.below(16),
        v,
        // Round to nearest, no flush-to-zero, default NaN off.
        fpcr: 0,
        mem,
    }
}

fn run_moat(c: &Case) -> Outcome {
    let mem = memory_with(&c.code);
    mem.write_slice(&c.mem, GuestAddress(WINDOW)).unwrap();
    let mut s = entry_state();
    s.x = c.x;
    s.sp_el1 = c.sp;
    s.pstate |= c.nzcv << 28;
    s.v = c.v;
    s.fpcr = c.fpcr;
    let r = run_state(&mem, s, Engine::Jit, 1000);
    let mut window = vec![0; WINDOW_SIZE];
    mem.read_slice(&mut window, GuestAddress(WINDOW)).unwrap();
    // The vectors hold the epilogue too: a run that ended there took an
    // exception at ELR_EL1, and its flags are in SPSR_EL1.
    let vectored = (VECTORS..VECTORS + 0x800).contains(&r.state.pc);
    Outcome {
        x: r.state.x,
        sp: r.state.sp_el1,
        nzcv: if vectored { r.state.spsr_el1 } else { r.state.pstate } >> 28 & 0xf,
        fpsr: r.state.fpsr,
        v: r.state.v,
        mem: window,
        exception: vectored.then_some(r.state.elr_el1),
        esr: r.state.esr_el1,
    }
}

fn request(id: usize, c: &Case) -> String {
    json!({
        "id": id,
        "code_base": CODE,
        "code": c.code,
        "x": c.x,
        "sp": c.sp,
        "nzcv": c.nzcv,
        "v": c.v,
        "fpcr": c.fpcr,
        "mem_base": WINDOW,
        "mem": hex(&c.mem),
    })
    .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn u64s<const N: usize>(v: &Value) -> [u64; N] {
    let mut out = [0; N];
    for (o, x) in out.iter_mut().zip(v.as_array().unwrap()) {
        *o = x.as_u64().unwrap();
    }
    out
}

fn parse(line: &str) -> (usize, Outcome) {
    let v: Value = serde_json::from_str(line).unwrap();
    let mut q = [[0; 2]; 32];
    for (o, pair) in q.iter_mut().zip(v["v"].as_array().unwrap()) {
        *o = u64s::<2>(pair);
    }
    let id = v["id"].as_u64().unwrap() as usize;
    (
        id,
        Outcome {
            x: u64s::<31>(&v["x"]),
            sp: v["sp"].as_u64().unwrap(),
            nzcv: v["nzcv"].as_u64().unwrap(),
            fpsr: v["fpsr"].as_u64().unwrap(),
            v: q,
            mem: unhex(v["mem"].as_str().unwrap()),
            exception: v["exception"].get("pc").map(|pc| pc.as_u64().unwrap()),
            esr: 0,
        },
    )
}

/// Runs every request through the oracle; `None` (after reporting the
/// skip) when python3 or the unicorn module is missing.
fn oracle(requests: Vec<String>) -> Option<Vec<String>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/a64-oracle.py");
    let mut child = match Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            skip(
                TEST,
                "MOAT_REQUIRE_UNICORN",
                &format!("python3 cannot be started ({error})"),
            );
            return None;
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    // Feed from a thread so neither pipe fills while the other waits.
    let writer = std::thread::spawn(move || {
        for r in requests {
            if writeln!(stdin, "{r}").is_err() {
                break;
            }
        }
    });
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    writer.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(lines),
        Some(3) => {
            skip(
                TEST,
                "MOAT_REQUIRE_UNICORN",
                &format!(
                    "{} (scripts/test installs it: python3 -m pip install unicorn==2.1.4)",
                    stderr.trim()
                ),
            );
            None
        }
        status => panic!("a64-oracle.py failed ({status:?}): {stderr}"),
    }
}

/// Where moat and Unicorn differ and the Arm ARM says moat is right: the
/// reason, or `None` for a real discrepancy. Each entry names the
/// instruction class, what differs and the Arm ARM (DDI 0487) section.
fn documented(_c: &Case, moat: &Outcome, uc: &Outcome) -> Option<&'static str> {
    let ec = moat.esr >> 26;
    let dfsc = moat.esr & 0x3f;
    // Loads and stores, unaligned with the MMU off: moat takes an Alignment
    // fault, Unicorn (QEMU 5.0's core) does the access. With SCTLR_EL1.M
    // = 0 every data access is to Device-nGnRnE memory (D5.2.9, "The
    // effects of disabling a stage of address translation"), and an
    // unaligned access to Device memory is an Alignment fault whatever
    // SCTLR_EL1.A says (B2.5.2, "Alignment of data accesses").
    if moat.exception.is_some() && moat.exception != uc.exception && ec == 0x25 && dfsc == 0x21
    {
        return Some("unaligned access with the MMU off (Device memory): Alignment fault");
    }
    None
}

/// The first difference, described, or `None`.
fn difference(c: &Case, moat: &Outcome, uc: &Outcome) -> Option<String> {
    if moat.exception != uc.exception {
        let at = moat.exception.or(uc.exception).unwrap_or(CODE);
        let word = c.code.get((at.wrapping_sub(CODE) / 4) as usize).copied().unwrap_or(0);
        let name = frontend_aarch64::decode::decode(word).map_or("?", |e| e.name);
        return Some(format!(
            "exception: moat {:x?} (ESR {:#x}), unicorn {:x?}, at {word:08x} {name}",
            moat.exception, moat.esr, uc.exception
        ));
    }
    for n in 0..31 {
        if n != SCRATCH as usize && moat.x[n] != uc.x[n] {
            return Some(format!(
                "x{n}: moat {:#x}, unicorn {:#x}",
                moat.x[n], uc.x[n]
            ));
        }
    }
    let fields = [
        ("sp", moat.sp, uc.sp),
        ("nzcv", moat.nzcv, uc.nzcv),
        ("fpsr", moat.fpsr, uc.fpsr),
    ];
    for (name, a, b) in fields {
        if a != b {
            return Some(format!("{name}: moat {a:#x}, unicorn {b:#x}"));
        }
    }
    for n in 0..32 {
        if moat.v[n] != uc.v[n] {
            return Some(format!(
                "v{n}: moat {:x?}, unicorn {:x?}",
                moat.v[n], uc.v[n]
            ));
        }
    }
    if let Some(at) = (0..moat.mem.len()).find(|&i| moat.mem.get(i) != uc.mem.get(i)) {
        return Some(format!(
            "memory at {:#x}: moat {:02x?}, unicorn {:02x?}",
            WINDOW + at as u64,
            &moat.mem[at..(at + 8).min(moat.mem.len())],
            &uc.mem[at..(at + 8).min(uc.mem.len())]
        ));
    }
    None
}

fn describe(c: &Case) -> String {
    let bytes: Vec<u8> = c.code.iter().flat_map(|w| w.to_le_bytes()).collect();
    format!(
        "{}\n  x = {:#x?}\n  sp = {:#x}, nzcv = {:#x}",
        disassemble(CODE, &bytes).join("\n"),
        c.x,
        c.sp,
        c.nzcv
    )
}

#[test]
fn moat_matches_unicorn() {
    let mut rng = Rng(SEED);
    let cases: Vec<Case> = (0..CASES).map(|_| case(&mut rng)).collect();
    let requests = cases.iter().enumerate().map(|(i, c)| request(i, c)).collect();
    // The oracle runs in its own process while moat runs here.
    let handle = std::thread::spawn(move || oracle(requests));
    let moat: Vec<Outcome> = cases.iter().map(run_moat).collect();
    let Some(lines) = handle.join().unwrap() else {
        return;
    };
    assert_eq!(lines.len(), cases.len(), "the oracle answered every case");

    let instructions: usize = cases.iter().map(|c| c.code.len()).sum();
    let mut documented_count = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for line in &lines {
        let (id, uc) = parse(line);
        let (c, m) = (&cases[id], &moat[id]);
        let Some(diff) = difference(c, m, &uc) else {
            continue;
        };
        if let Some(reason) = documented(c, m, &uc) {
            *documented_count.entry(reason).or_insert(0) += 1;
            continue;
        }
        failures.push(format!("case {id}: {diff}\n{}", describe(c)));
    }
    let exceptions = moat.iter().filter(|m| m.exception.is_some()).count();
    eprintln!(
        "unicorn oracle: {} sequences, {instructions} instructions, {exceptions} ending in an exception, {} differ, {} documented {documented_count:?}",
        cases.len(),
        failures.len(),
        documented_count.values().sum::<usize>()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Unicorn; the first:\n{}",
        failures.len(),
        cases.len(),
        failures.iter().take(usize::MAX).cloned().collect::<Vec<_>>().join("\n\n")
    );
}
