//! A guard that undoes the steps of an operation unless the operation commits.

/// How to undo one step; its error text is logged, never returned.
type Undo = Box<dyn FnOnce() -> Result<(), String>>;

/// Undo steps, run in reverse order when the guard is dropped uncommitted.
/// Every step runs even when an earlier one fails; failures are logged.
#[derive(Default)]
pub struct Rollback {
    steps: Vec<(String, Undo)>,
}

impl Rollback {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers how to undo the step just done.
    pub fn push(
        &mut self,
        what: impl Into<String>,
        undo: impl FnOnce() -> Result<(), String> + 'static,
    ) {
        self.steps.push((what.into(), Box::new(undo)));
    }

    /// The operation succeeded: keep everything.
    pub fn commit(mut self) {
        self.steps.clear();
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        while let Some((what, undo)) = self.steps.pop() {
            match undo() {
                Ok(()) => tracing::debug!("rolled back: {what}"),
                Err(e) => tracing::warn!("rolling back {what} failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn uncommitted_steps_are_undone_in_reverse_even_after_a_failure() {
        let log = Rc::new(RefCell::new(Vec::new()));
        {
            let mut rb = Rollback::new();
            for i in 0..3 {
                let log = log.clone();
                rb.push(format!("step {i}"), move || {
                    log.borrow_mut().push(i);
                    if i == 1 {
                        Err("boom".into())
                    } else {
                        Ok(())
                    }
                });
            }
        }
        assert_eq!(*log.borrow(), vec![2, 1, 0]);
    }

    #[test]
    fn committed_steps_are_kept() {
        let ran = Rc::new(RefCell::new(false));
        let mut rb = Rollback::new();
        let r = ran.clone();
        rb.push("x", move || {
            *r.borrow_mut() = true;
            Ok(())
        });
        rb.commit();
        assert!(!*ran.borrow());
    }
}
