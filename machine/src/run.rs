//! The vCPU run loop: runs a board on an accelerator until the guest is done,
//! rebuilding the machine when the guest resets it.

use crate::accel::{AccelError, Accelerator, Crash, VcpuExit};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest (or the host, through Ctrl-C) asked to end with this status.
    Exited(i32),
    /// The vCPU halted with nothing left to wake it.
    Halted { pc: u64 },
    /// The guest crashed.
    Crashed(Crash),
    /// The guest asked for a reset and resets are not wanted.
    Reset,
}

/// Runs one vCPU on `board`'s machine. After a guest reset, `rebuild` makes a
/// fresh board (fresh memory, reloaded images) and the machine starts over, unless
/// `reboot` is false.
pub fn run<B, E>(
    accel: &dyn Accelerator,
    reboot: bool,
    board: B,
    mut rebuild: impl FnMut() -> Result<B, E>,
    spec_of: impl Fn(&B) -> (crate::accel::VmSpec, crate::arch::BootState),
) -> Result<RunOutcome, RunError<E>> {
    let mut board = Some(board);
    loop {
        let board = match board.take() {
            Some(board) => board,
            None => rebuild().map_err(RunError::Board)?,
        };
        let (spec, boot) = spec_of(&board);
        let lifecycle = spec.lifecycle.clone();
        let vm = accel.create_vm(spec).map_err(RunError::Accel)?;
        let mut vcpu = vm.create_vcpu(0, &boot).map_err(RunError::Accel)?;
        let exit = vcpu.run().map_err(RunError::Accel)?;
        match exit {
            VcpuExit::Shutdown(status) => return Ok(RunOutcome::Exited(status)),
            VcpuExit::Halted { pc } => return Ok(RunOutcome::Halted { pc }),
            VcpuExit::Crashed(crash) => return Ok(RunOutcome::Crashed(crash)),
            VcpuExit::Reset if !reboot => return Ok(RunOutcome::Reset),
            VcpuExit::Reset => {
                lifecycle.clear();
                log::info!("guest reset: restarting the machine");
            }
        }
    }
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    #[error("{0}")]
    Board(E),
    #[error(transparent)]
    Accel(AccelError),
}
