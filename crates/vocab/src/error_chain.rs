//! One way to print an error with its causes, `a: b: c`, for every message shakedown
//! and its sandbox show a user. Owned here so the CLI, the probes and the sandbox
//! cannot drift into different formats.

/// The error and its `source` chain on one line: `a: b: c`.
///
/// A cause whose text the line already holds is skipped: some libraries (reqwest,
/// hyper) repeat their source's message in their own, and `a: b: b` helps nobody.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_follow_in_order() {
        let io = Layer("connection refused", None);
        let connect = Layer("cannot connect", Some(Box::new(io)));
        let top = Layer("Prometheus is unreachable", Some(Box::new(connect)));
        assert_eq!(
            error_chain(&top),
            "Prometheus is unreachable: cannot connect: connection refused"
        );
        assert_eq!(error_chain(&Layer("alone", None)), "alone");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = Layer("connection refused", None);
        let top = Layer(
            "error sending request: connection refused",
            Some(Box::new(io)),
        );
        assert_eq!(
            error_chain(&top),
            "error sending request: connection refused"
        );
    }
}
