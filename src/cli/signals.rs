//! Ctrl-C, SIGTERM and SIGHUP (ctrlc's `termination` feature): the first one asks a cancellable
//! job to stop at its next step; a second one, or any one where nothing can stop early, ends
//! the process at once after removing the files it was half-way through writing, so that a
//! killed run leaves no hidden temporary behind.

use judgeq::progress::CancelFlag;

/// Exit status after a signal (128 + SIGINT, as shells report an interrupted command).
const INTERRUPTED: i32 = 130;

/// Installs the process's one signal handler. With `cancel`, the first signal sets it; without,
/// or on a second signal, the process ends.
pub fn install(cancel: Option<CancelFlag>) -> anyhow::Result<()> {
    ctrlc::set_handler(move || match &cancel {
        Some(flag) if !flag.is_cancelled() => {
            eprintln!("\nstopping after the current step (press Ctrl-C again to quit at once)");
            flag.cancel();
        }
        _ => {
            let removed = judgeq::export::abandon_writes();
            if removed > 0 {
                eprintln!("\nstopped; removed {removed} half-written file(s)");
            }
            std::process::exit(INTERRUPTED);
        }
    })?;
    Ok(())
}
