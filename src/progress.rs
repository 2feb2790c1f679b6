//! A progress line for long operations (`network rm --force` of many endpoints,
//! `gc`), shown only when stderr is a terminal: one line, rewritten in place
//! (`removing endpoints 37/120`), erased when the work is done. When stderr is
//! not a terminal nothing is written, so scripts and tests see the same output
//! as before.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraw at most this often: a terminal is slower than a netlink request.
const EVERY: Duration = Duration::from_millis(50);

/// Fewer items than this finish too fast to be worth a line.
const MIN_ITEMS: usize = 8;

pub struct Progress {
    what: &'static str,
    total: usize,
    done: usize,
    shown: bool,
    last: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// A progress line for `total` items of `what` ("removing endpoints").
    pub fn new(what: &'static str, total: usize) -> Self {
        Self::with_terminal(what, total, std::io::stderr().is_terminal())
    }

    fn with_terminal(what: &'static str, total: usize, terminal: bool) -> Self {
        Progress {
            what,
            total,
            done: 0,
            shown: false,
            last: None,
            enabled: terminal && total >= MIN_ITEMS,
        }
    }

    /// One more item done.
    pub fn tick(&mut self) {
        self.done = (self.done + 1).min(self.total);
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < EVERY) && self.done < self.total
        {
            return;
        }
        self.last = Some(Instant::now());
        self.shown = true;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\x1b[K", self.line());
        let _ = err.flush();
    }

    fn line(&self) -> String {
        format!("{} {}/{}", self.what, self.done, self.total)
    }
}

impl Drop for Progress {
    /// Erases the line, so what is printed next starts on a clean line.
    fn drop(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_items() {
        let mut p = Progress::with_terminal("removing endpoints", 120, false);
        for _ in 0..37 {
            p.tick();
        }
        assert_eq!(p.line(), "removing endpoints 37/120");
        assert!(!p.shown, "nothing is written without a terminal");
    }

    #[test]
    fn small_jobs_and_non_terminals_show_nothing() {
        assert!(!Progress::with_terminal("x", 3, true).enabled);
        assert!(!Progress::with_terminal("x", 100, false).enabled);
        assert!(Progress::with_terminal("x", 100, true).enabled);
    }
}
