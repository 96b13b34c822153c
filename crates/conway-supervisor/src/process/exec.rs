//! The launcher's other half: the body of the tiny wrapper that starts each instance.
//!
//! The supervisor must leave no process behind even when it is killed with SIGKILL,
//! which it cannot catch. Linux's answer is the parent-death signal
//! (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), but it must be set in the child between `fork`
//! and `exec`, which in Rust means `CommandExt::pre_exec`, an `unsafe` function — and the
//! workspace forbids `unsafe`. So the supervisor starts `conway exec-child --parent PID
//! --program FILE -- ARGV...` instead, and the wrapper, an ordinary process, sets the
//! signal with nix's safe `set_pdeathsig`, checks that its parent is still the
//! supervisor (it may have died before the signal was armed), restores the signal
//! dispositions a Rust program changes, and `exec`s the real program, which keeps the
//! parent-death signal and its process id.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Execs `program` with `argv` (whose first item is the name the program sees) after
/// arming the parent-death signal; returns only on failure. `parent` is the supervisor's
/// process id: if the wrapper's parent is already another process, the supervisor is
/// gone and nothing is started.
pub fn exec_child(parent: u32, program: &Path, argv: &[OsString]) -> io::Error {
    #[cfg(target_os = "linux")]
    if let Err(errno) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        return errno.into();
    }
    if u32::try_from(nix::unistd::getppid().as_raw()).ok() != Some(parent) {
        return io::Error::other("the supervisor exited before the instance started");
    }
    if let Err(error) = default_sigpipe() {
        return error;
    }
    let cstring =
        |s: &[u8]| CString::new(s).map_err(|_| io::Error::other("an argument holds a NUL byte"));
    let program = match cstring(program.as_os_str().as_bytes()) {
        Ok(program) => program,
        Err(error) => return error,
    };
    let argv: Result<Vec<CString>, io::Error> =
        argv.iter().map(|a| cstring(a.as_bytes())).collect();
    match argv {
        Ok(argv) => match nix::unistd::execv(&program, &argv) {
            Ok(never) => match never {},
            Err(errno) => errno.into(),
        },
        Err(error) => error,
    }
}

/// Makes SIGPIPE take its default action again in the program about to be exec'd.
///
/// Every Rust program starts with SIGPIPE ignored, and an ignored signal stays ignored
/// across `exec`, which would change how the service behaves on a closed pipe. A
/// *handled* signal is reset to its default by `exec`, and installing a handler is safe
/// through tokio's signal API: so install one, and let `exec` reset it.
fn default_sigpipe() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let _entered = runtime.enter();
    let handler = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe())?;
    // The handler stays installed after this listener and the runtime are gone.
    drop(handler);
    Ok(())
}
