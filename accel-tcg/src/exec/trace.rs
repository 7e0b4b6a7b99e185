//! `--trace`: what the translator did, for people debugging guests with moat.
//!
//! - `in_asm`: the guest code of each new block, disassembled by the front end;
//! - `op`: its IR after optimization;
//! - `out_asm`: the host code the JIT made of it;
//! - `exec`: every block the exec loop enters (chaining is turned off so each
//!   entry is seen).

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter};

/// Which trace events are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceFlags {
    pub in_asm: bool,
    pub op: bool,
    pub out_asm: bool,
    pub exec: bool,
}

impl TraceFlags {
    /// Parses a comma-separated list such as `in_asm,op,out_asm,exec`.
    pub fn parse(text: &str) -> Result<TraceFlags, String> {
        let mut flags = TraceFlags::default();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            match item {
                "in_asm" => flags.in_asm = true,
                "op" => flags.op = true,
                "out_asm" => flags.out_asm = true,
                "exec" => flags.exec = true,
                other => {
                    return Err(format!(
                        "unknown trace event '{other}' (use in_asm, op, out_asm, exec)"
                    ));
                }
            }
        }
        Ok(flags)
    }

    pub fn any(self) -> bool {
        self.in_asm || self.op || self.out_asm || self.exec
    }
}

/// Where trace lines go (stderr or a file), shared by the vCPUs.
#[derive(Clone)]
pub struct TraceSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl std::fmt::Debug for TraceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TraceSink")
    }
}

impl TraceSink {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        TraceSink(Arc::new(Mutex::new(out)))
    }

    pub fn stderr() -> Self {
        TraceSink::new(Box::new(std::io::stderr()))
    }

    pub fn write(&self, text: &str) {
        let mut out = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A trace that cannot be written is not worth stopping the guest for.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Host x86-64 disassembly, one instruction per line, with addresses.
pub fn disassemble_host(addr: u64, code: &[u8]) -> String {
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    let mut formatter = GasFormatter::new();
    let mut out = String::new();
    let mut text = String::new();
    while decoder.can_decode() {
        let insn = decoder.decode();
        text.clear();
        formatter.format(&insn, &mut text);
        let _ = writeln!(out, "  {:#x}: {text}", insn.ip());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_event_lists() {
        let flags = TraceFlags::parse("in_asm,exec").unwrap();
        assert!(flags.in_asm && flags.exec && !flags.op && !flags.out_asm);
        assert!(TraceFlags::parse("in_asm,bogus").is_err());
        assert!(!TraceFlags::parse("").unwrap().any());
    }

    #[test]
    fn disassembles_host_code() {
        // mov rax, rbx; ret
        let text = disassemble_host(0x1000, &[0x48, 0x89, 0xd8, 0xc3]);
        assert!(text.contains("0x1000: mov %rbx,%rax"), "{text}");
        assert!(text.contains("0x1003: ret"), "{text}");
    }
}
