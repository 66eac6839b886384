//! One way to tell an error whole: its message and every cause behind it,
//! `: `-separated on one line, so a log line, a CLI message or a stored
//! record says what was found, not only where it was looked for.

/// The error and its causes, outermost first. A cause whose text is told
/// already (a message that quotes its source) is not told twice.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let told = cause.to_string();
        if !text.contains(&told) {
            text.push_str(": ");
            text.push_str(&told);
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_told() {
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&err), "outer: inner");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[test]
    fn a_cause_told_already_is_not_told_again() {
        let err = Quoting(std::io::Error::other("inner"));
        assert_eq!(error_chain(&err), "outer: inner");
    }
}
