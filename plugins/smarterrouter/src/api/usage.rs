//! Token counts an answer reports about itself, read from the end of its body: OpenAI's
//! `usage` (`prompt_tokens`, `completion_tokens`; in a stream only with
//! `stream_options.include_usage`) and Ollama's final object or frame (`prompt_eval_count`,
//! `eval_count`, `eval_duration`). Pure; the proxy keeps the tail ([`Tail`]) as bytes pass.

/// The last bytes of a body, kept as it streams by.
#[derive(Debug, Default)]
pub struct Tail {
    bytes: Vec<u8>,
}

/// Enough for Ollama's final frame or OpenAI's `usage` object, with room for a long
/// `finish_reason` or model name around them.
pub const TAIL_BYTES: usize = 4096;

impl Tail {
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        self.bytes.drain(..overflow.min(self.bytes.len()));
        self.bytes.extend_from_slice(chunk);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// What an answer said it used; `None` for what it did not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Ollama's `eval_duration`: nanoseconds spent generating the output tokens.
    pub generation_ns: Option<u64>,
}

/// The usage fields of the last frame in `tail` that carries them.
pub fn scan(tail: &[u8]) -> Usage {
    let last = |keys: &[&[u8]]| keys.iter().find_map(|k| last_number(tail, k));
    Usage {
        input_tokens: last(&[b"\"prompt_tokens\"", b"\"prompt_eval_count\""]),
        output_tokens: last(&[b"\"completion_tokens\"", b"\"eval_count\""]),
        generation_ns: last(&[b"\"eval_duration\""]),
    }
}

/// The number after the last `quoted` key (`"key"`) and a colon in `text`. A key inside a
/// string value is escaped (`\"key\"`), so it never matches.
fn last_number(text: &[u8], quoted: &[u8]) -> Option<u64> {
    let mut end = text.len();
    while let Some(at) = find_last(&text[..end], quoted) {
        let rest = &text[at + quoted.len()..];
        let rest = trim_start(rest);
        if let Some(rest) = rest.strip_prefix(b":") {
            let rest = trim_start(rest);
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 && digits <= 19 {
                return std::str::from_utf8(&rest[..digits]).ok()?.parse().ok();
            }
        }
        end = at;
    }
    None
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::rfind(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn openai_and_ollama_usage_are_read() {
        let openai = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;
        assert_eq!(
            scan(openai),
            Usage {
                input_tokens: Some(12),
                output_tokens: Some(7),
                generation_ns: None
            }
        );
        let ollama = b"{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"done\":true,\"prompt_eval_count\": 5,\"prompt_eval_duration\":9,\"eval_count\":40,\"eval_duration\":2000000000}\n";
        assert_eq!(
            scan(ollama),
            Usage {
                input_tokens: Some(5),
                output_tokens: Some(40),
                generation_ns: Some(2_000_000_000)
            }
        );
    }

    #[test]
    fn keys_inside_generated_text_do_not_count() {
        let body = br#"{"message":{"content":"say \"completion_tokens\": 999"},"done":true}"#;
        assert_eq!(scan(body), Usage::default());
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_across_chunks() {
        let mut tail = Tail::default();
        tail.push(&vec![b'a'; 10_000]);
        tail.push(b"xyz");
        assert_eq!(tail.bytes().len(), TAIL_BYTES);
        assert!(tail.bytes().ends_with(b"axyz"));
        let mut small = Tail::default();
        small.push(b"ab");
        small.push(b"cd");
        assert_eq!(small.bytes(), b"abcd");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes, in any chunking: no panic, the tail is the body's end, and a usage
        /// object appended last is what is read.
        #[test]
        fn framing_never_panics_and_finds_the_last_usage(
            noise in proptest::collection::vec(any::<u8>(), 0..6000),
            cut in 0usize..6000,
            n in 0u64..1_000_000,
        ) {
            let _ = scan(&noise);
            let mut body = noise.clone();
            body.extend_from_slice(format!("\n{{\"eval_count\":{n}}}\n").as_bytes());
            let mut tail = Tail::default();
            let cut = cut.min(body.len());
            tail.push(&body[..cut]);
            tail.push(&body[cut..]);
            prop_assert!(body.ends_with(tail.bytes()));
            prop_assert_eq!(scan(tail.bytes()).output_tokens, Some(n));
        }
    }
}
