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

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::random::{BASE, REACH, Rng, SCRATCH, sequence};
use common::*;
use frontend_aarch64::disasm::disassemble;
use serde_json::{Value, json};
use vm_memory::{Bytes, GuestAddress};

/// The fixed seed: every run checks the same cases.
const SEED: u64 = 0x06d6_f617_4a64;
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
    // FP/SIMD enabled at EL1 and EL0 (CPACR_EL1.FPEN = 0b11), as in
    // Unicorn's reset state.
    s.cpacr_el1 = 3 << 20;
    let r = run_state(&mem, s, Engine::Jit, 1000);
    let mut window = vec![0; WINDOW_SIZE];
    mem.read_slice(&mut window, GuestAddress(WINDOW)).unwrap();
    // The vectors hold the epilogue too: a run that ended there took an
    // exception at ELR_EL1, and its flags are in SPSR_EL1.
    let vectored = (VECTORS..VECTORS + 0x800).contains(&r.state.pc);
    Outcome {
        x: r.state.x,
        sp: r.state.sp_el1,
        nzcv: if vectored {
            r.state.spsr_el1
        } else {
            r.state.pstate
        } >> 28
            & 0xf,
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
fn documented(c: &Case, moat: &Outcome, uc: &Outcome) -> Option<&'static str> {
    let ec = moat.esr >> 26;
    let dfsc = moat.esr & 0x3f;
    // Loads and stores, unaligned with the MMU off: moat takes an Alignment
    // fault, Unicorn (QEMU 5.0's core) does the access. With SCTLR_EL1.M
    // = 0 every data access is to Device-nGnRnE memory (D5.2.9, "The
    // effects of disabling a stage of address translation"), and an
    // unaligned access to Device memory is an Alignment fault whatever
    // SCTLR_EL1.A says (B2.5.2, "Alignment of data accesses").
    if moat.exception.is_some() && moat.exception != uc.exception && ec == 0x25 && dfsc == 0x21 {
        return Some("unaligned access with the MMU off (Device memory): Alignment fault");
    }
    // LDSMAX/LDSMIN (and STSMAX/STSMIN) on bytes, halfwords and words:
    // Unicorn compares the zero-extended memory value with the
    // unextended register (QEMU 5.0's non-parallel atomic helpers drop
    // MO_SIGN; later QEMU fixed it), so 0xff counts as 255 and not -1. The
    // Arm ARM (C6.2, LDSMAX: "data = Max(SInt(data), SInt(value))" on the
    // access size) gives moat's result; `signed_min_max_follows_the_arm_arm`
    // below checks moat against it.
    if c.code.iter().any(|&w| is_narrow_signed_min_max(w)) {
        return Some("LDSMAX/LDSMIN under 64 bits: Unicorn compares unsigned");
    }
    None
}

/// LDSMAX/LDSMIN/STSMAX/STSMIN (any ordering) on 8, 16 or 32 bits.
fn is_narrow_signed_min_max(w: u32) -> bool {
    let op = w & 0x3f20_fc00;
    (op == 0x3820_4000 || op == 0x3820_5000) && w >> 30 != 3
}

