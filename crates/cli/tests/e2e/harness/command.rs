//! Running `sitesync` commands to completion, children killed when dropped, and
//! waiting for something to happen.

use super::BIN;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert!(self.success(), "command failed: {}", self.describe());
        self
    }

    /// Asserts the command succeeded and parses its stdout as JSON.
    #[track_caller]
    pub fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", out.describe()))
    }

    /// Asserts the command failed with exactly one `error: …` line on stderr, and
    /// returns that line.
    #[track_caller]
    pub fn fails(self) -> String {
        assert!(
            !self.success() && self.code.is_some(),
            "command should have failed with an exit code: {}",
            self.describe()
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr: {}",
            self.describe()
        );
        assert!(
            lines[0].starts_with("error: "),
            "the line should start with `error: `: {}",
            self.describe()
        );
        lines[0].to_string()
    }
}

/// Runs `sitesync --data DATA ARGS…` to completion.
pub fn sitesync(data: &Path, args: &[&str]) -> Out {
    sitesync_env(data, &[], args)
}

/// Runs `sitesync --data DATA ARGS…` to completion with extra environment variables.
pub fn sitesync_env(data: &Path, env: &[(String, String)], args: &[&str]) -> Out {
    sitesync_input(data, env, args, None)
}

/// Runs `sitesync --data DATA ARGS…` to completion, with `input` on its standard input.
pub fn sitesync_input(
    data: &Path,
    env: &[(String, String)],
    args: &[&str],
    input: Option<&str>,
) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data").arg(data).args(args);
    cmd.env_remove("SITESYNC_DATA").env_remove("SITESYNC_LOG");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let stdin = match input {
        Some(_) => Stdio::piped(),
        None => Stdio::null(),
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("write stdin");
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    Out {
        cmd: format!("sitesync --data {} {}", data.display(), args.join(" ")),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `init satellite` of a primary at `url` with a sync key, into `data`.
pub fn enrol(data: &Path, url: &str, key: &str, extra: &[&str]) -> Out {
    let mut args = vec![
        "init",
        "satellite",
        "--primary",
        url,
        "--sync-key",
        key,
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    sitesync(data, &args)
}

/// A child process, killed when dropped: the one process type of the bench harness.
pub use sitesync_bench::harness::Process as Guard;

/// Sends SIGTERM to a process.
pub fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// Polls `f` until it gives a value or `timeout` passes; panics with `what` and the
/// last observation otherwise.
#[track_caller]
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
