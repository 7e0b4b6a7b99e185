//! The aarch64 `virt` board, with QEMU `virt`'s memory map and boot ABI (see
//! `docs/architecture.md`). It comes with the AArch64 front end; until then
//! building it says so.

use super::{BoardConfig, BoardError, Host, MachineKind};

/// Always refuses: the board is not built yet.
pub fn build(_config: &BoardConfig<'_>, _host: &Host) -> BoardError {
    BoardError::NotBuilt(MachineKind::Virt)
}
