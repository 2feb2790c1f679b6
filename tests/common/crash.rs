//! What the crash tests share: random kill moments that a printed seed repeats,
//! the opt-in slow mode, and batches of concurrent commands some of which are
//! killed at one moment.

/// Whether the opt-in long versions of the slow tests run (`NSNET_SLOW_TESTS=1`).
pub fn slow() -> bool {
    std::env::var("NSNET_SLOW_TESTS").is_ok_and(|v| v == "1")
}

/// xorshift64: kill moments, repeatable with `NSNET_CRASH_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Self {
        let seed = std::env::var("NSNET_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            .max(1);
        println!("crash test seed {seed} (NSNET_CRASH_SEED={seed} repeats the kill moments)");
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Starts every job at once (shell command lines), sends SIGKILL after `delay`
/// seconds to those `kill` picks, waits for all; returns each one's exit status
/// ("0" or "137"). Any other end is a failure of the operation itself.
pub fn batch_with_kills(
    sb: &super::Sandbox,
    jobs: &[String],
    kill: impl Fn(usize) -> bool,
    delay: f64,
) -> Vec<String> {
    let mut script = String::from("rm -rf /run/q && mkdir /run/q\n");
    for (i, job) in jobs.iter().enumerate() {
        script += &format!("{job} >/dev/null 2>/run/q/{i}.err & p{i}=$!\n");
    }
    script += &format!("sleep {delay:.4}\n");
    for i in (0..jobs.len()).filter(|i| kill(*i)) {
        script += &format!("kill -9 $p{i} 2>/dev/null\n");
    }
    for i in 0..jobs.len() {
        script += &format!("wait $p{i}; echo $?\n");
    }
    let codes: Vec<String> = sb.sh_ok(&script).lines().map(str::to_owned).collect();
    for (i, rc) in codes.iter().enumerate() {
        assert!(
            rc == "0" || rc == "137",
            "{}: exit {rc}: {}",
            jobs[i],
            sb.sh_ok(&format!("cat /run/q/{i}.err"))
        );
    }
    codes
}
