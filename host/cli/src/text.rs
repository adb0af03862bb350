//! Text from plugins, made safe for a terminal.
//!
//! A plugin controls its name, description, metric names and error messages,
//! and those reach people's terminals through `lem plugin inspect`, score
//! tables and error lines. A raw escape sequence could hide or rewrite what
//! is printed around it (e.g. clear `inspect`'s import rows), a carriage
//! return or newline could forge a row, and a bidi override could reorder
//! what is read. So every control character, and every Unicode formatting
//! character that changes how text is laid out, is printed as a visible
//! escape (`\u{1b}`, `\n`, ...) instead of being interpreted.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as itself.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidi embeddings, overrides and isolates ("Trojan Source").
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Marks and separators that move or split text.
            | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}'
        )
}

/// `text` on one line: every control character (newlines included) escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, None)
}

/// `text` with its line breaks kept and every other control character
/// escaped: for multi-line messages such as error chains.
pub fn escape_keep_newlines(text: &str) -> Cow<'_, str> {
    escape_except(text, Some('\n'))
}

fn escape_except(text: &str, keep: Option<char>) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && Some(c) != keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) && Some(c) != keep {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `text` would print anything a terminal interprets (tests use it).
#[cfg(test)]
pub fn has_unsafe(text: &str, keep: Option<char>) -> bool {
    text.chars().any(|c| is_unsafe(c) && Some(c) != keep)
}

/// A small deterministic generator of hostile strings, for the property
/// tests of everything that prints plugin text.
#[cfg(test)]
pub mod arbitrary {
    /// SplitMix64: tiny, seeded, good enough to spread cases.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Rng(seed)
        }

        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }

        /// A string of up to `max_len` characters drawn from the classes a
        /// hostile plugin would use: controls, escapes, wide and combining
        /// characters, bidi overrides, digits (which the table right-aligns),
        /// plus now and then one very long run.
        pub fn string(&mut self, max_len: usize) -> String {
            const PIECES: &[&str] = &[
                "\u{1b}[2J",
                "\u{1b}]0;title\u{7}",
                "\r",
                "\n",
                "\t",
                "\0",
                "\u{7f}",
                "\u{9b}",
                "\u{202e}",
                "\u{2066}",
                "\u{2028}",
                "é",
                "e\u{301}",
                "漢字",
                "🦀",
                "-1.5",
                "1e9",
                "NaN",
                "inf",
                "  ",
                "|",
                "imports",
                "(none)",
                "\\u{1b}",
            ];
            let len = self.below(max_len as u64 + 1) as usize;
            let mut s = String::new();
            while s.chars().count() < len {
                match self.below(4) {
                    0 => s.push_str(PIECES[self.below(PIECES.len() as u64) as usize]),
                    1 => s.push(char::from_u32(self.below(0x110000) as u32).unwrap_or('?')),
                    2 => s.push(char::from(self.below(0x80) as u8)),
                    _ => s.push(char::from(b'a' + self.below(26) as u8)),
                }
            }
            if self.below(16) == 0 {
                let c = char::from(b'x' + self.below(3) as u8);
                s.extend(std::iter::repeat_n(c, 70_000 + self.below(5_000) as usize));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::arbitrary::Rng;
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_interpret() {
        assert_eq!(escape("plain text, ünïcödé"), "plain text, ünïcödé");
        assert_eq!(escape("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("x\ny\r\tz"), "x\\ny\\r\\tz");
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(escape_keep_newlines("a\nb\u{1b}"), "a\nb\\u{1b}");
    }

    #[test]
    fn no_arbitrary_string_keeps_an_unsafe_character() {
        let mut rng = Rng::new(14);
        for _ in 0..2_000 {
            let s = rng.string(64);
            assert!(!has_unsafe(&escape(&s), None), "{s:?}");
            assert!(!has_unsafe(&escape_keep_newlines(&s), Some('\n')), "{s:?}");
            // Nothing is lost: safe text comes back unchanged.
            if !has_unsafe(&s, None) {
                assert_eq!(escape(&s), s);
            }
        }
    }
}
