//! What a running `serve` leaves in its data folder (`serve.json`: its process and
//! address), and how commands beside it reach it: to say it serves (`status`), and to
//! wake it after they wrote (`record put`, the administration commands).

use crate::config::DataDir;
use std::io::{Read, Write};
use std::time::Duration;

pub use crate::config::Running;

/// The address a running `serve` of this data folder listens on, if one answers.
pub fn running_address(dir: &DataDir) -> Option<String> {
    let running = Running::read(dir)?;
    std::net::TcpStream::connect_timeout(&running.addr, Duration::from_millis(300)).ok()?;
    Some(running.addr.to_string())
}

/// Nudges a running `serve` of this data folder to look for new changes (after a
/// `record` command wrote to the database). Does nothing when none runs.
pub fn wake(dir: &DataDir) {
    let Some(running) = Running::read(dir) else {
        return;
    };
    let Ok(mut stream) =
        std::net::TcpStream::connect_timeout(&running.addr, Duration::from_millis(300))
    else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = format!(
        "POST /api/v1/_wake HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        running.addr
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = [0u8; 64];
        let _ = stream.read(&mut answer);
    }
}
