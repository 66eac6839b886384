//! `hookd serve` run as a process (the end-to-end tests, the delivery
//! benchmark): its log followed to its end, and the address it listens on
//! read from it.

use std::io::{BufRead, BufReader, Read};
use std::net::{AddrParseError, SocketAddr};
use std::sync::mpsc;

/// What hookd logs, followed by its address, once it accepts requests.
pub const LISTENING: &str = "listening on http://";

/// Reads `log` (the server's stderr) line by line on a thread of its own
/// to its end, so that a full pipe never blocks the server, and hands
/// every line to `keep`. The answer gets the address the server logs
/// once it listens.
pub fn follow_log(
    log: impl Read + Send + 'static,
    mut keep: impl FnMut(String) + Send + 'static,
) -> mpsc::Receiver<Result<SocketAddr, AddrParseError>> {
    let (found, listening) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(log).lines().map_while(Result::ok) {
            if let Some((_, rest)) = line.split_once(LISTENING) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                let _ = found.send(addr.parse());
            }
            keep(line);
        }
    });
    listening
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn the_address_is_read_from_the_log_and_every_line_kept() {
        let log = "starting\nINFO hookd admin API listening on http://127.0.0.1:4567 data_dir=x\n";
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&kept);
        let listening = follow_log(log.as_bytes(), move |line| sink.lock().unwrap().push(line));
        let addr = listening.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(addr, Ok("127.0.0.1:4567".parse().unwrap()));
        // The sender is dropped once the log has ended.
        assert!(listening.recv().is_err());
        assert_eq!(kept.lock().unwrap().len(), 2);
    }
}
