//! `host[:port]` as targets and capability host patterns write it.

/// Splits `host:port`, `[v6]:port`, `[v6]`, `host` or a bare IPv6 address
/// (which cannot carry a port) into the host, without brackets, and the
/// port as written. The error says what is wrong with the brackets.
pub fn split_host_port(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("unclosed '['")?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("brackets must hold an IPv6 address");
        }
        return match after {
            "" => Ok((inside, None)),
            a => a
                .strip_prefix(':')
                .map(|p| (inside, Some(p)))
                .ok_or("expected ':' and a port after ']'"),
        };
    }
    if s.matches(':').count() > 1 {
        return Ok((s, None));
    }
    Ok(match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_written_form() {
        assert_eq!(split_host_port("api.example"), Ok(("api.example", None)));
        assert_eq!(
            split_host_port("api.example:8080"),
            Ok(("api.example", Some("8080")))
        );
        assert_eq!(split_host_port("10.0.0.1:*"), Ok(("10.0.0.1", Some("*"))));
        assert_eq!(split_host_port("[::1]:81"), Ok(("::1", Some("81"))));
        assert_eq!(split_host_port("[::1]"), Ok(("::1", None)));
        assert_eq!(split_host_port("fe80::1"), Ok(("fe80::1", None)));
        assert_eq!(split_host_port("a:"), Ok(("a", Some(""))));
    }

    #[test]
    fn brackets_must_hold_a_whole_ipv6_address() {
        assert_eq!(split_host_port("[::1"), Err("unclosed '['"));
        assert_eq!(
            split_host_port("[1.2.3.4]:80"),
            Err("brackets must hold an IPv6 address")
        );
        assert_eq!(
            split_host_port("[::1]80"),
            Err("expected ':' and a port after ']'")
        );
    }
}