/// The first difference, described, or `None`.
fn difference(c: &Case, moat: &Outcome, uc: &Outcome) -> Option<String> {
    if moat.exception != uc.exception {
        let at = moat.exception.or(uc.exception).unwrap_or(CODE);
        let word = c
            .code
            .get((at.wrapping_sub(CODE) / 4) as usize)
            .copied()
            .unwrap_or(0);
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

/// Runs `cases` on moat and the oracle and compares: the number of
/// differences each documented exception filtered, the indices of the cases
/// they were, and the undocumented differences described. `None` when the
/// oracle cannot run (the skip is reported).
#[allow(clippy::type_complexity)]
fn compare(cases: &[Case]) -> Option<(BTreeMap<&'static str, usize>, Vec<usize>, Vec<String>)> {
    let requests: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| request(i, c))
        .collect();
    // A debugging aid: the oracle's input, to replay one case by hand.
    if let Some(path) = std::env::var_os("MOAT_ORACLE_DUMP") {
        std::fs::write(path, requests.join("\n")).unwrap();
    }
    // The oracle runs in its own process while moat runs here.
    let handle = std::thread::spawn(move || oracle(requests));
    let moat: Vec<Outcome> = cases.iter().map(run_moat).collect();
    let lines = handle.join().unwrap()?;
    assert_eq!(lines.len(), cases.len(), "the oracle answered every case");
    let mut documented_count = BTreeMap::new();
    let mut filtered = Vec::new();
    let mut failures = Vec::new();
    for line in &lines {
        let (id, uc) = parse(line);
        let (c, m) = (&cases[id], &moat[id]);
        let Some(diff) = difference(c, m, &uc) else {
            continue;
        };
        if let Some(reason) = documented(c, m, &uc) {
            *documented_count.entry(reason).or_insert(0) += 1;
            filtered.push(id);
            continue;
        }
        failures.push(format!("case {id}: {diff}\n{}", describe(c)));
    }
    Some((documented_count, filtered, failures))
}

/// Writes past libtest's capture, so the numbers show in normal output.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn moat_matches_unicorn() {
    let mut rng = Rng(SEED);
    let cases: Vec<Case> = (0..CASES).map(|_| case(&mut rng)).collect();
    let Some((documented_count, filtered, mut failures)) = compare(&cases) else {
        return;
    };
    // A case filtered for a narrow signed min/max is checked again with
    // those made unsigned (where Unicorn is right), so the filter hides
    // nothing else in the sequence.
    let again: Vec<Case> = filtered
        .iter()
        .map(|&id| {
            let mut c = cases[id].clone();
            for w in c.code.iter_mut() {
                if is_narrow_signed_min_max(*w) {
                    *w |= 1 << 13;
                }
            }
            c
        })
        .collect();
    let (_, _, second) = compare(&again).unwrap();
    failures.extend(second.into_iter().map(|f| format!("(unsigned re-run) {f}")));

    // A triage aid: every undocumented difference, not just the first five.
    if std::env::var_os("MOAT_ORACLE_ALL").is_some() {
        for f in &failures {
            report(&format!("DIFF {f}"));
        }
    }
    let instructions: usize = cases.iter().map(|c| c.code.len()).sum();
    report(&format!(
        "unicorn oracle: {} sequences, {instructions} instructions, {} differ, {} documented {documented_count:?}",
        cases.len(),
        failures.len(),
        documented_count.values().sum::<usize>()
    ));
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Unicorn; the first:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// moat's signed min/max atomics on narrow data against the Arm ARM's
/// pseudo-code (the documented exception above rests on it).
#[test]
fn signed_min_max_follows_the_arm_arm() {
    // (word, memory, register, memory after, register after = old memory)
    let cases: [(u32, u64, u64, u64); 4] = [
        // ldsmaxb w1, w2, [x28]: max(0, -1) = 0
        (0x3821_4382, 0x00, 0xff, 0x00),
        // ldsminb w1, w2, [x28]: min(0, -1) = -1
        (0x3821_5382, 0x00, 0xff, 0xff),
        // ldsmaxh w1, w2, [x28]: max(0x1302, -1) = 0x1302
        (0x7821_4382, 0x1302, 0xffff, 0x1302),
        // ldsmin w1, w2, [x28]: min(0x7fffffff, 0x80000000) = 0x80000000
        (0xb821_5382, 0x7fff_ffff, 0x8000_0000, 0x8000_0000),
    ];
    for (word, memory, register, after) in cases {
        let mem = memory_with(&[word]);
        mem.write_obj(memory, GuestAddress(DATA)).unwrap();
        let mut s = entry_state();
        s.x[1] = register;
        s.x[BASE as usize] = DATA;
        let r = run_state(&mem, s, Engine::Jit, 100);
        let got: u64 = mem.read_obj(GuestAddress(DATA)).unwrap();
        assert_eq!(got, after, "{word:08x}: memory");
        assert_eq!(r.state.x[2], memory, "{word:08x}: the old value");
    }
}
