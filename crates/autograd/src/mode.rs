//! Gradient recording on or off for the current thread: [`no_grad`] (and
//! its guard) runs code whose ops record nothing, as PyTorch's
//! `torch.no_grad()`; [`enable_grad`] turns recording back on inside it.

use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record the tape now.
pub fn is_grad_enabled() -> bool {
    ENABLED.with(|e| e.get())
}

/// Runs `f` with recording off: every op returns a constant.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = GradModeGuard::new(false);
    f()
}

/// Runs `f` with recording on (inside a [`no_grad`] region).
pub fn enable_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = GradModeGuard::new(true);
    f()
}

/// Sets the recording mode of this thread until dropped, then restores the
/// previous one. Not `Send`: it belongs to the thread that made it.
#[derive(Debug)]
pub struct GradModeGuard {
    prev: bool,
    _not_send: PhantomData<*const ()>,
}

impl GradModeGuard {
    /// Recording `enabled` until the guard drops.
    pub fn new(enabled: bool) -> GradModeGuard {
        let prev = ENABLED.with(|e| e.replace(enabled));
        GradModeGuard { prev, _not_send: PhantomData }
    }
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(self.prev));
    }
}
