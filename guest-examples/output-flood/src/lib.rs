//! `output-flood`: a hostile guest that writes to stdout and stderr in a tight
//! loop forever: 64 KiB lines (65,535 `x` and a newline), alternately on each
//! stream, ignoring write errors so a closed or full pipe does not stop it.
//! Used by the sandbox tests that guest output is bounded (the server log
//! must not fill up) and that the execution deadline still ends the call.

wit_bindgen::generate!({
    world: "lambda",
    path: "../sdk/wit",
});

use std::io::Write;

/// Length of one line, newline included.
const LINE: usize = 64 * 1024;

struct OutputFlood;

impl Guest for OutputFlood {
    fn handle(_event: Event) -> Result<Option<String>, String> {
        let mut line = vec![b'x'; LINE];
        line[LINE - 1] = b'\n';
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        loop {
            let _ = out.write_all(&line);
            let _ = out.flush();
            let _ = err.write_all(&line);
        }
    }
}

export!(OutputFlood);
